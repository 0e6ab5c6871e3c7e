//! Inode numbers, the attributes the kernel sees, and what a directory is for.

use std::time::SystemTime;

use crate::kind::BackendKind;

pub use crate::meta::Ino;

pub const ROOT_INO: Ino = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
}

/// The attributes the kernel sees; built by the tree, converted by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: FileKind,
    pub size: u64,
    /// 512-byte blocks on disk: the temp file's or a sparse blob's own
    /// count, else what the size needs.
    pub blocks: u64,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    /// Status files change behind the kernel's back and must not be cached.
    pub volatile: bool,
}

/// What a directory is for; the rules of the top two levels differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirRole {
    /// The mount point: holds only the backend directories.
    Root,
    /// `bytenite/`, `flux/`, `cf/`: hold only app directories.
    Backend(BackendKind),
    /// An app root or any directory inside an app.
    App,
}

/// One name of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: FileKind,
    pub name: std::ffi::OsString,
}
