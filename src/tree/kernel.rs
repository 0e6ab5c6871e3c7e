//! What the tree asks of the kernel's caches when it changes names on its
//! own (a rollback replaces a whole folder in one step, and lookups the
//! kernel cached would still lead to the inodes it removed). The FUSE
//! adapter implements it; the tree knows nothing of fuser.

use super::Ino;

pub trait KernelCache: Send + Sync {
    /// Drops the kernel's cached lookups of `names` in the directory
    /// `parent`, and of everything below them.
    fn forget_entries(&self, parent: Ino, names: Vec<String>);

    /// Drops the kernel's cached pages and attributes of `ino`: its
    /// content changed behind handles that read through the page cache.
    fn forget_content(&self, ino: Ino);
}
