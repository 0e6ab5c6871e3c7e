//! Extended attributes, kept in the engine with their inode and answered as
//! ext4 answers a user.
//!
//! `user.*` is anyone's the kernel lets through (it has already checked the
//! file's permissions and refused symlinks). `trusted.*` and `security.*`
//! are root's: the kernel refuses a non-root writer before asking us, but
//! it does not filter `listxattr` for FUSE, so the `trusted.*` names are
//! hidden from others here, as ext4 hides them. `security.*` is stored for
//! root rather than refused: `rsync -aX` run as root copies it (file
//! capabilities, say), and a refusal would fail the whole copy. `system.*`
//! (POSIX ACLs, which pushfs does not implement) and unknown namespaces are
//! `EOPNOTSUPP`, so `cp -a` falls back to the mode bits.
//!
//! An attribute change moves the inode's ctime but never deploys: packages
//! do not carry attributes, so the package is the same.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::status_inodes::StatusInode;
use super::{Ino, Tree, TreeError, TreeResult};
use crate::meta::{InodeKind, InodeRow, Txn};

/// The namespace the kernel asks about before every write, chown and
/// truncate (`security.capability`).
pub(super) const SECURITY_PREFIX: &[u8] = b"security.";

/// `XATTR_NAME_MAX`: a full name, prefix included.
const NAME_MAX: usize = 255;
/// `XATTR_SIZE_MAX`.
const VALUE_MAX: usize = 64 * 1024;
/// `XATTR_LIST_MAX`: the kernel cannot list more than this, so no inode
/// may gather more names (ext4 runs out of room long before).
const LIST_MAX: usize = 64 * 1024;

/// The answer to `getxattr` or `listxattr`, which the kernel asks in two
/// steps: with size 0 for how big the answer is, then with a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XattrReply {
    Size(u32),
    Data(Vec<u8>),
}

impl XattrReply {
    /// The size if `size` is 0, else the bytes if they fit in `size`.
    fn fitted(bytes: Vec<u8>, size: u32) -> TreeResult<XattrReply> {
        if size == 0 {
            Ok(XattrReply::Size(bytes.len() as u32))
        } else if bytes.len() > size as usize {
            Err(TreeError::XattrBufferTooSmall)
        } else {
            Ok(XattrReply::Data(bytes))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    User,
    /// `trusted.*` and `security.*`: root's.
    Privileged,
}

/// Checks a name's length and finds its namespace.
fn namespace(name: &[u8]) -> TreeResult<Namespace> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(TreeError::XattrNameTooLong);
    }
    let suffix_of = |prefix: &[u8]| name.strip_prefix(prefix);
    let (namespace, suffix) = if let Some(rest) = suffix_of(b"user.") {
        (Namespace::User, rest)
    } else if let Some(rest) = suffix_of(b"trusted.").or_else(|| suffix_of(SECURITY_PREFIX)) {
        (Namespace::Privileged, rest)
    } else {
        return Err(TreeError::XattrNamespaceUnsupported);
    };
    // ext4 refuses a bare prefix the same way.
    if suffix.is_empty() {
        return Err(TreeError::InvalidArgument);
    }
    Ok(namespace)
}

fn privileged(uid: u32) -> bool {
    uid == 0
}

/// Whether `uid` may see the attribute `name` exists.
fn visible_to(name: &[u8], uid: u32) -> bool {
    privileged(uid) || !name.starts_with(b"trusted.")
}

/// The kernel's rule for `user.*`: regular files and directories only.
fn holds_user_xattrs(row: &InodeRow) -> bool {
    row.kind != InodeKind::Symlink
}

/// What `setxattr` may find: `XATTR_CREATE` wants nothing there,
/// `XATTR_REPLACE` wants a value to replace.
fn check_flags(flags: i32, exists: bool) -> TreeResult<()> {
    if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
        return Err(TreeError::InvalidArgument);
    }
    if flags & libc::XATTR_CREATE != 0 && exists {
        return Err(TreeError::XattrExists);
    }
    if flags & libc::XATTR_REPLACE != 0 && !exists {
        return Err(TreeError::NoXattr);
    }
    Ok(())
}

impl Tree {
    pub fn setxattr(
        &self,
        ino: Ino,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        uid: u32,
    ) -> TreeResult<()> {
        if StatusInode::decode(ino).is_some() {
            return Err(TreeError::NotSupportedOnStatusFiles);
        }
        let name = name.as_bytes();
        let namespace = namespace(name)?;
        if value.len() > VALUE_MAX {
            return Err(TreeError::XattrValueTooBig);
        }
        let mut txn = self.meta.begin()?;
        let row = self.xattr_target(&txn, ino, namespace, uid)?;
        if name.starts_with(SECURITY_PREFIX) {
            // Before the commit, so no reader can see the attribute while
            // the flag still says there is none.
            self.security_xattrs.store(true, Ordering::SeqCst);
        }
        let exists = txn.xattr(ino, name)?.is_some();
        check_flags(flags, exists)?;
        if !exists {
            let listed: usize = txn.xattr_names(ino)?.iter().map(|n| n.len() + 1).sum();
            if listed + name.len() + 1 > LIST_MAX {
                return Err(TreeError::XattrListFull);
            }
        }
        txn.set_xattr(ino, name, value)?;
        changed_metadata(&mut txn, row)?;
        Ok(txn.commit()?)
    }

