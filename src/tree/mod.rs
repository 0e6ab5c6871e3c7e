//! The namespace: inodes, directories, open handles and the virtual
//! `.pushfs/` files. Knows nothing about HTTP or fuser: the FUSE adapter
//! calls plain methods that return [`Attr`]s or a [`TreeError`].
//!
//! The metadata engine ([`crate::meta`]) holds every inode and name; each
//! operation here is one engine transaction, committed before it returns.
//! In memory the tree keeps only what lives while mounted: open handles,
//! files being written (their temp files), and the list of apps. Lock
//! order: the engine, then `open`, then `apps`; hooks are called with none
//! held.

mod content;
mod error;
mod handles;
mod history;
mod hooks;
mod io;
mod kernel;
mod missing_blob;
mod node;
mod ops;
mod recovery;
mod sealer;
pub mod status_files;
mod status_inodes;
mod xattr;

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::ignore::{IgnoreRules, STATUS_DIR};
use crate::kind::{BackendKind, IgnoreProfile};
use crate::meta::{BlobPins, InodeKind, InodeRow, MetaStore, Txn};
use crate::snapshot::{SnapshotEntry, SPEC_LIMIT};
use crate::store::ContentStore;

pub use content::OpenFile;
pub use error::{TreeError, TreeResult};
pub use handles::Opened;
pub use history::{DeployRecord, RolledBack};
pub use hooks::{AppReadiness, CtlCommand, DeployHooks};
pub use io::StatFs;
pub use kernel::KernelCache;
pub use node::DirEntry;
pub use node::{Attr, FileKind, Ino, ROOT_INO};
pub use ops::{Creator, SetAttr};
pub use xattr::XattrReply;

use content::OpenInode;
use handles::HandleTable;
use node::DirRole;
use sealer::Sealer;
use status_files::StatusFile;
use status_inodes::StatusInode;

/// An app's stable identity: survives renames and remounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(pub String);

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
struct AppEntry {
    id: AppId,
    backend: BackendKind,
}

/// The apps by root inode, and back.
#[derive(Debug, Default)]
struct AppIndex {
    by_root: HashMap<Ino, AppEntry>,
    by_id: HashMap<AppId, Ino>,
}

impl AppIndex {
    fn insert(&mut self, root: Ino, entry: AppEntry) {
        self.by_id.insert(entry.id.clone(), root);
        self.by_root.insert(root, entry);
    }

    fn remove(&mut self, root: Ino) -> Option<AppEntry> {
        let entry = self.by_root.remove(&root)?;
        self.by_id.remove(&entry.id);
        Some(entry)
    }
}

pub struct Tree {
    meta: Arc<MetaStore>,
    store: Arc<ContentStore>,
    handles: HandleTable,
    open: Mutex<HashMap<Ino, OpenInode>>,
    apps: Mutex<AppIndex>,
    backends: HashMap<Ino, BackendKind>,
    /// This run's number in the engine; apps changed in it are marked so.
    run: i64,
    /// App roots already marked changed in this run.
    marked: Mutex<HashSet<Ino>>,
    state_dir: PathBuf,
    hooks: Arc<dyn DeployHooks>,
    sealer: Sealer,
    /// Set once mounted: drops the kernel's cached names after a rollback.
    kernel: OnceLock<Box<dyn KernelCache>>,
    /// When the kernel last asked anything, in milliseconds since `born`:
    /// a stop waits until the mount has been quiet for a while.
    last_request_ms: AtomicU64,
    born: std::time::Instant,
    /// False while no inode has a `security.*` attribute: the kernel asks
    /// for `security.capability` before every write, chown and truncate,
    /// and the answer is then "none" without taking the engine.
    security_xattrs: AtomicBool,
}

impl Tree {
    /// Opens the engine in `state_dir`, recovers what the last run left
    /// (files being written, unlinked open files, an unclean stop), and
    /// tells the deploy layer about every app.
    pub fn load(
        state_dir: &Path,
        store: Arc<ContentStore>,
        hooks: Arc<dyn DeployHooks>,
        owner: (u32, u32),
    ) -> TreeResult<Arc<Tree>> {
        let meta = Arc::new(MetaStore::open(state_dir, store.clone())?);
        let start = recovery::prepare(&meta, &store, state_dir, owner)?;
        let security_xattrs = meta.read()?.has_xattr_in(xattr::SECURITY_PREFIX)?;
        let tree = Arc::new_cyclic(|weak| Tree {
            meta,
            store,
            handles: HandleTable::default(),
            open: Mutex::new(HashMap::new()),
            apps: Mutex::new(AppIndex::default()),
            backends: start.backends.clone(),
            run: start.run.run,
            marked: Mutex::new(HashSet::new()),
            state_dir: state_dir.to_path_buf(),
            hooks,
            sealer: Sealer::start(weak.clone()),
            kernel: OnceLock::new(),
            last_request_ms: AtomicU64::new(0),
            born: std::time::Instant::now(),
            security_xattrs: AtomicBool::new(security_xattrs),
        });
        recovery::announce_apps(&tree, &start)?;
        Ok(tree)
    }

