//! Keeping the state directory the mounting user's alone: every directory
//! pushfs makes in it is 0700, every file 0600, and an existing state
//! directory is tightened to those modes in one pass at mount.
//!
//! The modes are asked for at creation (not fixed up afterwards), so no
//! file is ever readable by others, even for a moment, whatever the umask.
//! A rename keeps a file's mode, so a temp file made here is still 0600
//! once it becomes a blob in `objects/`.
//!
//! pushfs runs as root, so a symlink planted in the state directory would
//! make it write, grow or delete whatever the link names. It never makes
//! one there: a mount refuses a state directory holding one where pushfs
//! keeps its own files, or an entry another user owns, and files are
//! opened with `O_NOFOLLOW`.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The mode of every directory in the state directory, itself included.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of every file in the state directory.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// `mkdir -p` with mode 0700 for every directory it creates. Directories
/// that already exist are left as they are.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
}

/// Options that create files with mode 0600; add `read`, `write`,
/// `create`... as usual. An existing file keeps its mode.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW);
    options
}

/// Opens a file of the state directory for reading, refusing a symlink.
pub fn open_nofollow(path: &Path) -> io::Result<fs::File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[derive(Debug, Error)]
pub enum UnsafeEntry {
    #[error(
        "{} is a symlink; pushfs (often root) would follow it out of the state directory: \
         remove it, or pass another --state-dir", .0.display()
    )]
    Symlink(PathBuf),
    #[error(
        "{} belongs to uid {owner}, not to the mounting user (uid {me}): \
         another user could swap it for a symlink; remove it or chown it", path.display()
    )]
    Foreign { path: PathBuf, owner: u32, me: u32 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Refuses, at mount, a state directory whose own entries (the directory,
/// what it holds, and one level below `objects/`, `tmp/` and `apps/`) are
/// symlinks or belong to another user. `root` itself may be a symlink.
pub fn refuse_unsafe_entries(root: &Path) -> Result<(), UnsafeEntry> {
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let check = |path: &Path, meta: &fs::Metadata| {
        if meta.file_type().is_symlink() {
            return Err(UnsafeEntry::Symlink(path.to_path_buf()));
        }
        if meta.uid() != me {
            return Err(UnsafeEntry::Foreign {
                path: path.to_path_buf(),
                owner: meta.uid(),
                me,
            });
        }
        Ok(())
    };
    check(root, &fs::metadata(root).map_err(|e| with_path(root, e))?)?;
    let mut dirs = vec![(root.to_path_buf(), true)];
    while let Some((dir, descend)) = dirs.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| with_path(&dir, e))? {
            let entry = entry.map_err(|e| with_path(&dir, e))?;
            let path = entry.path();
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(with_path(&path, e).into()),
            };
            check(&path, &meta)?;
            let kept = matches!(entry.file_name().to_str(), Some("objects" | "tmp" | "apps"));
            if descend && meta.is_dir() && kept {
                dirs.push((path, false));
            }
        }
    }
    Ok(())
}

/// Sets every directory under `root` (and `root`) to 0700 and every regular
/// file to 0600, in one pass. Returns how many entries it changed. Symlinks
/// are neither followed nor changed; `root` itself may be one.
pub fn tighten_state_dir(root: &Path) -> io::Result<usize> {
    let mut fixed = 0;
    // The root first: once it is 0700, nobody else can reach what is inside.
    let meta = fs::metadata(root).map_err(|e| with_path(root, e))?;
    fixed += tighten(root, mode_of(&meta), PRIVATE_DIR_MODE)?;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| with_path(&dir, e))? {
            let entry = entry.map_err(|e| with_path(&dir, e))?;
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(with_path(&path, e)),
            };
            if meta.is_dir() {
                fixed += tighten(&path, mode_of(&meta), PRIVATE_DIR_MODE)?;
                dirs.push(path);
            } else if meta.is_file() {
                fixed += tighten(&path, mode_of(&meta), PRIVATE_FILE_MODE)?;
            }
        }
    }
    Ok(fixed)
}

/// Tightens the state directory at mount ([`tighten_state_dir`]) and says
/// so in one log line if anything was open to other users.
pub fn make_state_dir_private(root: &Path) -> io::Result<usize> {
    let fixed = tighten_state_dir(root)?;
    if fixed > 0 {
        tracing::warn!(
            state_dir = %root.display(),
            fixed,
            "the state directory was open to other users: made {fixed} entries private (directories 0700, files 0600)"
        );
    }
    Ok(fixed)
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Sets `path` to `wanted` unless it is already; 1 if it changed.
fn tighten(path: &Path, mode: u32, wanted: u32) -> io::Result<usize> {
    if mode == wanted {
        return Ok(0);
    }
    fs::set_permissions(path, Permissions::from_mode(wanted)).map_err(|e| with_path(path, e))?;
    Ok(1)
}

fn with_path(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn directories_and_files_are_created_private() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("state/objects/ab");
        let file = tmp.path().join("state/objects/ab/blob");
        // The umask is process-wide, so it is left alone here; the
        // real-mount tests (tests/privacy.rs) run with umask 0.
        create_private_dir_all(&deep).unwrap();
        let mut f = private_file_options()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap();
        f.write_all(b"secret").unwrap();
        assert_eq!(mode(&tmp.path().join("state")), 0o700);
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(&file), 0o600);
        let moved = tmp.path().join("state/objects/moved");
        fs::rename(&file, &moved).unwrap();
        assert_eq!(mode(&moved), 0o600, "a rename keeps the mode");
    }

    #[test]
    fn an_open_tree_is_tightened_in_one_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("state");
        fs::create_dir_all(root.join("apps/a1")).unwrap();
        fs::create_dir_all(root.join("objects/ab")).unwrap();
        fs::write(root.join("apps/a1/manifest.json"), "{}").unwrap();
        fs::write(root.join("objects/ab/cdef"), "blob").unwrap();
        fs::write(root.join("meta.db"), "").unwrap();
        fs::write(root.join("lock"), "").unwrap();
        fs::set_permissions(root.join("lock"), Permissions::from_mode(0o600)).unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, "not ours").unwrap();
        fs::set_permissions(&outside, Permissions::from_mode(0o644)).unwrap();
        symlink(&outside, root.join("link")).unwrap();
        for dir in ["", "apps", "apps/a1", "objects", "objects/ab"] {
            fs::set_permissions(root.join(dir), Permissions::from_mode(0o755)).unwrap();
        }
        for file in ["apps/a1/manifest.json", "objects/ab/cdef", "meta.db"] {
            fs::set_permissions(root.join(file), Permissions::from_mode(0o644)).unwrap();
        }

        // 5 directories and 3 files were open; the lock already was private.
        assert_eq!(tighten_state_dir(&root).unwrap(), 8);
        for dir in ["", "apps", "apps/a1", "objects", "objects/ab"] {
            assert_eq!(mode(&root.join(dir)), 0o700, "{dir}");
        }
        for file in [
            "apps/a1/manifest.json",
            "objects/ab/cdef",
            "meta.db",
            "lock",
        ] {
            assert_eq!(mode(&root.join(file)), 0o600, "{file}");
        }
        assert_eq!(mode(&outside), 0o644, "a symlink's target is not ours");
        assert_eq!(tighten_state_dir(&root).unwrap(), 0, "nothing left to fix");
    }

    #[test]
    fn a_missing_root_names_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("nope");
        let err = tighten_state_dir(&root).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
