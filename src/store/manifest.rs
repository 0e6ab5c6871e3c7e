//! Each app's manifest on disk: path → blob, size, mode, sha1, written
//! atomically (temp file, fsync, rename, fsync of the directory).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::private_files::{create_private_dir_all, private_file_options};

pub const FORMAT: u32 = 1;
const FILE_NAME: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppManifest {
    pub format: u32,
    pub id: String,
    pub backend: BackendKind,
    pub name: String,
    pub root: EntryMeta,
    /// Parents before children.
    pub entries: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    /// Seconds and nanoseconds since the epoch.
    pub mtime: (u64, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    #[serde(flatten)]
    pub meta: EntryMeta,
    pub kind: ManifestKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ManifestKind {
    File {
        sha256: String,
        sha1: String,
        size: u64,
    },
    /// A file that was open for writing when the manifest was written;
    /// its bytes are in this temp file and are sealed on the next start.
    Writing {
        temp: PathBuf,
    },
    Dir,
    Symlink {
        target: String,
    },
}

pub fn time_to_pair(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

pub fn pair_to_time((secs, nanos): (u64, u32)) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// The directory of one app's persisted files (manifest, status, log).
pub fn app_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("apps").join(id)
}

/// Writes the manifest atomically: a reader (or a crash) sees the old or the new one.
pub fn commit(state_dir: &Path, manifest: &AppManifest) -> io::Result<()> {
    let dir = app_dir(state_dir, &manifest.id);
    write_atomically(&dir, FILE_NAME, &serde_json::to_vec(manifest)?)
}

/// Writes `name` in `dir` via temp + fsync + rename + fsync(dir).
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

/// Loads every app's manifest; an unreadable one is reported, not fatal.
pub fn load_all(state_dir: &Path) -> io::Result<(Vec<AppManifest>, Vec<String>)> {
    let apps = state_dir.join("apps");
    let mut manifests = Vec::new();
    let mut problems = Vec::new();
    if !apps.exists() {
        return Ok((manifests, problems));
    }
    for dir in fs::read_dir(&apps)? {
        let path = dir?.path().join(FILE_NAME);
        if !path.exists() {
            continue;
        }
        match fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<AppManifest>(&b).map_err(|e| e.to_string()))
        {
            Ok(m) if m.format == FORMAT => manifests.push(m),
            Ok(m) => problems.push(format!("{}: unknown format {}", path.display(), m.format)),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    manifests.sort_by(|a, b| (a.backend, &a.name).cmp(&(b.backend, &b.name)));
    Ok((manifests, problems))
}

/// Forgets an app: its manifest, status and log.
pub fn remove_app(state_dir: &Path, id: &str) -> io::Result<()> {
    let dir = app_dir(state_dir, id);
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AppManifest {
        let meta = EntryMeta {
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: (1, 2),
        };
        AppManifest {
            format: FORMAT,
            id: "a1".into(),
            backend: BackendKind::Cf,
            name: "myapp".into(),
            root: meta,
            entries: vec![
                ManifestEntry {
                    path: "src".into(),
                    meta,
                    kind: ManifestKind::Dir,
                },
                ManifestEntry {
                    path: "src/main.py".into(),
                    meta: EntryMeta {
                        perm: 0o644,
                        ..meta
                    },
                    kind: ManifestKind::File {
                        sha256: "ab".repeat(32),
                        sha1: "cd".repeat(20),
                        size: 3,
                    },
                },
                ManifestEntry {
                    path: "link".into(),
                    meta,
                    kind: ManifestKind::Symlink {
                        target: "src/main.py".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn round_trip_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let m = sample();
        commit(dir.path(), &m).unwrap();
        let (loaded, problems) = load_all(dir.path()).unwrap();
        assert!(problems.is_empty());
        assert_eq!(loaded, vec![m]);
        assert!(!app_dir(dir.path(), "a1")
            .join(".manifest.json.tmp")
            .exists());
    }

    #[test]
    fn a_corrupt_manifest_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        commit(dir.path(), &sample()).unwrap();
        let bad = app_dir(dir.path(), "b2");
        fs::create_dir_all(&bad).unwrap();
        fs::write(bad.join(FILE_NAME), "{not json").unwrap();
        let (loaded, problems) = load_all(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("b2"));
    }

    #[test]
    fn remove_app_forgets_everything() {
        let dir = tempfile::tempdir().unwrap();
        commit(dir.path(), &sample()).unwrap();
        remove_app(dir.path(), "a1").unwrap();
        assert!(load_all(dir.path()).unwrap().0.is_empty());
        remove_app(dir.path(), "a1").unwrap();
    }
}
