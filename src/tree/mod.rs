//! The namespace: inodes, directories, open handles and the virtual
//! `.pushfs/` files. Knows nothing about HTTP or fuser: the FUSE adapter
//! calls plain methods that return [`Attr`]s or a [`TreeError`].
//!
//! One mutex guards the inode table; it is held only for in-memory work.
//! File bytes are read and written through handles outside it, and hashing
//! a finished file happens outside it too.

mod content;
mod error;
mod handles;
mod hooks;
mod io;
mod node;
mod ops;
mod persist;
pub mod status_files;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::backend::BackendKind;
use crate::deploy::snapshot::{EntryKind, FileContent, SnapshotEntry};
use crate::package::ignore::STATUS_DIR;
use crate::store::ContentStore;

pub use content::OpenFile;
pub use error::{TreeError, TreeResult};
pub use handles::Opened;
pub use hooks::{AppReadiness, CtlCommand, DeployHooks};
pub use io::{DirEntry, StatFs};
pub use node::{Attr, FileKind, Ino, ROOT_INO};
pub use ops::{Creator, SetAttr};

use handles::HandleTable;
use node::{Content, DirRole, Meta, Node, NodeKind};
use status_files::StatusFile;

/// An app's stable identity: survives renames and remounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(pub String);

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug)]
struct AppEntry {
    root: Ino,
    status_dir: Ino,
    backend: BackendKind,
}

#[derive(Debug)]
struct TreeState {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    apps: BTreeMap<AppId, AppEntry>,
}

pub struct Tree {
    state: Mutex<TreeState>,
    handles: HandleTable,
    store: Arc<ContentStore>,
    state_dir: PathBuf,
    hooks: Arc<dyn DeployHooks>,
    /// Apps whose manifest must be written again.
    unsaved: Mutex<HashSet<AppId>>,
}

impl Tree {
    /// Builds the tree from the manifests in `state_dir`, recovering files
    /// that were being written when the last run ended, and collecting
    /// blobs that nothing refers to any more.
    pub fn load(
        state_dir: &Path,
        store: Arc<ContentStore>,
        hooks: Arc<dyn DeployHooks>,
        owner: (u32, u32),
    ) -> std::io::Result<Arc<Tree>> {
        let mut nodes = HashMap::new();
        let root_meta = Meta::new(0o755, owner.0, owner.1);
        let mut root_children = BTreeMap::new();
        let mut next_ino = ROOT_INO + 1;
        for kind in BackendKind::ALL {
            let ino = next_ino;
            next_ino += 1;
            root_children.insert(OsString::from(kind.dir_name()), ino);
            let kind = NodeKind::Dir {
                children: BTreeMap::new(),
                role: DirRole::Backend(kind),
            };
            nodes.insert(
                ino,
                Node::attached(ROOT_INO, kind_name(&kind), kind, root_meta),
            );
        }
        let root = NodeKind::Dir {
            children: root_children,
            role: DirRole::Root,
        };
        nodes.insert(ROOT_INO, Node::attached(ROOT_INO, "", root, root_meta));
        let tree = Arc::new(Tree {
            state: Mutex::new(TreeState {
                nodes,
                next_ino,
                apps: BTreeMap::new(),
            }),
            handles: HandleTable::default(),
            store,
            state_dir: state_dir.to_path_buf(),
            hooks,
            unsaved: Mutex::new(HashSet::new()),
        });
        persist::restore(&tree)?;
        Ok(tree)
    }

    pub fn store(&self) -> &Arc<ContentStore> {
        &self.store
    }

    /// The apps, with their backend and current directory name.
    pub fn apps(&self) -> Vec<(AppId, BackendKind, String)> {
        let state = self.state.lock();
        state
            .apps
            .iter()
            .map(|(id, e)| {
                let name = state.nodes[&e.root].name.to_string_lossy().into_owned();
                (id.clone(), e.backend, name)
            })
            .collect()
    }

    /// Whether the app can start a deploy now: no file being written, and
    /// one of `spec_files` present at its root.
    pub fn readiness(&self, app: &AppId, spec_files: &[&str]) -> Option<AppReadiness> {
        let state = self.state.lock();
        let entry = state.apps.get(app)?;
        let root = &state.nodes[&entry.root];
        let children = root.children()?;
        let has_spec = spec_files.iter().any(|name| {
            children
                .get(OsStr::new(name))
                .is_some_and(|ino| matches!(state.nodes[ino].kind, NodeKind::File { .. }))
        });
        let mut files_being_written = 0;
        state.walk(entry.root, &mut |_, node| {
            if let NodeKind::File {
                content: Content::Open(_),
            } = &node.kind
            {
                files_being_written += 1;
            }
        });
        Some(AppReadiness {
            has_spec,
            files_being_written,
        })
    }

    /// The app's entries for a snapshot (status files excluded), and its name.
    /// `None` if the app is gone or a file is still being written.
    pub fn snapshot_entries(&self, app: &AppId) -> Option<(String, Vec<SnapshotEntry>)> {
        let state = self.state.lock();
        let entry = state.apps.get(app)?;
        let name = state.nodes[&entry.root].name.to_string_lossy().into_owned();
        let mut entries = Vec::new();
        let mut complete = true;
        state.walk(entry.root, &mut |path, node| {
            let kind = match &node.kind {
                NodeKind::Dir { .. } => EntryKind::Dir,
                NodeKind::Symlink { target } => EntryKind::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
                NodeKind::File {
                    content: Content::Blob(blob),
                } => EntryKind::File(FileContent {
                    path: self.store.blob_path(&blob.sha256),
                    blob: blob.clone(),
                }),
                NodeKind::File {
                    content: Content::Open(_),
                } => {
                    complete = false;
                    return;
                }
                _ => return,
            };
            entries.push(SnapshotEntry {
                path: path.to_string(),
                mode: u32::from(node.meta.perm),
                kind,
            });
        });
        complete.then_some((name, entries))
    }

