//! What the tree asks of the kernel's caches when it changes names on its
//! own (a rollback replaces a whole folder in one step, and lookups the
//! kernel cached would still lead to the inodes it removed). The FUSE
//! adapter implements it; the tree knows nothing of fuser.

use super::Ino;

pub trait KernelCache: Send + Sync {
    /// Drops the kernel's cached lookups of `names` in the directory
    /// `parent`, and of everything below them.
    fn forget_entries(&self, parent: Ino, names: Vec<String>);
}