    /// Lets the tree tell the kernel about names it changed on its own.
    pub fn set_kernel_cache(&self, kernel: Box<dyn KernelCache>) {
        let _ = self.kernel.set(kernel);
    }

    pub fn store(&self) -> &Arc<ContentStore> {
        &self.store
    }

    pub fn meta(&self) -> &Arc<MetaStore> {
        &self.meta
    }

    /// Finishes pending seals and records a clean stop, unless a file is
    /// still being written (a forced stop): then the next mount recovers it
    /// and holds its app, as after a crash.
    pub fn shutdown(&self) -> TreeResult<()> {
        self.sealer.drain();
        if self.open.lock().values().any(|o| o.writing.is_some()) {
            self.meta.sync()?;
            return Ok(());
        }
        let mut txn = self.meta.begin()?;
        txn.end_run()?;
        txn.commit()?;
        self.meta.sync()?;
        Ok(())
    }

    /// Waits until every closed file is sealed.
    pub fn drain_seals(&self) {
        self.sealer.drain();
    }

    /// Tells the kernel that `ino`'s content changed (once mounted).
    fn forget_content(&self, ino: Ino) {
        if let Some(kernel) = self.kernel.get() {
            kernel.forget_content(ino);
        }
    }

    /// A kernel request arrived (the FUSE adapter calls this for each).
    pub fn note_request(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        self.last_request_ms.store(now, Ordering::Relaxed);
    }

    /// How long since the kernel last asked anything.
    pub fn quiet_for(&self) -> std::time::Duration {
        let last = self.last_request_ms.load(Ordering::Relaxed);
        let now = self.born.elapsed().as_millis() as u64;
        std::time::Duration::from_millis(now.saturating_sub(last))
    }

    /// How many handles are open (a clean stop waits for none).
    pub fn open_handles(&self) -> usize {
        self.open.lock().values().map(|o| o.handles as usize).sum()
    }

    /// The apps, with their backend and current directory name.
    pub fn apps(&self) -> Vec<(AppId, BackendKind, String)> {
        let roots: Vec<(Ino, AppEntry)> = {
            let apps = self.apps.lock();
            apps.by_root.iter().map(|(r, e)| (*r, e.clone())).collect()
        };
        let Ok(txn) = self.meta.read() else {
            return Vec::new();
        };
        let mut out: Vec<_> = roots
            .into_iter()
            .map(|(root, e)| (e.id, e.backend, app_name(&txn, root)))
            .collect();
        out.sort();
        out
    }

    fn app_root(&self, app: &AppId) -> Option<Ino> {
        self.apps.lock().by_id.get(app).copied()
    }

    fn app_id(&self, root: Ino) -> Option<AppId> {
        self.apps.lock().by_root.get(&root).map(|e| e.id.clone())
    }