    /// Marks the app holding `ino` changed: its settle timer restarts and
    /// its manifest is saved again.
    fn changed(&self, state: &TreeState, ino: Ino) {
        if let Some(app) = state.app_of(ino) {
            self.app_changed(app);
        }
    }

    fn app_changed(&self, app: AppId) {
        self.hooks.app_changed(&app);
        self.unsaved.lock().insert(app);
    }

    fn attr_of(&self, state: &TreeState, ino: Ino) -> TreeResult<Attr> {
        let node = state.nodes.get(&ino).ok_or(TreeError::NotFound)?;
        let mut mtime = node.meta.mtime;
        let (size, volatile) = match &node.kind {
            NodeKind::File {
                content: Content::Blob(b),
            } => (b.size, false),
            NodeKind::File {
                content: Content::Open(f),
            } => {
                // Writes may bypass us (passthrough): the temp file knows best.
                let (size, modified) = f.stat()?;
                mtime = modified;
                (size, false)
            }
            NodeKind::Symlink { target } => (target.len() as u64, false),
            NodeKind::StatusFile { app, file } => {
                (self.status_bytes(app, *file).len() as u64, true)
            }
            NodeKind::StatusDir { .. } => (0, true),
            _ => (0, false),
        };
        let nlink = match &node.kind {
            NodeKind::Dir { children, .. } => 2 + state.subdirs(children),
            NodeKind::StatusDir { .. } => 2,
            _ if node.detached => 0,
            _ => 1,
        };
        Ok(Attr {
            ino,
            kind: node.file_kind(),
            size,
            perm: node.meta.perm,
            nlink,
            uid: node.meta.uid,
            gid: node.meta.gid,
            atime: node.meta.atime,
            mtime,
            ctime: node.meta.ctime,
            volatile,
        })
    }

    fn status_bytes(&self, app: &AppId, file: StatusFile) -> Vec<u8> {
        self.hooks.status_file(app, file)
    }
}

fn kind_name(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Dir {
            role: DirRole::Backend(b),
            ..
        } => b.dir_name(),
        _ => "",
    }
}

impl Node {
    fn attached(parent: Ino, name: &str, kind: NodeKind, meta: Meta) -> Node {
        Node {
            parent,
            name: OsString::from(name),
            kind,
            meta,
            lookups: 0,
            open_handles: 0,
            detached: false,
        }
    }
}

impl TreeState {
    fn alloc(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    fn node(&self, ino: Ino) -> TreeResult<&Node> {
        self.nodes.get(&ino).ok_or(TreeError::NotFound)
    }

    fn node_mut(&mut self, ino: Ino) -> TreeResult<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(TreeError::NotFound)
    }

    fn subdirs(&self, children: &BTreeMap<OsString, Ino>) -> u32 {
        children
            .values()
            .filter(|ino| matches!(self.nodes[ino].kind, NodeKind::Dir { .. }))
            .count() as u32
    }

    /// The app whose root is `ino` or an ancestor of it.
    fn app_of(&self, mut ino: Ino) -> Option<AppId> {
        loop {
            let node = self.nodes.get(&ino)?;
            match &node.kind {
                NodeKind::StatusDir { app } | NodeKind::StatusFile { app, .. } => {
                    return Some(app.clone())
                }
                NodeKind::Dir {
                    role: DirRole::Root | DirRole::Backend(_),
                    ..
                } => return None,
                _ => {}
            }
            let parent = self.nodes.get(&node.parent)?;
            if let Some(DirRole::Backend(_)) = parent.role() {
                return self
                    .apps
                    .iter()
                    .find(|(_, e)| e.root == ino)
                    .map(|(id, _)| id.clone());
            }
            ino = node.parent;
        }
    }

    /// Whether `ino` is an app's root directory.
    fn is_app_root(&self, ino: Ino) -> bool {
        self.nodes
            .get(&ino)
            .and_then(|n| self.nodes.get(&n.parent))
            .is_some_and(|p| matches!(p.role(), Some(DirRole::Backend(_))))
            && self.nodes[&ino].role() == Some(DirRole::App)
    }

    /// Visits every node under `root` (excluded) depth-first, parents
    /// before children, with its path relative to `root`.
    fn walk(&self, root: Ino, visit: &mut dyn FnMut(&str, &Node)) {
        let mut stack: Vec<(String, Ino)> = Vec::new();
        let push_children = |stack: &mut Vec<(String, Ino)>, prefix: &str, ino: Ino| {
            if let Some(children) = self.nodes.get(&ino).and_then(|n| n.children()) {
                for (name, child) in children.iter().rev() {
                    let name = name.to_string_lossy();
                    let path = if prefix.is_empty() {
                        name.into_owned()
                    } else {
                        format!("{prefix}/{name}")
                    };
                    stack.push((path, *child));
                }
            }
        };
        push_children(&mut stack, "", root);
        while let Some((path, ino)) = stack.pop() {
            let node = &self.nodes[&ino];
            visit(&path, node);
            push_children(&mut stack, &path, ino);
        }
    }

    /// Drops a detached node once nothing refers to it.
    fn reap(&mut self, ino: Ino) {
        if self.nodes.get(&ino).is_some_and(|n| n.is_unreferenced()) {
            self.nodes.remove(&ino);
        }
    }
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
