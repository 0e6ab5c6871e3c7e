//! Start-up: the fixed top of the tree, and what the last run left behind.
//!
//! A file still being written when pushfs stopped comes back with the bytes
//! that reached its temp file; one whose temp file is gone is reported in
//! its app's log, never dropped silently. Files unlinked while open are
//! freed. After an unclean stop, apps the crashed run changed come back
//! held, so a half-copied tree never deploys by itself.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::kind::BackendKind;
use crate::meta::{InodeKind, InodeRow, MetaStore, NewInode, RunStart, Txn};
use crate::store::{hash_file, ContentStore};

use super::{AppEntry, AppId, Ino, Tree, TreeError, TreeResult, ROOT_INO};

/// What `.pushfs/error` says of an app held after an unclean stop.
pub const HELD_AFTER_CRASH: &str =
    "recovered after an unclean stop: check the files, then write `deploy` to .pushfs/ctl";

pub struct Start {
    pub backends: HashMap<Ino, BackendKind>,
    pub run: RunStart,
    /// Lines for an app's log: what recovery did to its files.
    notes: Vec<(Ino, String)>,
}

/// Creates the top of the tree on first use, numbers this run, and repairs
/// what the last run left.
pub fn prepare(
    meta: &Arc<MetaStore>,
    store: &ContentStore,
    state_dir: &Path,
    owner: (u32, u32),
) -> TreeResult<Start> {
    let mut txn = meta.begin()?;
    if txn.inode(ROOT_INO)?.is_none() {
        create_top(&mut txn, owner)?;
        crate::meta::import_legacy(&mut txn, store, state_dir)?;
    }
    let mut backends = HashMap::new();
    for kind in BackendKind::ALL {
        let ino = txn
            .lookup(ROOT_INO, kind.dir_name())?
            .ok_or_else(|| corrupt(&format!("no {}/ directory", kind.dir_name())))?;
        backends.insert(ino, kind);
    }
    let run = txn.begin_run()?;
    let mut notes = Vec::new();
    for row in txn.being_written()? {
        recover_written(&mut txn, store, row, &mut notes)?;
    }
    for row in txn.orphans()? {
        txn.delete_inode(&row)?;
    }
    let stray = txn.drop_stray_xattrs()?;
    if stray > 0 {
        tracing::warn!(stray, "dropped extended attributes of inodes that are gone");
    }
    txn.recount_blob_refs()?;
    let live = txn.live_blobs()?;
    txn.commit()?;
    meta.sync()?;
    // Blobs and temp files the engine does not name are set aside, never
    // deleted: a damaged log forgets files whose bytes are still here.
    let blobs = store.set_aside_unreferenced(&live)?;
    let temps = store.set_aside_temp(&live)?;
    let moved = blobs.moved + temps.moved;
    if moved > 0 {
        let dir = crate::store::lost_found_dir(state_dir);
        tracing::warn!(
            moved,
            blobs = blobs.moved,
            temp_files = temps.moved,
            "content no file names was moved to {}; nothing was deleted. `pushfs fsck {}` lists it and restores what the history names",
            dir.display(),
            state_dir.display()
        );
    }
    Ok(Start {
        backends,
        run,
        notes,
    })
}

fn create_top(txn: &mut Txn, owner: (u32, u32)) -> TreeResult<()> {
    let dir = |parent| NewInode {
        kind: InodeKind::Dir,
        parent,
        app: None,
        perm: 0o755,
        uid: owner.0,
        gid: owner.1,
        blob: None,
        temp: None,
        target: None,
    };
    let root = txn.insert_inode(&dir(ROOT_INO))?;
    if root != ROOT_INO {
        return Err(corrupt("the root directory is not inode 1"));
    }
    for kind in BackendKind::ALL {
        let ino = txn.insert_inode(&dir(ROOT_INO))?;
        txn.insert_dentry(ROOT_INO, kind.dir_name(), ino)?;
    }
    let mut root = txn.inode(ROOT_INO)?.expect("just inserted");
    root.nlink = 2 + BackendKind::ALL.len() as u32;
    Ok(txn.update_attrs(&root)?)
}

/// Seals a file whose bytes were still in a temp file.
fn recover_written(
    txn: &mut Txn,
    store: &ContentStore,
    row: InodeRow,
    notes: &mut Vec<(Ino, String)>,
) -> TreeResult<()> {
    let temp = row.temp.clone().expect("selected for its temp file");
    if row.nlink == 0 {
        return Ok(txn.delete_inode(&row)?);
    }
    let path = path_in_app(txn, &row)?;
    let note = |text: String| (row.app.unwrap_or(ROOT_INO), text);
    match hash_file(&temp) {
        Ok(info) => {
            let mtime = std::fs::metadata(&temp)
                .and_then(|m| m.modified())
                .unwrap_or(row.mtime);
            if store.link_in(&temp, &info, false)? {
                txn.linked_blob(&info.sha256);
            }
            txn.seal(row.ino, &info, mtime, row.ctime)?;
            notes.push(note(format!(
                "recovered {path}: it was being written when pushfs stopped; kept the {} bytes that reached disk",
                info.size
            )));
        }
        Err(err) if row.blob.is_some() => {
            txn.set_content(row.ino, row.blob.as_ref(), None)?;
            notes.push(note(format!(
                "{path}: the changes being written when pushfs stopped are lost ({err}); it holds its earlier content"
            )));
        }
        Err(err) => {
            for (parent, name) in txn.names_of(row.ino)? {
                txn.delete_dentry(parent, &name)?;
            }
            txn.delete_inode(&row)?;
            notes.push(note(format!(
                "{path}: lost; it was being written when pushfs stopped and its bytes are gone ({err})"
            )));
        }
    }
    Ok(())
}

/// A file's path inside its app, for messages.
fn path_in_app(txn: &Txn, row: &InodeRow) -> TreeResult<String> {
    let mut parts = Vec::new();
    let Some((mut parent, name)) = txn.names_of(row.ino)?.into_iter().next() else {
        return Ok(String::from("(unnamed file)"));
    };
    parts.push(name);
    while Some(parent) != row.app && parent != ROOT_INO {
        let Some((up, name)) = txn.names_of(parent)?.into_iter().next() else {
            break;
        };
        parts.push(name);
        parent = up;
    }
    parts.reverse();
    Ok(parts.join("/"))
}

/// Registers every app with the tree and the deploy layer, with what
/// recovery found.
pub fn announce_apps(tree: &Arc<Tree>, start: &Start) -> TreeResult<()> {
    let apps = tree.meta.read()?.apps()?;
    let mut announced = Vec::new();
    for app in apps {
        let Some(backend) = BackendKind::from_dir_name(&app.backend) else {
            tracing::error!(app = %app.id, backend = %app.backend, "app of an unknown backend; skipped");
            continue;
        };
        let id = AppId(app.id.clone());
        tree.apps.lock().insert(
            app.root,
            AppEntry {
                id: id.clone(),
                backend,
            },
        );
        let name = super::app_name(&tree.meta.read()?, app.root);
        announced.push((id, backend, name, app));
    }
    for (id, backend, name, app) in announced {
        tree.hooks.app_created(&id, backend, &name);
        for (_, note) in start.notes.iter().filter(|(root, _)| *root == app.root) {
            tree.hooks.app_note(&id, note);
        }
        if start.run.unclean.is_some_and(|run| app.changed_run == run) {
            tree.hooks.app_held(&id, HELD_AFTER_CRASH);
        }
    }
    Ok(())
}

fn corrupt(what: &str) -> TreeError {
    TreeError::Io(std::io::Error::other(format!(
        "the metadata database is damaged: {what}"
    )))
}
