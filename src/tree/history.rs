//! Each app's deploy history, and rollback: putting an app folder back to
//! a tree an earlier deploy sent. The trees live in the metadata engine as
//! lists of entries naming blobs, so keeping one costs no file copies.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::{app_name, AppId, Ino, Tree, TreeError, TreeResult};
use crate::meta::{HistoryLine, InodeKind, InodeRow, KeptEntry, NewInode};
use crate::snapshot::{BlobId, EntryKind, FileContent, Snapshot, SnapshotEntry};

/// The shortest digest prefix `rollback` accepts, as git does.
const MIN_PREFIX: usize = 4;

/// One deploy's outcome, for `.pushfs/history`.
#[derive(Debug, Clone, Copy)]
pub struct DeployRecord<'a> {
    /// `deployed`, `accepted` (waiting for its payment), `failed`, `cancelled`.
    pub outcome: &'a str,
    pub digest: &'a str,
    /// The server's hash, revision or id, as `key=value` words.
    pub server: Option<&'a str>,
    /// The snapshot deployed: its folder (before the ignore rules) is
    /// kept for a rollback.
    pub folder: Option<&'a Snapshot>,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The digest the folder holds now.
    pub to: String,
    /// The digest of the tree it replaced, kept in the history; `None` if
    /// the folder already held that tree.
    pub replaced: Option<String>,
}

impl Tree {
    /// Appends a line to the app's history; a deploy's folder is kept, and
    /// only the `keep` most recent kept trees stay. An app removed
    /// meanwhile records nothing.
    pub fn record_deploy(&self, app: &AppId, record: DeployRecord, keep: usize) -> TreeResult<()> {
        // Streamed into the engine: the kept tree is never a second list.
        let mut folder = record.folder.map(|s| s.folder().map(kept));
        let mut txn = self.meta.begin()?;
        if self.app_root(app).is_none() {
            return Ok(());
        }
        let line = HistoryLine {
            at: SystemTime::now(),
            outcome: record.outcome.to_string(),
            digest: record.digest.to_string(),
            server: record.server.map(str::to_string),
            kept: folder.is_some(),
        };
        txn.add_history(
            &app.0,
            &line,
            folder
                .as_mut()
                .map(|f| f as &mut dyn Iterator<Item = KeptEntry>),
        )?;
        if folder.is_some() {
            txn.prune_kept_trees(&app.0, keep)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// `.pushfs/history`: one line per deploy, oldest first.
    pub(super) fn history_text(&self, app: &AppId) -> TreeResult<Vec<u8>> {
        let lines = self.meta.read()?.history(&app.0)?;
        let mut text = String::new();
        for line in lines {
            let _ = writeln!(
                text,
                "{} {:<9} {} {} {}",
                humantime::format_rfc3339_seconds(line.at),
                line.outcome,
                line.digest,
                line.server.as_deref().unwrap_or("-"),
                if line.kept { "kept" } else { "-" },
            );
        }
        Ok(text.into_bytes())
    }

    /// Puts the app folder back to the kept tree whose digest starts with
    /// `prefix`, in one transaction. The tree it replaces is kept and goes
    /// into the history first, so the rollback can itself be undone.
    pub(super) fn rollback(&self, app: &AppId, prefix: &str) -> TreeResult<RolledBack> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.len() < MIN_PREFIX || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TreeError::BadDigestPrefix);
        }
        // Closed files must be sealed to be part of the tree replaced.
        self.sealer.drain();
        let root = self.app_root(app).ok_or(TreeError::NotFound)?;
        let backend = self
            .apps
            .lock()
            .by_root
            .get(&root)
            .map(|e| e.backend)
            .ok_or(TreeError::NotFound)?;
        let mut txn = self.meta.begin()?;
        // Checked under the engine's lock: opening for writing takes it too.
        let writing = self
            .open
            .lock()
            .values()
            .any(|o| o.app == Some(root) && o.writing.is_some() && !o.orphan);
        if writing {
            return Err(TreeError::AppBusy);
        }
        let mut matches = txn.kept_trees_matching(&app.0, &prefix)?;
        let target = match matches.len() {
            0 => return Err(TreeError::NoKeptTree(prefix)),
            1 => matches.remove(0),
            count => return Err(TreeError::AmbiguousDigest { prefix, count }),
        };
        let wanted = txn.kept_tree(&app.0, &target)?;
        if let Some(lost) = wanted
            .iter()
            .filter_map(|e| e.blob.as_ref())
            .find(|b| !self.store.blob_path(&b.sha256).exists())
        {
            tracing::error!(app = %app, blob = %lost.sha256, "a kept tree lost a blob");
            return Err(TreeError::KeptTreeDamaged(target));
        }
        let walked = txn.walk(root)?;
        let objects: Arc<Path> = self.store.objects_dir().into();
        let mut current = Vec::with_capacity(walked.len());
        for item in &walked {
            current.push(
                self.entry_of(&item.path, &item.row, &objects)
                    .ok_or(TreeError::AppBusy)?,
            );
        }
        let name = app_name(&txn, root);
        let profile = self.hooks.ignore_profile(backend);
        let current = Snapshot::build(name, backend, current, &profile);
        let digest = current.digest.clone();
        if digest == target {
            return Ok(RolledBack {
                to: target,
                replaced: None,
            });
        }
        let replaced = HistoryLine {
            at: SystemTime::now(),
            outcome: "replaced".into(),
            digest: digest.clone(),
            server: None,
            kept: true,
        };
        txn.add_history(&app.0, &replaced, Some(&mut current.folder().map(kept)))?;

