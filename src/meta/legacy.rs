//! The state directory of pushfs before the metadata engine: one JSON
//! manifest per app, rewritten whole. Read once, into a new engine, so an
//! upgrade loses nothing.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{Ino, InodeKind, InodeRow, MetaResult, NewInode, Txn};
use crate::kind::BackendKind;
use crate::store::{BlobInfo, ContentStore};

const FORMAT: u32 = 1;
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

fn pair_to_time((secs, nanos): (u64, u32)) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

/// Whether `state_dir` holds an earlier pushfs's manifests to import:
/// its blobs are named by them, not by a database.
pub fn has_legacy_manifests(state_dir: &Path) -> bool {
    fs::read_dir(state_dir.join("apps"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|dir| dir.path().join(FILE_NAME).is_file())
}

/// Each manifest found, with where it was read from.
type Found = Vec<(PathBuf, AppManifest)>;

/// Loads every app's manifest; an unreadable one is reported, not fatal.
fn load_all(state_dir: &Path) -> io::Result<(Found, Vec<String>)> {
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
            Ok(m) if m.format == FORMAT => manifests.push((path, m)),
            Ok(m) => problems.push(format!("{}: unknown format {}", path.display(), m.format)),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    manifests.sort_by(|(_, a), (_, b)| (a.backend, &a.name).cmp(&(b.backend, &b.name)));
    Ok((manifests, problems))
}

/// Brings the apps of a state directory written by an earlier pushfs (one
/// manifest per app) into a new engine, then renames each manifest to
/// `manifest.json.imported`. Files that were being written keep their temp
/// file, which recovery seals next.
pub fn import_legacy(txn: &mut Txn, store: &ContentStore, state_dir: &Path) -> MetaResult<()> {
    let (manifests, problems) = load_all(state_dir)?;
    for problem in problems {
        tracing::error!(%problem, "skipping an unreadable app manifest");
    }
    for (path, m) in manifests {
        import_app(txn, store, &m)?;
        fs::rename(&path, path.with_extension("json.imported"))?;
        tracing::info!(app = %m.name, backend = %m.backend, "imported the app from its manifest");
    }
    Ok(())
}

fn import_app(txn: &mut Txn, store: &ContentStore, m: &AppManifest) -> MetaResult<()> {
    const ROOT: Ino = 1;
    let Some(backend_dir) = txn.lookup(ROOT, m.backend.dir_name())? else {
        return Ok(());
    };
    let root = txn.insert_inode(&new_inode(InodeKind::Dir, backend_dir, None, &m.root))?;
    txn.insert_dentry(backend_dir, &m.name, root)?;
    txn.insert_app(&m.id, m.backend.dir_name(), root, 0)?;
    adjust(txn, backend_dir, |row| row.nlink += 1)?;
    let mut dirs: HashMap<String, Ino> = HashMap::from([(String::new(), root)]);
    for entry in &m.entries {
        let (parent_path, name) = match entry.path.rsplit_once('/') {
            Some((p, n)) => (p.to_string(), n),
            None => (String::new(), entry.path.as_str()),
        };
        let Some(&parent) = dirs.get(&parent_path) else {
            tracing::error!(app = %m.name, path = %entry.path, "manifest entry has no parent; skipped");
            continue;
        };
        let mut new = new_inode(InodeKind::File, parent, Some(root), &entry.meta);
        match &entry.kind {
            ManifestKind::Dir => new.kind = InodeKind::Dir,
            ManifestKind::Symlink { target } => {
                new.kind = InodeKind::Symlink;
                new.target = Some(target.clone());
            }
            ManifestKind::File { sha256, sha1, size } => {
                if !store.has_blob(sha256) {
                    tracing::error!(app = %m.name, path = %entry.path, "content missing from the store; file dropped");
                    continue;
                }
                new.blob = Some(BlobInfo {
                    sha256: sha256.clone(),
                    sha1: sha1.clone(),
                    size: *size,
                });
            }
            ManifestKind::Writing { temp } => new.temp = Some(temp.clone()),
        }
        let ino = txn.insert_inode(&new)?;
        txn.insert_dentry(parent, name, ino)?;
        adjust(txn, ino, |row| set_times(row, &entry.meta))?;
        if new.kind == InodeKind::Dir {
            dirs.insert(entry.path.clone(), ino);
            adjust(txn, parent, |row| row.nlink += 1)?;
        }
    }
    adjust(txn, root, |row| {
        row.app = Some(root);
        set_times(row, &m.root);
    })
}

fn new_inode(kind: InodeKind, parent: Ino, app: Option<Ino>, meta: &EntryMeta) -> NewInode {
    NewInode {
        kind,
        parent,
        app,
        perm: meta.perm,
        uid: meta.uid,
        gid: meta.gid,
        blob: None,
        temp: None,
        target: None,
    }
}

fn set_times(row: &mut InodeRow, meta: &EntryMeta) {
    let mtime = pair_to_time(meta.mtime);
    (row.atime, row.mtime, row.ctime) = (mtime, mtime, mtime);
}

fn adjust(txn: &mut Txn, ino: Ino, edit: impl FnOnce(&mut InodeRow)) -> MetaResult<()> {
    if let Some(mut row) = txn.inode(ino)? {
        edit(&mut row);
        txn.update_attrs(&row)?;
    }
    Ok(())
}