    /// Whether the app can start a deploy now: no file being written, and
    /// one of `spec_files` present at its root.
    pub fn readiness(&self, app: &AppId, spec_files: &[&'static str]) -> Option<AppReadiness> {
        let root = self.app_root(app)?;
        let txn = self.meta.read().ok()?;
        let mut has_spec = false;
        let mut spec_not_a_file = None;
        for name in spec_files {
            if let Ok(Some(row)) = txn.lookup_row(root, name) {
                match row.kind {
                    InodeKind::File => has_spec = true,
                    InodeKind::Dir => spec_not_a_file = Some((*name, "a directory")),
                    InodeKind::Symlink => spec_not_a_file = Some((*name, "a symlink")),
                }
            }
        }
        let being_written = self.being_written_in(&txn, root);
        drop(txn);
        Some(AppReadiness {
            has_spec,
            being_written,
            spec_not_a_file,
        })
    }

    /// Which of `paths` (from the app root) the app's package would carry
    /// under `profile` and the ignore files at the app root.
    pub fn packaged_of(
        &self,
        app: &AppId,
        paths: &[String],
        profile: &IgnoreProfile,
    ) -> Vec<String> {
        // The worker asks before every deploy; with nothing open there is
        // no engine read and no ignore file to load.
        if paths.is_empty() {
            return Vec::new();
        }
        let Some(root) = self.app_root(app) else {
            return Vec::new();
        };
        let Ok(txn) = self.meta.read() else {
            return paths.to_vec();
        };
        let read_root = |name: &str| {
            let row = txn.lookup_row(root, name).ok()??;
            let blob = row.blob.filter(|b| b.size <= SPEC_LIMIT)?;
            std::fs::read(self.store.blob_path(&blob.sha256)).ok()
        };
        let rules = IgnoreRules::new(profile, read_root);
        paths
            .iter()
            .filter(|p| !rules.is_ignored(p, false))
            .cloned()
            .collect()
    }

    /// The paths (from the app root) of the app's files open for writing;
    /// a file with several names is named by its first. Takes the open
    /// table's lock after the engine's, in the lock order.
    fn being_written_in(&self, txn: &Txn, root: Ino) -> Vec<String> {
        let writing: Vec<Ino> = self
            .open
            .lock()
            .iter()
            .filter(|(_, o)| o.app == Some(root) && o.writing.is_some() && !o.orphan)
            .map(|(ino, _)| *ino)
            .collect();
        let mut paths: Vec<String> = writing
            .into_iter()
            .filter_map(|ino| path_from(txn, root, ino))
            .collect();
        paths.sort();
        paths
    }

    /// The app's entries for a snapshot (status files excluded), its name,
    /// and pins that keep their blobs until the deploy is done. `None` if
    /// the app is gone or a file is still being written. The engine's rows
    /// are turned into entries as they are read: a million-file app is one
    /// list of compact entries, never a list of rows beside it.
    pub fn snapshot_entries(
        &self,
        app: &AppId,
    ) -> Option<(String, Vec<SnapshotEntry>, Vec<String>, BlobPins)> {
        let root = self.app_root(app)?;
        let txn = self.meta.read().ok()?;
        let name = app_name(&txn, root);
        let objects: Arc<Path> = self.store.objects_dir().into();
        let mut entries = Vec::new();
        // Files whose bytes are still in a temp file: open for writing, or
        // closed and waiting for their seal. The deploy decides whether its
        // package would carry them.
        let mut being_written = Vec::new();
        txn.walk_each(root, |path, row| {
            match self.entry_of(&path, &row, &objects) {
                Some(entry) => entries.push(entry),
                None => being_written.push(path),
            }
        })
        .ok()?;
        // Pinned under the engine's lock: no blob can go in between.
        let pins = self.meta.pin(
            entries
                .iter()
                .filter_map(|e| e.file().map(|f| f.blob.pin_key())),
        );
        drop(txn);
        Some((name, entries, being_written, pins))
    }

    /// Records in the engine that this run changed the app, in the
    /// transaction of the change itself (once per run): after a crash, an
    /// app changed in any way comes back held. Only this records `marked`;
    /// a change that reaches the app without a transaction (a write to an
    /// open file) was marked when the file was opened for writing. Should
    /// the transaction fail, the app stays marked in memory only: a rare
    /// full or failing disk, where the next stop is unclean anyway.
    fn mark(&self, txn: &mut Txn, app: Option<Ino>) -> TreeResult<()> {
        if let Some(root) = app {
            let mut marked = self.marked.lock();
            if !marked.contains(&root) {
                txn.mark_app_changed(root, self.run)?;
                marked.insert(root);
            }
        }
        Ok(())
    }

    /// After a commit: the app's settle timer restarts.
    fn notify(&self, app: Option<Ino>) {
        let Some(root) = app else { return };
        if let Some(id) = self.app_id(root) {
            self.hooks.app_changed(&id);
        }
    }

    fn role(&self, row: &InodeRow) -> DirRole {
        if row.ino == ROOT_INO {
            DirRole::Root
        } else if let Some(kind) = self.backends.get(&row.ino) {
            DirRole::Backend(*kind)
        } else {
            DirRole::App
        }
    }

    /// A fresh read of one inode's attributes.
    fn attr(&self, ino: Ino) -> TreeResult<Attr> {
        let txn = self.meta.read()?;
        let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        self.attr_of_row(&txn, &row)
    }

    /// Takes the engine's read view as proof that it is still held: a seal
    /// must not land between reading the row and asking for its temp file,
    /// or the size would read as that of neither.
    fn attr_of_row(&self, _held: &Txn, row: &InodeRow) -> TreeResult<Attr> {
        let mut mtime = row.mtime;
        let mut ctime = row.ctime;
        let (size, blocks) = match row.kind {
            InodeKind::File => {
                let writing = self
                    .open
                    .lock()
                    .get(&row.ino)
                    .and_then(|o| o.writing.clone());
                match writing {
                    Some(open) => {
                        // Writes may bypass us (passthrough): the temp file knows best.
                        let temp = open.stat()?;
                        mtime = temp.mtime;
                        ctime = ctime.max(temp.ctime);
                        (temp.size, temp.blocks)
                    }
                    None => (row.size, self.sealed_blocks(row)),
                }
            }
            InodeKind::Symlink => {
                let size = row.target.as_ref().map_or(0, |t| t.len() as u64);
                (size, size.div_ceil(512))
            }
            InodeKind::Dir => (0, 0),
        };
        Ok(Attr {
            ino: row.ino,
            kind: match row.kind {
                InodeKind::Dir => FileKind::Dir,
                InodeKind::File => FileKind::File,
                InodeKind::Symlink => FileKind::Symlink,
            },
            size,
            blocks,
            perm: row.perm,
            nlink: row.nlink,
            uid: row.uid,
            gid: row.gid,
            atime: row.atime,
            mtime,
            ctime,
            volatile: false,
        })
    }

    /// A sealed file's blocks: a sparse blob's own count (one `stat` of
    /// it), else what its size needs, as every dense blob holds all of it.
    fn sealed_blocks(&self, row: &InodeRow) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let dense = row.size.div_ceil(512);
        match &row.blob {
            Some(blob) if blob.is_sparse() => std::fs::metadata(self.store.blob_path(&blob.sha256))
                .map_or(dense, |meta| meta.blocks()),
            _ => dense,
        }
    }

