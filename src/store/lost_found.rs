//! `lost+found/` in the state directory: where content that nothing names
//! goes at mount instead of being deleted. A damaged database or log can
//! forget files whose bytes are still on disk; only `pushfs fsck --purge`
//! deletes them, after an operator has looked.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::private_files::create_private_dir_all;

/// The directory's name in the state directory.
pub const LOST_FOUND_DIR: &str = "lost+found";

/// What a pass over unnamed content did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SetAside {
    /// Files moved into lost+found.
    pub moved: usize,
    /// Files deleted because they held no bytes, or bytes the store keeps
    /// under a live name already: nothing is lost with them.
    pub dropped: usize,
}

/// lost+found of the state directory `state_dir`.
pub fn lost_found_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(LOST_FOUND_DIR)
}

/// Moves `file`, whose SHA-256 is `sha256`, to `lost+found/<sha256>`. The
/// same content there already makes the move a removal of a duplicate.
pub fn move_in(state_dir: &Path, file: &Path, sha256: &str) -> io::Result<()> {
    let dir = lost_found_dir(state_dir);
    create_private_dir_all(&dir)?;
    let dest = dir.join(sha256);
    if dest.exists() {
        return fs::remove_file(file);
    }
    fs::rename(file, dest)
}

/// The content files in lost+found: `(sha256, path)`, sorted. Other
/// entries (copies of a damaged database) are listed by
/// [`damaged_copies`].
pub fn entries(state_dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    for entry in read_dir_or_empty(&lost_found_dir(state_dir))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_file() && is_blob_name(&name) {
            found.push((name, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Copies of a damaged database kept at mount (`damaged-<time>/`), sorted.
pub fn damaged_copies(state_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in read_dir_or_empty(&lost_found_dir(state_dir))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && name.starts_with(DAMAGED_PREFIX) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

/// The name prefix of a kept copy of a damaged database.
pub const DAMAGED_PREFIX: &str = "damaged-";

fn read_dir_or_empty(dir: &Path) -> io::Result<Box<dyn Iterator<Item = io::Result<fs::DirEntry>>>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Box::new(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Box::new(std::iter::empty())),
        Err(e) => Err(e),
    }
}

/// A blob's content address: 64 lowercase hex digits, with `.sparse` for
/// a file stored with its holes.
fn is_blob_name(name: &str) -> bool {
    // The store writes lowercase only; another spelling is not ours.
    !name.bytes().any(|b| b.is_ascii_uppercase()) && super::sparse::parse_blob_name(name).is_some()
}
