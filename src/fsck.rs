//! `pushfs fsck STATE_DIR`: what a damaged state directory left in
//! lost+found, whose files it was, and putting it back.
//!
//! Without options it only reads: the state directory's lock is taken (so
//! no pushfs mounts it meanwhile) and the database is opened read-only.
//! `--restore` moves back into the store every lost blob the database
//! names (its files read again); `--restore-to DIR` writes every lost blob
//! that the database, a kept tree or a kept copy of a damaged database
//! names to `DIR/<backend>/<app>/<path>`, to copy back into the mount;
//! `--purge` deletes what lost+found holds, after those.
//!
//! Exit codes follow fsck(8): 0 clean, 1 problems fixed, 4 problems left,
//! 8 an operational error (a mounted state directory, an unreadable one).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::meta::{db_path, BlobName, Inspector, MetaError};
use crate::store::{lost_found, ContentStore};

pub const CLEAN: u8 = 0;
pub const FIXED: u8 = 1;
pub const PROBLEMS_LEFT: u8 = 4;
pub const OPERATIONAL_ERROR: u8 = 8;

#[derive(Debug, Error)]
pub enum FsckError {
    #[error("{} is not a pushfs state directory (no objects/ in it)", .0.display())]
    NotAStateDir(PathBuf),
    #[error("{} is in use by a running pushfs; unmount it first (pushfs unmount MOUNTPOINT)", .0.display())]
    Mounted(PathBuf),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Meta(#[from] MetaError),
}

#[derive(Debug, Default, Clone)]
pub struct FsckOptions {
    /// Put lost blobs the database names back into the store.
    pub restore: bool,
    /// Write lost blobs to this directory by the paths that name them.
    pub restore_to: Option<PathBuf>,
    /// Delete what lost+found holds (after restoring).
    pub purge: bool,
}

/// What a run found and did: the text for the operator, and the exit code.
#[derive(Debug)]
pub struct FsckReport {
    pub text: String,
    pub code: u8,
}

/// One file of lost+found and what names it.
struct Lost {
    sha256: String,
    path: PathBuf,
    size: u64,
    /// Names from the state directory's own database.
    current: Vec<BlobName>,
    /// Names from kept copies of a damaged database, with the copy's name.
    salvaged: Vec<(String, BlobName)>,
}

pub fn run(state_dir: &Path, options: &FsckOptions) -> Result<FsckReport, FsckError> {
    if !state_dir.join("objects").is_dir() {
        return Err(FsckError::NotAStateDir(state_dir.to_path_buf()));
    }
    let _lock = crate::state_dir::lock(state_dir)?
        .ok_or_else(|| FsckError::Mounted(state_dir.to_path_buf()))?;
    let mut text = String::new();
    let mut lost = gather_lost(state_dir)?;
    let wanted: HashSet<String> = lost.iter().map(|l| l.sha256.clone()).collect();
    let mut unreadable = false;

    let db = db_path(state_dir);
    let mut missing = Vec::new();
    if db.exists() {
        match Inspector::open(&db) {
            Ok(current) => {
                let mut names = current.names(&wanted)?;
                for entry in &mut lost {
                    entry.current = names.remove(&entry.sha256).unwrap_or_default();
                }
                missing = missing_blobs(state_dir, &current, &wanted)?;
            }
            Err(err) => {
                unreadable = true;
                writeln!(text, "the database cannot be read: {err}").ok();
            }
        }
    }
    let copies = lost_found::damaged_copies(state_dir)?;
    for copy in &copies {
        let label = copy
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match Inspector::salvage(&db_path(copy)).and_then(|s| s.names(&wanted)) {
            Ok(mut names) => {
                for entry in &mut lost {
                    for name in names.remove(&entry.sha256).unwrap_or_default() {
                        entry.salvaged.push((label.clone(), name));
                    }
                }
            }
            Err(err) => {
                writeln!(text, "the damaged copy {label} cannot be read: {err}").ok();
            }
        }
    }

    describe(&mut text, state_dir, &lost, &copies, &missing);
    let found_problems =
        !lost.is_empty() || !copies.is_empty() || !missing.is_empty() || unreadable;
    let mut acted = false;
    if options.restore {
        acted |= restore_into_store(&mut text, state_dir, &mut lost)?;
    }
    if let Some(dir) = &options.restore_to {
        acted |= restore_to(&mut text, dir, &lost)?;
    }
    if options.purge {
        acted |= purge(&mut text, state_dir, &lost, &copies)?;
    }
    let left = !lost_found::entries(state_dir)?.is_empty()
        || !lost_found::damaged_copies(state_dir)?.is_empty()
        || !missing.is_empty()
        || unreadable;
    let code = match (found_problems, left, acted) {
        (false, _, _) => CLEAN,
        (true, true, _) => PROBLEMS_LEFT,
        (true, false, _) => FIXED,
    };
    if code == CLEAN {
        writeln!(text, "{}: clean; lost+found is empty", state_dir.display()).ok();
    }
    Ok(FsckReport { text, code })
}

fn gather_lost(state_dir: &Path) -> io::Result<Vec<Lost>> {
    lost_found::entries(state_dir)?
        .into_iter()
        .map(|(sha256, path)| {
            Ok(Lost {
                size: fs::metadata(&path)?.len(),
                sha256,
                path,
                current: Vec::new(),
                salvaged: Vec::new(),
            })
        })
        .collect()
}

/// Blobs the database names that are neither in the store nor in lost+found.
fn missing_blobs(
    state_dir: &Path,
    current: &Inspector,
    in_lost_found: &HashSet<String>,
) -> Result<Vec<(String, Vec<BlobName>)>, FsckError> {
    let absent: HashSet<String> = current
        .named_blobs()?
        .into_iter()
        .filter(|sha| !in_lost_found.contains(sha) && !blob_path(state_dir, sha).exists())
        .collect();
    let mut names: Vec<_> = current.names(&absent)?.into_iter().collect();
    names.sort();
    Ok(names)
}

fn blob_path(state_dir: &Path, sha256: &str) -> PathBuf {
    let (prefix, rest) = sha256.split_at(2.min(sha256.len()));
    state_dir.join("objects").join(prefix).join(rest)
}

fn describe(
    text: &mut String,
    state_dir: &Path,
    lost: &[Lost],
    copies: &[PathBuf],
    missing: &[(String, Vec<BlobName>)],
) {
    let dir = lost_found::lost_found_dir(state_dir);
    if !lost.is_empty() {
        let bytes: u64 = lost.iter().map(|l| l.size).sum();
        writeln!(
            text,
            "{}: {} files, {bytes} bytes",
            dir.display(),
            lost.len()
        )
        .ok();
    }
    for entry in lost {
        writeln!(text, "  {}  {} bytes", entry.sha256, entry.size).ok();
        for name in &entry.current {
            writeln!(
                text,
                "    {}  (restorable: the database names it)",
                label(name)
            )
            .ok();
        }
        for (copy, name) in &entry.salvaged {
            writeln!(
                text,
                "    {}  (named in {copy}; --restore-to writes it)",
                label(name)
            )
            .ok();
        }
        if entry.current.is_empty() && entry.salvaged.is_empty() {
            writeln!(text, "    no name found").ok();
        }
    }
    for copy in copies {
        writeln!(text, "damaged database kept at {}", copy.display()).ok();
    }
    for (sha, names) in missing {
        for name in names {
            writeln!(
                text,
                "missing: {} (blob {sha}) is not on disk; reading it fails with EIO",
                label(name)
            )
            .ok();
        }
    }
}

fn label(name: &BlobName) -> String {
    match name {
        BlobName::File(path) => path.clone(),
        BlobName::Kept { path, digest } => {
            format!("{path} in kept tree {}", &digest[..digest.len().min(16)])
        }
    }
}

/// Moves each lost blob the database names back under its content address.
fn restore_into_store(
    text: &mut String,
    state_dir: &Path,
    lost: &mut Vec<Lost>,
) -> io::Result<bool> {
    let store = ContentStore::open(state_dir)?;
    let mut acted = false;
    let mut kept = Vec::new();
    for entry in lost.drain(..) {
        if entry.current.is_empty() {
            kept.push(entry);
            continue;
        }
        if store.restore_from_lost_found(&entry.path, &entry.sha256)? {
            for name in &entry.current {
                writeln!(text, "restored {} to the store", label(name)).ok();
            }
            acted = true;
        } else {
            writeln!(
                text,
                "not restored: {} does not hash to its name",
                entry.path.display()
            )
            .ok();
            kept.push(entry);
        }
    }
    *lost = kept;
    Ok(acted)
}

/// Writes each named lost blob to `dir` by every path that names it. An
/// existing file is never overwritten.
fn restore_to(text: &mut String, dir: &Path, lost: &[Lost]) -> io::Result<bool> {
    let mut targets: BTreeMap<String, &Path> = BTreeMap::new();
    for entry in lost {
        let names = entry
            .current
            .iter()
            .chain(entry.salvaged.iter().map(|(_, name)| name));
        for name in names {
            targets
                .entry(name.path().to_string())
                .or_insert(&entry.path);
        }
    }
    let mut acted = false;
    for (path, source) in targets {
        let Some(relative) = safe_relative(&path) else {
            writeln!(text, "skipped {path}: not a plain relative path").ok();
            continue;
        };
        let dest = dir.join(relative);
        if dest.exists() {
            writeln!(text, "skipped {}: it exists", dest.display()).ok();
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(source, &dest)?;
        writeln!(text, "wrote {}", dest.display()).ok();
        acted = true;
    }
    Ok(acted)
}

/// `path` as a relative path with no `..`, `.` or root in it.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return None;
        }
        out.push(part);
    }
    Some(out)
}

