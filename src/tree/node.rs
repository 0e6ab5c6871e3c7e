//! Inodes and their attributes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::SystemTime;

use crate::backend::BackendKind;
use crate::store::BlobInfo;

use super::content::OpenFile;
use super::status_files::StatusFile;
use super::AppId;

pub type Ino = u64;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

impl Meta {
    pub fn new(perm: u16, uid: u32, gid: u32) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    /// A content change: mtime and ctime move.
    pub fn touch_content(&mut self) {
        let now = SystemTime::now();
        self.mtime = now;
        self.ctime = now;
    }
}

/// The bytes of a regular file: sealed in the store, or being written.
#[derive(Debug, Clone)]
pub enum Content {
    Blob(BlobInfo),
    Open(Arc<OpenFile>),
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

#[derive(Debug)]
pub enum NodeKind {
    Dir {
        children: BTreeMap<OsString, Ino>,
        role: DirRole,
    },
    File {
        content: Content,
    },
    Symlink {
        target: OsString,
    },
    /// An app's `.pushfs/` directory.
    StatusDir {
        app: AppId,
    },
    StatusFile {
        app: AppId,
        file: StatusFile,
    },
}

#[derive(Debug)]
pub struct Node {
    pub parent: Ino,
    pub name: OsString,
    pub kind: NodeKind,
    pub meta: Meta,
    /// Kernel references (lookups not yet forgotten).
    pub lookups: u64,
    /// Open file handles on this node.
    pub open_handles: u32,
    /// Unlinked from its parent; kept only while the kernel or a handle refers to it.
    pub detached: bool,
}

impl Node {
    pub fn file_kind(&self) -> FileKind {
        match self.kind {
            NodeKind::File { .. } | NodeKind::StatusFile { .. } => FileKind::File,
            NodeKind::Symlink { .. } => FileKind::Symlink,
            _ => FileKind::Dir,
        }
    }

    pub fn children(&self) -> Option<&BTreeMap<OsString, Ino>> {
        match &self.kind {
            NodeKind::Dir { children, .. } => Some(children),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<DirRole> {
        match &self.kind {
            NodeKind::Dir { role, .. } => Some(*role),
            _ => None,
        }
    }

    pub fn children_mut(&mut self) -> Option<&mut BTreeMap<OsString, Ino>> {
        match &mut self.kind {
            NodeKind::Dir { children, .. } => Some(children),
            _ => None,
        }
    }

    /// Whether the node can be dropped from the inode table.
    pub fn is_unreferenced(&self) -> bool {
        self.detached && self.lookups == 0 && self.open_handles == 0
    }
}
