//! Checks on a state directory before anything opens it: one pushfs at a
//! time, and no empty tree started over content a lost database named.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::meta::{has_legacy_manifests, DB_FILE};

#[derive(Debug, Error)]
pub enum StateDirError {
    #[error("state directory {dir} holds {files} stored files but no metadata database ({DB_FILE} is missing or empty), so every file name is gone; pushfs will not start an empty tree over them. Put {DB_FILE} back from a backup, or start over with --new-state (the stored files then go to {dir}/lost+found, nothing is deleted)", dir = .dir.display())]
    MissingDatabase { dir: PathBuf, files: usize },
    #[error("--new-state: {} has a metadata database already; move {DB_FILE} and {DB_FILE}-wal away first if you mean to start over", .0.display())]
    DatabaseExists(PathBuf),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Takes an exclusive lock on the state directory: `Ok(None)` if another
/// process holds it. The lock is on the directory's own descriptor, not on
/// a file in it: a lock file can be deleted and created again, and the
/// next mount would lock the new one while the first still runs. The lock
/// dies with the process, so a crash never leaves it stuck.
pub fn lock(dir: &Path) -> io::Result<Option<File>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(file));
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(err)
    }
}

/// Refuses a state directory whose database is gone while its blobs are
/// not, unless `new_state` asks for a new database; refuses `new_state`
/// over a database that exists.
pub fn check_database(dir: &Path, new_state: bool) -> Result<(), StateDirError> {
    let db = dir.join(DB_FILE);
    // An earlier pushfs's manifests name the blobs until they are imported.
    let has_database = non_empty(&db)?
        || non_empty(&dir.join(format!("{DB_FILE}-wal")))?
        || has_legacy_manifests(dir);
    match (has_database, new_state) {
        (true, false) => Ok(()),
        (true, true) => Err(StateDirError::DatabaseExists(dir.to_path_buf())),
        (false, new_state) => {
            let files = stored_files(dir)?;
            if files == 0 {
                return Ok(());
            }
            if !new_state {
                return Err(StateDirError::MissingDatabase {
                    dir: dir.to_path_buf(),
                    files,
                });
            }
            tracing::warn!(
                files,
                "--new-state: starting a new, empty metadata database in {}; the stored files already there go to lost+found",
                dir.display()
            );
            Ok(())
        }
    }
}

fn non_empty(path: &Path) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(meta) => Ok(meta.len() > 0),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Blobs and temp files: the regular files one level under `objects/`'s
/// and `tmp/`'s fan-out directories.
fn stored_files(dir: &Path) -> io::Result<usize> {
    let mut count = 0;
    for top in ["objects", "tmp"] {
        let subs = match fs::read_dir(dir.join(top)) {
            Ok(subs) => subs,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for sub in subs {
            let sub = sub?;
            if !sub.file_type()?.is_dir() {
                continue;
            }
            for file in fs::read_dir(sub.path())? {
                if file?.file_type()?.is_file() {
                    count += 1;
                }
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_without_a_database_are_refused_unless_a_new_state_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        check_database(dir.path(), false).expect("an empty directory is a new state");
        fs::create_dir_all(dir.path().join("objects/ab")).unwrap();
        fs::write(dir.path().join("objects/ab/cdef"), "bytes").unwrap();
        let err = check_database(dir.path(), false).unwrap_err();
        assert!(
            matches!(err, StateDirError::MissingDatabase { files: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("--new-state"), "{err}");
        fs::write(dir.path().join(DB_FILE), "").unwrap();
        assert!(
            check_database(dir.path(), false).is_err(),
            "an empty file is no database"
        );
        check_database(dir.path(), true).expect("asked for");
        fs::write(dir.path().join(DB_FILE), "SQLite format 3").unwrap();
        check_database(dir.path(), false).expect("a database");
        let err = check_database(dir.path(), true).unwrap_err();
        assert!(matches!(err, StateDirError::DatabaseExists(_)), "{err}");
    }

    #[test]
    fn an_earlier_pushfs_state_with_manifests_is_no_lost_database() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("objects/ab")).unwrap();
        fs::write(dir.path().join("objects/ab/cdef"), "bytes").unwrap();
        fs::create_dir_all(dir.path().join("apps/a1")).unwrap();
        fs::write(dir.path().join("apps/a1/manifest.json"), "{}").unwrap();
        check_database(dir.path(), false).expect("imported at mount");
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap().expect("free");
        // flock locks belong to the open file description: a second open
        // in the same process conflicts as another process would.
        assert!(lock(dir.path()).unwrap().is_none());
        drop(held);
        assert!(lock(dir.path()).unwrap().is_some());
    }
}