fn purge(
    text: &mut String,
    state_dir: &Path,
    lost: &[Lost],
    copies: &[PathBuf],
) -> io::Result<bool> {
    let mut removed = 0;
    for entry in lost {
        match fs::remove_file(&entry.path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    for copy in copies {
        fs::remove_dir_all(copy)?;
    }
    writeln!(
        text,
        "purged {removed} files and {} damaged database copies from {}",
        copies.len(),
        lost_found::lost_found_dir(state_dir).display()
    )
    .ok();
    Ok(removed > 0 || !copies.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_written() {
        assert_eq!(
            safe_relative("cf/shop/a.txt"),
            Some(PathBuf::from("cf/shop/a.txt"))
        );
        assert_eq!(safe_relative("cf/../../etc/passwd"), None);
        assert_eq!(safe_relative("/etc/passwd"), None);
        assert_eq!(safe_relative("cf//a"), None);
    }

    #[test]
    fn a_state_dir_in_use_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("objects")).unwrap();
        let _held = crate::state_dir::lock(dir.path()).unwrap().unwrap();
        let err = run(dir.path(), &FsckOptions::default()).unwrap_err();
        assert!(matches!(err, FsckError::Mounted(_)), "{err}");
    }

    #[test]
    fn a_clean_state_dir_reports_clean_and_lost_files_are_reported_and_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let report = run(dir.path(), &FsckOptions::default()).unwrap();
        assert_eq!(report.code, CLEAN, "{}", report.text);
        let blob = store.put_bytes(b"forgotten").unwrap();
        store.set_aside_unreferenced(&HashSet::new()).unwrap();
        let report = run(dir.path(), &FsckOptions::default()).unwrap();
        assert_eq!(report.code, PROBLEMS_LEFT, "{}", report.text);
        assert!(report.text.contains(&blob.sha256), "{}", report.text);
        assert!(report.text.contains("no name found"), "{}", report.text);
        let purge = FsckOptions {
            purge: true,
            ..FsckOptions::default()
        };
        let report = run(dir.path(), &purge).unwrap();
        assert_eq!(report.code, FIXED, "{}", report.text);
        assert!(lost_found::entries(dir.path()).unwrap().is_empty());
    }
}