    pub fn getxattr(&self, ino: Ino, name: &OsStr, size: u32, uid: u32) -> TreeResult<XattrReply> {
        if StatusInode::decode(ino).is_some() {
            return Err(TreeError::NoXattr);
        }
        let name = name.as_bytes();
        let namespace = namespace(name)?;
        if !visible_to(name, uid) {
            return Err(TreeError::NoXattr);
        }
        if name.starts_with(SECURITY_PREFIX) && !self.security_xattrs.load(Ordering::SeqCst) {
            return Err(TreeError::NoXattr);
        }
        let txn = self.meta.read()?;
        let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        if namespace == Namespace::User && !holds_user_xattrs(&row) {
            return Err(TreeError::NoXattr);
        }
        let value = txn.xattr(ino, name)?.ok_or(TreeError::NoXattr)?;
        drop(txn);
        XattrReply::fitted(value, size)
    }

    /// The names `uid` may see, each followed by a NUL, as the kernel wants them.
    pub fn listxattr(&self, ino: Ino, size: u32, uid: u32) -> TreeResult<XattrReply> {
        if StatusInode::decode(ino).is_some() {
            return XattrReply::fitted(Vec::new(), size);
        }
        let txn = self.meta.read()?;
        txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        let names = txn.xattr_names(ino)?;
        drop(txn);
        let mut list = Vec::new();
        for name in names.iter().filter(|n| visible_to(n, uid)) {
            list.extend_from_slice(name);
            list.push(0);
        }
        XattrReply::fitted(list, size)
    }

    pub fn removexattr(&self, ino: Ino, name: &OsStr, uid: u32) -> TreeResult<()> {
        if StatusInode::decode(ino).is_some() {
            return Err(TreeError::NoXattr);
        }
        let name = name.as_bytes();
        let namespace = namespace(name)?;
        let mut txn = self.meta.begin()?;
        let row = self.xattr_target(&txn, ino, namespace, uid)?;
        if !txn.remove_xattr(ino, name)? {
            return Err(TreeError::NoXattr);
        }
        changed_metadata(&mut txn, row)?;
        Ok(txn.commit()?)
    }

    /// The inode whose attributes `uid` is about to change, if allowed.
    fn xattr_target(
        &self,
        txn: &Txn,
        ino: Ino,
        namespace: Namespace,
        uid: u32,
    ) -> TreeResult<InodeRow> {
        if namespace == Namespace::Privileged && !privileged(uid) {
            return Err(TreeError::XattrNeedsPrivilege);
        }
        let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        if namespace == Namespace::User && !holds_user_xattrs(&row) {
            return Err(TreeError::UserXattrOnlyOnFilesAndDirs);
        }
        Ok(row)
    }
}

/// ctime moves, as for chmod. The app is neither marked nor told: no
/// package carries attributes, so there is nothing new to deploy.
fn changed_metadata(txn: &mut Txn, mut row: InodeRow) -> TreeResult<()> {
    row.ctime = SystemTime::now();
    Ok(txn.update_attrs(&row)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_into_namespaces() {
        assert_eq!(namespace(b"user.mime_type").unwrap(), Namespace::User);
        assert_eq!(namespace(b"trusted.x").unwrap(), Namespace::Privileged);
        assert_eq!(namespace(b"security.x").unwrap(), Namespace::Privileged);
        for unsupported in [&b"system.posix_acl_access"[..], b"os2.x", b"userx"] {
            assert!(matches!(
                namespace(unsupported),
                Err(TreeError::XattrNamespaceUnsupported)
            ));
        }
        assert!(matches!(
            namespace(b"user."),
            Err(TreeError::InvalidArgument)
        ));
        let long = [b"user.".as_slice(), &[b'n'; 251]].concat();
        assert_eq!(long.len(), 256);
        assert!(matches!(namespace(&long), Err(TreeError::XattrNameTooLong)));
        assert!(namespace(&long[..255]).is_ok());
    }

    #[test]
    fn the_size_probe_and_a_short_buffer() {
        let bytes = b"abc".to_vec();
        assert_eq!(
            XattrReply::fitted(bytes.clone(), 0).unwrap(),
            XattrReply::Size(3)
        );
        assert!(matches!(
            XattrReply::fitted(bytes.clone(), 2),
            Err(TreeError::XattrBufferTooSmall)
        ));
        assert_eq!(
            XattrReply::fitted(bytes.clone(), 3).unwrap(),
            XattrReply::Data(bytes)
        );
    }

    #[test]
    fn create_and_replace_flags() {
        assert!(check_flags(0, true).is_ok() && check_flags(0, false).is_ok());
        assert!(matches!(
            check_flags(libc::XATTR_CREATE, true),
            Err(TreeError::XattrExists)
        ));
        assert!(check_flags(libc::XATTR_CREATE, false).is_ok());
        assert!(matches!(
            check_flags(libc::XATTR_REPLACE, false),
            Err(TreeError::NoXattr)
        ));
        assert!(check_flags(libc::XATTR_REPLACE, true).is_ok());
        assert!(matches!(
            check_flags(4, true),
            Err(TreeError::InvalidArgument)
        ));
    }
}
