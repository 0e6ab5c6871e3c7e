//! What can go wrong in the namespace, in words a user can act on.
//! The FUSE adapter maps each variant to an errno in one place.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TreeError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("directory not empty")]
    NotEmpty,
    #[error(
        "status files under .pushfs/ are read-only; write `deploy`, `cancel`, `hold`, `release` or `rollback <digest>` to .pushfs/ctl"
    )]
    StatusFileReadOnly,
    #[error("only app directories can be created here; put files inside an app folder")]
    OnlyAppDirectoriesHere,
    #[error("the mount's top level holds only bytenite/, flux/ and cf/")]
    TopLevelIsFixed,
    #[error("cannot move between apps or backends in place; mv copies instead")]
    CrossAppRename,
    #[error("hard links to directories are not allowed")]
    HardLinkToDirectory,
    #[error("hard links stay inside one app; copy the file to link it into another")]
    CrossAppLink,
    #[error("only regular files, directories and symlinks can be deployed")]
    UnsupportedFileType,
    #[error(
        "unknown command for .pushfs/ctl (use `deploy`, `cancel`, `hold`, `release` or `rollback <digest prefix>`)"
    )]
    UnknownCtlCommand,
    #[error(
        "`rollback` takes a digest prefix of at least 4 hex digits, as .pushfs/history shows it"
    )]
    BadDigestPrefix,
    #[error("no kept tree in .pushfs/history has a digest starting with {0}")]
    NoKeptTree(String),
    #[error("{count} kept trees have a digest starting with {prefix}; give more digits")]
    AmbiguousDigest { prefix: String, count: usize },
    #[error("a file of the app is open for writing; close it, then roll back")]
    AppBusy,
    #[error("the kept tree {0} has lost content files; it cannot be restored")]
    KeptTreeDamaged(String),
    #[error("invalid argument")]
    InvalidArgument,
    #[error("stale file handle")]
    BadHandle,
    #[error("file name too long")]
    NameTooLong,
    #[error("no such extended attribute")]
    NoXattr,
    #[error("the extended attribute exists already (XATTR_CREATE)")]
    XattrExists,
    #[error("an extended attribute's name is 1 to 255 bytes, its prefix included")]
    XattrNameTooLong,
    #[error("an extended attribute's value is at most 64 KiB")]
    XattrValueTooBig,
    #[error("the buffer is too small for the extended attribute; ask its size first")]
    XattrBufferTooSmall,
    #[error("a file's extended attribute names fill at most 64 KiB; remove some first")]
    XattrListFull,
    #[error("only user.*, trusted.* and security.* extended attributes are kept (no ACLs)")]
    XattrNamespaceUnsupported,
    #[error("trusted.* and security.* extended attributes are root's")]
    XattrNeedsPrivilege,
    #[error("user.* extended attributes go on regular files and directories only")]
    UserXattrOnlyOnFilesAndDirs,
    #[error("status files under .pushfs/ have no extended attributes and no room to preallocate")]
    NotSupportedOnStatusFiles,
    #[error("fallocate supports mode 0, KEEP_SIZE and PUNCH_HOLE with KEEP_SIZE")]
    FallocateModeUnsupported,
    #[error("I/O error in the state directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Meta(#[from] crate::meta::MetaError),
}

impl TreeError {
    /// The state disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            TreeError::Io(e) => e.raw_os_error() == Some(libc::ENOSPC),
            TreeError::Meta(e) => e.errno() == libc::ENOSPC,
            _ => false,
        }
    }

    /// Expected outcomes (a lookup that misses, the size probe of an
    /// attribute, `ls` asking for ACLs) stay quiet in the log.
    pub fn is_expected(&self) -> bool {
        matches!(
            self,
            TreeError::NotFound
                | TreeError::Exists
                | TreeError::NotEmpty
                | TreeError::NoXattr
                | TreeError::XattrBufferTooSmall
                | TreeError::XattrNamespaceUnsupported
        )
    }
}

pub type TreeResult<T> = Result<T, TreeError>;
