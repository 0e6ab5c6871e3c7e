//! Where each app's deploy records live on disk (status and log), and how
//! a record is replaced atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::private_files::{create_private_dir_all, private_file_options};

/// The directory of one app's deploy records.
pub fn app_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("apps").join(id)
}

/// Writes `name` in `dir` via temp + fsync + rename + fsync(dir): a reader
/// (or a crash) sees the old bytes or the new ones.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    create_private_dir_all(dir)?;
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = private_file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Forgets an app's records (its folder was removed).
pub fn remove_app(state_dir: &Path, id: &str) -> io::Result<()> {
    match fs::remove_dir_all(app_dir(state_dir, id)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn blobs_temp_files_and_records_are_private() {
        use crate::store::ContentStore;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        let store = ContentStore::open(&root).unwrap();
        let blob = store.put_bytes(b"API_KEY=hunter2").unwrap();
        let (temp, _file) = store.new_temp().unwrap();
        write_atomically(&root.join("apps/a1"), "status.json", b"{}").unwrap();
        for dir in ["objects", "tmp", "apps", "apps/a1"] {
            assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
        }
        let blob_path = store.blob_path(&blob.sha256);
        assert_eq!(mode(blob_path.parent().unwrap()), 0o700);
        assert_eq!(mode(&blob_path), 0o600);
        assert_eq!(mode(&temp), 0o600);
        assert_eq!(mode(&root.join("apps/a1/status.json")), 0o600);
    }
}