    fn status_attr(&self, status: StatusInode) -> TreeResult<Attr> {
        let (root, file) = match status {
            StatusInode::Dir { root } => (root, None),
            StatusInode::File { root, file } => (root, Some(file)),
        };
        let owner = self.meta.read()?.inode(root)?.ok_or(TreeError::NotFound)?;
        let app = self.app_id(root).ok_or(TreeError::NotFound)?;
        let now = SystemTime::now();
        let (kind, perm, size, nlink) = match file {
            None => (FileKind::Dir, 0o555, 0, 2),
            Some(file) => (
                FileKind::File,
                file.perm(),
                (self.status_bytes(&app, file)?.len() as u64).max(file.size_floor()),
                1,
            ),
        };
        Ok(Attr {
            ino: status.ino(),
            kind,
            size,
            blocks: size.div_ceil(512),
            perm,
            nlink,
            uid: owner.uid,
            gid: owner.gid,
            atime: now,
            mtime: now,
            ctime: now,
            volatile: true,
        })
    }
}

impl Tree {
    /// What a status file holds now.
    fn status_bytes(&self, app: &AppId, file: StatusFile) -> TreeResult<Vec<u8>> {
        match file {
            StatusFile::History => self.history_text(app),
            other => Ok(self.hooks.status_file(app, other)),
        }
    }
}

/// An app's directory name, from its root's one dentry.
fn app_name(txn: &Txn, root: Ino) -> String {
    txn.names_of(root)
        .ok()
        .and_then(|names| names.into_iter().next())
        .map(|(_, name)| name)
        .unwrap_or_default()
}

/// `ino`'s path from the app root `root`, by its first names.
fn path_from(txn: &Txn, root: Ino, mut ino: Ino) -> Option<String> {
    let mut parts = Vec::new();
    while ino != root {
        let (parent, name) = txn.names_of(ino).ok()?.into_iter().next()?;
        parts.push(name);
        ino = parent;
    }
    parts.reverse();
    Some(parts.join("/"))
}

fn is_app_root(row: &InodeRow) -> bool {
    row.kind == InodeKind::Dir && row.app == Some(row.ino)
}

/// Names must be UTF-8: every package format and API carries them as text.
fn utf8_name(name: &OsStr) -> TreeResult<&str> {
    let name = name.to_str().ok_or(TreeError::InvalidArgument)?;
    if name.len() > 255 {
        return Err(TreeError::NameTooLong);
    }
    Ok(name)
}

fn is_status_dir_name(name: &OsStr) -> bool {
    name == OsStr::new(STATUS_DIR)
}

#[cfg(test)]
mod tests;
