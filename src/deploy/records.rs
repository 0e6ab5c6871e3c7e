//! Where each app's deploy records live on disk (status and log), and how
//! a record is replaced atomically.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The directory of one app's deploy records.
pub fn app_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("apps").join(id)
}

/// Writes `name` in `dir` via temp + fsync + rename + fsync(dir): a reader
/// (or a crash) sees the old bytes or the new ones.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&temp)?;
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