        // Children before parents: every directory is empty when it goes.
        let mut dirs: HashMap<&str, Ino> = HashMap::from([("", root)]);
        for item in &walked {
            if item.row.kind == InodeKind::Dir {
                dirs.insert(item.path.as_str(), item.row.ino);
            }
        }
        let mut freed = Vec::new();
        for item in walked.iter().rev() {
            let (parent, name) = split(&item.path);
            txn.delete_dentry(dirs[parent], name)?;
            // A file with several names lost some already: read it afresh.
            let Some(row) = txn.inode(item.row.ino)? else {
                continue;
            };
            if row.kind == InodeKind::Dir {
                txn.delete_inode(&row)?;
            } else {
                freed.extend(self.drop_link(&mut txn, row)?);
            }
        }

        let mut root_row = txn.inode(root)?.ok_or(TreeError::NotFound)?;
        let mut made: HashMap<String, Ino> = HashMap::from([(String::new(), root)]);
        let mut subdirs: HashMap<Ino, u32> = HashMap::new();
        let mut linked: HashMap<u64, Ino> = HashMap::new();
        for entry in &wanted {
            let (parent_path, name) = split(&entry.path);
            let Some(&parent) = made.get(parent_path) else {
                continue;
            };
            if let Some(&ino) = entry.link.and_then(|l| linked.get(&l)) {
                // Another name of a file restored already.
                txn.insert_dentry(parent, name, ino)?;
                if let Some(mut row) = txn.inode(ino)? {
                    row.nlink += 1;
                    txn.update_attrs(&row)?;
                }
                continue;
            }
            let ino = txn.insert_inode(&NewInode {
                kind: entry.kind,
                parent,
                app: Some(root),
                perm: entry.perm,
                uid: root_row.uid,
                gid: root_row.gid,
                blob: entry.blob.clone(),
                temp: None,
                target: entry.target.clone(),
            })?;
            txn.insert_dentry(parent, name, ino)?;
            if let Some(link) = entry.link {
                linked.insert(link, ino);
            }
            if entry.kind == InodeKind::Dir {
                made.insert(entry.path.clone(), ino);
                *subdirs.entry(parent).or_default() += 1;
            }
        }
        root_row.nlink = 2 + subdirs.remove(&root).unwrap_or(0);
        for (dir, count) in subdirs {
            if let Some(mut row) = txn.inode(dir)? {
                row.nlink = 2 + count;
                txn.update_attrs(&row)?;
            }
        }
        super::ops::touch_dir(&mut txn, &mut root_row)?;
        self.mark(&mut txn, Some(root))?;
        let old_names: Vec<String> = walked
            .iter()
            .filter(|w| !w.path.contains('/'))
            .map(|w| w.path.clone())
            .collect();
        self.commit_freeing(txn, freed)?;
        let new_names = wanted.iter().filter(|e| !e.path.contains('/'));
        let mut names: Vec<String> = old_names;
        names.extend(new_names.map(|e| e.path.clone()));
        names.sort();
        names.dedup();
        if let Some(kernel) = self.kernel.get() {
            kernel.forget_entries(root, names);
        }
        self.marked.lock().insert(root);
        Ok(RolledBack {
            to: target,
            replaced: Some(digest),
        })
    }

    /// One walked inode as a snapshot entry, its blob under `objects` (the
    /// store's); `None` for a file whose bytes are still in a temp file.
    pub(super) fn entry_of(
        &self,
        path: &str,
        row: &InodeRow,
        objects: &Arc<Path>,
    ) -> Option<SnapshotEntry> {
        let kind = match row.kind {
            InodeKind::Dir => EntryKind::Dir,
            InodeKind::Symlink => EntryKind::Symlink {
                target: row.target.clone().unwrap_or_default(),
            },
            InodeKind::File => match (&row.blob, &row.temp) {
                (Some(blob), None) => EntryKind::File(FileContent {
                    blob: BlobId::from_info(blob)?,
                    objects: objects.clone(),
                    inode: (row.nlink > 1).then_some(row.ino),
                }),
                _ => return None,
            },
        };
        Some(SnapshotEntry {
            path: path.to_string(),
            mode: u32::from(row.perm),
            kind,
            mtime: row.mtime,
        })
    }
}

/// A path's parent directory (`""` for the app root) and last name.
fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

fn kept(entry: &SnapshotEntry) -> KeptEntry {
    let (kind, blob, target, link) = match &entry.kind {
        EntryKind::Dir => (InodeKind::Dir, None, None, None),
        EntryKind::File(content) => (
            InodeKind::File,
            Some(content.blob.to_info()),
            None,
            content.inode,
        ),
        EntryKind::Symlink { target } => (InodeKind::Symlink, None, Some(target.clone()), None),
    };
    KeptEntry {
        path: entry.path.clone(),
        kind,
        perm: entry.mode as u16,
        blob,
        target,
        link,
    }
}
