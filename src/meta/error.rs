//! What the engine's storage can answer: a full disk, an I/O error, or a
//! database that is not ours. Each keeps the errno the writer should see.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum MetaError {
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("metadata I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the metadata database has schema version {found}; this pushfs knows {known} (upgrade pushfs)")]
    NewerSchema { found: i64, known: i64 },
    #[error("the metadata database {} is damaged ({detail}); nothing was changed. Restore it from a backup, or move it away and mount with --new-state (every blob then goes to lost+found, where `pushfs fsck` finds it)", path.display())]
    Damaged {
        path: std::path::PathBuf,
        detail: rusqlite::Error,
    },
}

impl MetaError {
    /// Names a database SQLite cannot read as damaged, with the way out.
    pub fn damaged_at(self, path: &std::path::Path) -> MetaError {
        match self {
            MetaError::Sqlite(detail @ rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
                ) =>
            {
                MetaError::Damaged {
                    path: path.to_path_buf(),
                    detail,
                }
            }
            other => other,
        }
    }

    /// The errno a file system call should fail with.
    pub fn errno(&self) -> i32 {
        match self {
            MetaError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => match e.code {
                rusqlite::ErrorCode::DiskFull => libc::ENOSPC,
                rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::PermissionDenied => {
                    libc::EROFS
                }
                _ => libc::EIO,
            },
            MetaError::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            _ => libc::EIO,
        }
    }
}

pub type MetaResult<T> = Result<T, MetaError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_stays_enospc() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        assert_eq!(MetaError::from(full).errno(), libc::ENOSPC);
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(MetaError::from(io).errno(), libc::ENOSPC);
    }
}
