//! Saving the tree as one manifest per app, and rebuilding it at start-up.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io;

use super::node::{Content, DirRole, Meta, NodeKind};
use super::{AppId, Ino, Tree};
use crate::store::manifest::{
    self, pair_to_time, time_to_pair, AppManifest, EntryMeta, ManifestEntry, ManifestKind,
};

fn to_entry_meta(meta: &Meta) -> EntryMeta {
    EntryMeta {
        perm: meta.perm,
        uid: meta.uid,
        gid: meta.gid,
        mtime: time_to_pair(meta.mtime),
    }
}

fn from_entry_meta(meta: &EntryMeta) -> Meta {
    let mtime = pair_to_time(meta.mtime);
    Meta {
        perm: meta.perm,
        uid: meta.uid,
        gid: meta.gid,
        atime: mtime,
        mtime,
        ctime: mtime,
    }
}

impl Tree {
    /// The manifest of one app as it is now; `None` if the app is gone.
    fn manifest_of(&self, app: &AppId) -> Option<AppManifest> {
        let state = self.state.lock();
        let entry = state.apps.get(app)?;
        let root = &state.nodes[&entry.root];
        let mut entries = Vec::new();
        state.walk(entry.root, &mut |path, node| {
            let kind = match &node.kind {
                NodeKind::Dir { .. } => ManifestKind::Dir,
                NodeKind::Symlink { target } => ManifestKind::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
                NodeKind::File {
                    content: Content::Blob(b),
                } => ManifestKind::File {
                    sha256: b.sha256.clone(),
                    sha1: b.sha1.clone(),
                    size: b.size,
                },
                NodeKind::File {
                    content: Content::Open(open),
                } => ManifestKind::Writing {
                    temp: open.temp.clone(),
                },
                _ => return,
            };
            entries.push(ManifestEntry {
                path: path.to_string(),
                meta: to_entry_meta(&node.meta),
                kind,
            });
        });
        Some(AppManifest {
            format: manifest::FORMAT,
            id: app.0.clone(),
            backend: entry.backend,
            name: root.name.to_string_lossy().into_owned(),
            root: to_entry_meta(&root.meta),
            entries,
        })
    }

    /// Writes the manifests of every app changed since the last call.
    pub fn save_changed(&self) -> io::Result<()> {
        let apps: Vec<AppId> = self.unsaved.lock().drain().collect();
        let mut first_error = None;
        for app in apps {
            if let Some(manifest) = self.manifest_of(&app) {
                if let Err(err) = manifest::commit(&self.state_dir, &manifest) {
                    tracing::error!(app = %manifest.name, %err, "cannot save the app's manifest");
                    self.unsaved.lock().insert(app);
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Rebuilds the apps from their manifests, seals files that were being
/// written when the last run ended, then drops unreferenced blobs and temp files.
pub(super) fn restore(tree: &Tree) -> io::Result<()> {
    let (manifests, problems) = manifest::load_all(&tree.state_dir)?;
    for problem in problems {
        tracing::error!(%problem, "skipping an unreadable app manifest");
    }
    let mut live = HashSet::new();
    for m in manifests {
        let mut state = tree.state.lock();
        let backend_dir = state
            .child(super::ROOT_INO, OsStr::new(m.backend.dir_name()))
            .expect("backend directories always exist");
        let (app, root) = state.add_app(
            backend_dir,
            &m.name,
            m.backend,
            from_entry_meta(&m.root),
            Some(AppId(m.id.clone())),
        );
        state.nodes.get_mut(&root).expect("just added").meta = from_entry_meta(&m.root);
        let mut dirs: BTreeMap<String, Ino> = BTreeMap::from([(String::new(), root)]);
        for entry in &m.entries {
            let (parent_path, name) = match entry.path.rsplit_once('/') {
                Some((p, n)) => (p.to_string(), n),
                None => (String::new(), entry.path.as_str()),
            };
            let Some(&parent) = dirs.get(&parent_path) else {
                tracing::error!(app = %m.name, path = %entry.path, "manifest entry has no parent; skipped");
                continue;
            };
            let kind = match &entry.kind {
                ManifestKind::Dir => NodeKind::Dir {
                    children: BTreeMap::new(),
                    role: DirRole::App,
                },
                ManifestKind::Symlink { target } => NodeKind::Symlink {
                    target: target.into(),
                },
                ManifestKind::File { sha256, sha1, size } => {
                    if !tree.store.has_blob(sha256) {
                        tracing::error!(app = %m.name, path = %entry.path, "content missing from the store; file dropped");
                        continue;
                    }
                    let blob = crate::store::BlobInfo {
                        sha256: sha256.clone(),
                        sha1: sha1.clone(),
                        size: *size,
                    };
                    NodeKind::File {
                        content: Content::Blob(blob),
                    }
                }
                ManifestKind::Writing { temp } => match tree.store.seal(temp) {
                    Ok(blob) => {
                        tracing::info!(app = %m.name, path = %entry.path, "recovered a file that was being written");
                        NodeKind::File {
                            content: Content::Blob(blob),
                        }
                    }
                    Err(err) => {
                        tracing::error!(app = %m.name, path = %entry.path, %err, "a file being written was lost");
                        continue;
                    }
                },
            };
            if let NodeKind::File {
                content: Content::Blob(b),
            } = &kind
            {
                live.insert(b.sha256.clone());
            }
            let is_dir = matches!(kind, NodeKind::Dir { .. });
            let ino = state.add_child(parent, name, kind, from_entry_meta(&entry.meta));
            if is_dir {
                dirs.insert(entry.path.clone(), ino);
            }
        }
        // add_child touched the parents' times; put back the saved ones.
        for entry in m
            .entries
            .iter()
            .filter(|e| matches!(e.kind, ManifestKind::Dir))
        {
            if let Some(ino) = dirs.get(&entry.path) {
                state.nodes.get_mut(ino).expect("added").meta = from_entry_meta(&entry.meta);
            }
        }
        state.nodes.get_mut(&root).expect("added").meta = from_entry_meta(&m.root);
        drop(state);
        tree.hooks.app_created(&app, m.backend, &m.name);
        tree.unsaved.lock().insert(app);
    }
    let removed = tree.store.collect_garbage(&live)?;
    if removed > 0 {
        tracing::info!(removed, "collected unreferenced blobs");
    }
    tree.store.clear_temp()?;
    tree.save_changed()
}
