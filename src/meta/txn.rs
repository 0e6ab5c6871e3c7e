//! One transaction against the engine: the typed operations the tree is
//! built from. A write transaction rolls back unless [`Txn::commit`] runs.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::MutexGuard;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::row_cache::{Known, RowChanges};
use super::{EngineParts, Ino, MetaResult};
use crate::store::BlobInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InodeKind {
    Dir,
    File,
    Symlink,
}

impl InodeKind {
    pub(super) fn code(self) -> i64 {
        match self {
            InodeKind::Dir => 1,
            InodeKind::File => 2,
            InodeKind::Symlink => 3,
        }
    }

    pub(super) fn from_code(code: i64) -> InodeKind {
        match code {
            1 => InodeKind::Dir,
            3 => InodeKind::Symlink,
            _ => InodeKind::File,
        }
    }
}

/// One inode as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeRow {
    pub ino: Ino,
    pub kind: InodeKind,
    /// A directory's parent; for a file, the directory it was created in.
    pub parent: Ino,
    /// The root inode of the app this inode belongs to (itself for a root).
    pub app: Option<Ino>,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub nlink: u32,
    pub size: u64,
    pub blob: Option<BlobInfo>,
    pub temp: Option<PathBuf>,
    pub target: Option<String>,
}

/// What a new inode starts as; times are all `now`.
#[derive(Debug, Clone)]
pub struct NewInode {
    pub kind: InodeKind,
    pub parent: Ino,
    pub app: Option<Ino>,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub blob: Option<BlobInfo>,
    pub temp: Option<PathBuf>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRow {
    pub id: String,
    pub backend: String,
    pub root: Ino,
    pub changed_run: i64,
}

/// This run's number, and the previous run's if it did not stop cleanly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStart {
    pub run: i64,
    pub unclean: Option<i64>,
}

/// An inode reached by walking an app, with its path from the app root.
#[derive(Debug, Clone)]
pub struct WalkEntry {
    pub path: String,
    pub row: InodeRow,
}

pub struct Txn<'a> {
    pub(super) conn: MutexGuard<'a, Connection>,
    engine: &'a EngineParts,
    /// Blobs whose last reference this transaction dropped.
    freed_blobs: Vec<String>,
    /// Temp files of inodes this transaction deleted.
    freed_temps: Vec<PathBuf>,
    /// Blob files made for this transaction: removed again if it fails.
    linked: Vec<String>,
    /// Inode rows this transaction changed, for the row cache at commit.
    changes: RowChanges,
    writing: bool,
    finished: bool,
}

/// The columns [`row_at`] reads, as a literal so queries are built at
/// compile time (a query string is the key of the statement cache).
macro_rules! inode_columns {
    () => {
        "i.ino, i.kind, i.parent, i.app, i.perm, i.uid, i.gid, i.atime, i.mtime, \
         i.ctime, i.nlink, i.size, i.blob, i.temp, i.target, i.sha1, i.size"
    };
}
const COLUMNS: &str = inode_columns!();
const FROM: &str = "inode i";

pub fn to_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// A time as the engine stores it and reads it back.
fn as_stored(t: SystemTime) -> SystemTime {
    from_ns(to_ns(t))
}

pub fn from_ns(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn row_to_inode(r: &Row) -> rusqlite::Result<InodeRow> {
    row_at(r, 0)
}

/// Reads the inode columns of [`COLUMNS`] starting at column `at`.
fn row_at(r: &Row, at: usize) -> rusqlite::Result<InodeRow> {
    let int = |i: usize| r.get::<_, i64>(at + i);
    let blob: Option<String> = r.get(at + 12)?;
    let sha1: Option<String> = r.get(at + 15)?;
    let blob_size: Option<i64> = r.get(at + 16)?;
    let temp: Option<String> = r.get(at + 13)?;
    Ok(InodeRow {
        ino: int(0)? as Ino,
        kind: InodeKind::from_code(int(1)?),
        parent: int(2)? as Ino,
        app: r.get::<_, Option<i64>>(at + 3)?.map(|a| a as Ino),
        perm: int(4)? as u16,
        uid: int(5)? as u32,
        gid: int(6)? as u32,
        atime: from_ns(int(7)?),
        mtime: from_ns(int(8)?),
        ctime: from_ns(int(9)?),
        nlink: int(10)? as u32,
        size: int(11)? as u64,
        blob: blob.map(|sha256| BlobInfo {
            sha256,
            sha1: sha1.unwrap_or_default(),
            size: blob_size.unwrap_or_default() as u64,
        }),
        temp: temp.map(PathBuf::from),
        target: r.get(at + 14)?,
    })
}

/// Whether any inode still names the blob.
pub fn blob_referenced(conn: &Connection, sha256: &str) -> MetaResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM blob WHERE sha256 = ?1 AND refs > 0")?
        .exists([sha256])?)
}

impl<'a> Txn<'a> {
    pub(super) fn begin(
        conn: MutexGuard<'a, Connection>,
        engine: &'a EngineParts,
    ) -> MetaResult<Txn<'a>> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Txn::new(conn, engine, true))
    }

    /// Reads under the engine's lock need no SQL transaction: no other
    /// writer can interleave.
    pub(super) fn read(conn: MutexGuard<'a, Connection>, engine: &'a EngineParts) -> Txn<'a> {
        Txn::new(conn, engine, false)
    }

    fn new(conn: MutexGuard<'a, Connection>, engine: &'a EngineParts, writing: bool) -> Txn<'a> {
        Txn {
            conn,
            engine,
            freed_blobs: Vec::new(),
            freed_temps: Vec::new(),
            linked: Vec::new(),
            changes: RowChanges::default(),
            writing,
            finished: false,
        }
    }

    /// Commits, then deletes the blob files and temp files nothing names
    /// any more (still under the engine's lock, so no seal races them).
    pub fn commit(mut self) -> MetaResult<()> {
        self.finished = true;
        if !self.writing {
            return Ok(());
        }
        let committed = self
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut commit| commit.execute([]));
        if let Err(err) = committed {
            self.roll_back();
            return Err(err.into());
        }
        std::mem::take(&mut self.changes).apply(&mut self.engine.rows.lock());
        let freed_space = !self.freed_temps.is_empty() || !self.freed_blobs.is_empty();
        let pins = self.engine.pins.lock();
        for sha in std::mem::take(&mut self.freed_blobs) {
            // A later step of the same transaction may have named it again
            // (a rollback drops a tree and adds one sharing its blobs).
            if !pins.contains(&sha) && blob_referenced(&self.conn, &sha).is_ok_and(|n| !n) {
                self.engine.store.remove_blob(&sha);
            }
        }
        drop(pins);
        for temp in self.freed_temps.drain(..) {
            let _ = std::fs::remove_file(temp);
        }
        if freed_space && !self.engine.reserve.is_held() {
            self.engine.reserve.restore();
        }
        Ok(())
    }

    /// Records that a blob file was made for this transaction (a seal's
    /// link): if the transaction fails, the file goes unless named.
    pub fn linked_blob(&mut self, sha256: &str) {
        self.linked.push(sha256.to_string());
    }

    fn roll_back(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
        let pins = self.engine.pins.lock();
        for sha in self.linked.drain(..) {
            if !pins.contains(&sha) && blob_referenced(&self.conn, &sha).is_ok_and(|named| !named) {
                self.engine.store.remove_blob(&sha);
            }
        }
    }

    /// One inode's row: as this transaction has it, else as the row cache
    /// holds it, else from the database (and then into the cache).
    pub fn inode(&self, ino: Ino) -> MetaResult<Option<InodeRow>> {
        match self.changes.known(ino) {
            Known::Row(row) => return Ok(Some(row.clone())),
            Known::AskTheDatabase => return self.inode_from_database(ino),
            Known::Committed => {}
        }
        if let Some(row) = self.engine.rows.lock().get(ino) {
            return Ok(Some(row));
        }
        let row = self.inode_from_database(ino)?;
        if let Some(row) = &row {
            self.engine.rows.lock().put(row.clone());
        }
        Ok(row)
    }

    pub(super) fn inode_from_database(&self, ino: Ino) -> MetaResult<Option<InodeRow>> {
        const SQL: &str = concat!(
            "SELECT ",
            inode_columns!(),
            " FROM inode i WHERE i.ino = ?1"
        );
        Ok(self
            .conn
            .prepare_cached(SQL)?
            .query_row([ino as i64], row_to_inode)
            .optional()?)
    }

    pub fn lookup(&self, parent: Ino, name: &str) -> MetaResult<Option<Ino>> {
        Ok(self
            .conn
            .prepare_cached("SELECT ino FROM dentry WHERE parent = ?1 AND name = ?2")?
            .query_row(params![parent as i64, name], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|i| i as Ino))
    }

    /// The inode `name` in `parent` names. Two point queries: measured,
    /// they beat the join SQLite plans for this by a factor of five.
    pub fn lookup_row(&self, parent: Ino, name: &str) -> MetaResult<Option<InodeRow>> {
        match self.lookup(parent, name)? {
            Some(ino) => self.inode(ino),
            None => Ok(None),
        }
    }

    /// A directory's entries with their inodes, by name.
    pub fn children(&self, dir: Ino) -> MetaResult<Vec<(String, InodeRow)>> {
        const SQL: &str = concat!(
            "SELECT d.name, ",
            inode_columns!(),
            " FROM dentry d JOIN inode i ON i.ino = d.ino WHERE d.parent = ?1 ORDER BY d.name"
        );
        let mut stmt = self.conn.prepare_cached(SQL)?;
        let rows = stmt.query_map([dir as i64], |r| {
            Ok((r.get::<_, String>(0)?, row_at(r, 1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn has_children(&self, dir: Ino) -> MetaResult<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM dentry WHERE parent = ?1 LIMIT 1")?
            .exists([dir as i64])?)
    }

    /// Adds an inode (times now, one link unless a directory's two) and
    /// takes a reference on its blob.
    pub fn insert_inode(&mut self, new: &NewInode) -> MetaResult<Ino> {
        Ok(self.insert_inode_row(new)?.ino)
    }

    /// As [`Txn::insert_inode`], with the row as stored: a create answers
    /// with it and need not query it back.
    pub fn insert_inode_row(&mut self, new: &NewInode) -> MetaResult<InodeRow> {
        let ino = self.engine.next_ino.fetch_add(1, Ordering::Relaxed);
        let now = to_ns(SystemTime::now());
        if let Some(blob) = &new.blob {
            self.blob_ref(blob)?;
        }
        let nlink = if new.kind == InodeKind::Dir { 2 } else { 1 };
        self.conn
            .prepare_cached(
                "INSERT INTO inode (kind, parent, app, perm, uid, gid, atime, mtime, ctime, \
                 nlink, size, blob, temp, target, ino, sha1) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                new.kind.code(),
                new.parent as i64,
                new.app.map(|a| a as i64),
                i64::from(new.perm),
                i64::from(new.uid),
                i64::from(new.gid),
                now,
                nlink,
                new.blob.as_ref().map_or(0, |b| b.size as i64),
                new.blob.as_ref().map(|b| b.sha256.as_str()),
                new.temp.as_ref().map(|t| t.to_string_lossy().into_owned()),
                new.target.as_deref(),
                ino as i64,
                new.blob.as_ref().map(|b| b.sha1.as_str()),
            ])?;
        let row = InodeRow {
            ino,
            kind: new.kind,
            parent: new.parent,
            app: new.app,
            perm: new.perm,
            uid: new.uid,
            gid: new.gid,
            atime: from_ns(now),
            mtime: from_ns(now),
            ctime: from_ns(now),
            nlink,
            size: new.blob.as_ref().map_or(0, |b| b.size),
            blob: new.blob.clone(),
            temp: new.temp.clone(),
            target: new.target.clone(),
        };
        self.changes.now(row.clone());
        Ok(row)
    }

    /// Writes a row's attributes: parent, app, mode, owner, times, links, size.
    /// Content (blob, temp) changes go through [`Txn::set_content`].
    pub fn update_attrs(&mut self, row: &InodeRow) -> MetaResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE inode SET parent = ?2, app = ?3, perm = ?4, uid = ?5, gid = ?6, \
                 atime = ?7, mtime = ?8, ctime = ?9, nlink = ?10, size = ?11 WHERE ino = ?1",
            )?
            .execute(params![
                row.ino as i64,
                row.parent as i64,
                row.app.map(|a| a as i64),
                i64::from(row.perm),
                i64::from(row.uid),
                i64::from(row.gid),
                to_ns(row.atime),
                to_ns(row.mtime),
                to_ns(row.ctime),
                i64::from(row.nlink),
                row.size as i64,
            ])?;
        // The row as it now stands: the columns written, over the rest as
        // this transaction knew them.
        let before = match self.changes.known(row.ino) {
            Known::Row(before) => Some(before.clone()),
            Known::AskTheDatabase => None,
            Known::Committed => self.engine.rows.lock().get(row.ino),
        };
        match before {
            Some(before) => self.changes.now(InodeRow {
                parent: row.parent,
                app: row.app,
                perm: row.perm,
                uid: row.uid,
                gid: row.gid,
                atime: as_stored(row.atime),
                mtime: as_stored(row.mtime),
                ctime: as_stored(row.ctime),
                nlink: row.nlink,
                size: row.size,
                ..before
            }),
            None => self.changes.unknown(row.ino),
        }
        Ok(())
    }

    /// Points a file at new content: a sealed blob (whose reference it
    /// takes, dropping the old one) and/or a temp file being written.
    pub fn set_content(
        &mut self,
        ino: Ino,
        blob: Option<&BlobInfo>,
        temp: Option<&std::path::Path>,
    ) -> MetaResult<()> {
        let old: Option<String> = self
            .conn
            .prepare_cached("SELECT blob FROM inode WHERE ino = ?1")?
            .query_row([ino as i64], |r| r.get(0))
            .optional()?
            .flatten();
        if old.as_deref() != blob.map(|b| b.sha256.as_str()) {
            if let Some(blob) = blob {
                self.blob_ref(blob)?;
            }
            if let Some(old) = old {
                self.blob_unref(&old)?;
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "UPDATE inode SET blob = ?2, temp = ?3, size = ?4, sha1 = ?5 WHERE ino = ?1",
        )?;
        stmt.execute(params![
            ino as i64,
            blob.map(|b| b.sha256.as_str()),
            temp.map(|t| t.to_string_lossy().into_owned()),
            blob.map_or(0, |b| b.size as i64),
            blob.map(|b| b.sha1.as_str()),
        ])?;
        self.changes.unknown(ino);
        Ok(())
    }

    /// Makes a written file's content a sealed blob: it takes the blob's
    /// reference, drops the old one and the temp file, and keeps the times
    /// the writes gave the temp file (they may have bypassed pushfs). The
    /// seal itself changes no time: it is not an operation of the user's.
    pub fn seal(
        &mut self,
        ino: Ino,
        blob: &BlobInfo,
        mtime: SystemTime,
        ctime: SystemTime,
    ) -> MetaResult<()> {
        self.set_content(ino, Some(blob), None)?;
        self.conn
            .prepare_cached("UPDATE inode SET mtime = ?2, ctime = max(ctime, ?3) WHERE ino = ?1")?
            .execute(params![ino as i64, to_ns(mtime), to_ns(ctime)])?;
        self.changes.unknown(ino);
        Ok(())
    }

    /// Moves a whole subtree to another app (a rename across apps).
    pub fn set_app_of_subtree(&mut self, top: Ino, app: Option<Ino>) -> MetaResult<()> {
        self.conn
            .prepare_cached(
                "WITH RECURSIVE sub(ino) AS (SELECT ?1 UNION ALL \
                 SELECT d.ino FROM dentry d JOIN sub ON d.parent = sub.ino) \
                 UPDATE inode SET app = ?2 WHERE ino IN sub",
            )?
            .execute(params![top as i64, app.map(|a| a as i64)])?;
        self.changes.all_unknown();
        Ok(())
    }

    /// Forgets an inode: its blob reference and its extended attributes go,
    /// its temp file is deleted after the commit.
    pub fn delete_inode(&mut self, row: &InodeRow) -> MetaResult<()> {
        self.remove_xattrs_of(row.ino)?;
        if let Some(blob) = &row.blob {
            self.blob_unref(&blob.sha256)?;
        }
        if let Some(temp) = &row.temp {
            self.freed_temps.push(temp.clone());
        }
        self.conn
            .prepare_cached("DELETE FROM inode WHERE ino = ?1")?
            .execute([row.ino as i64])?;
        self.changes.unknown(row.ino);
        Ok(())
    }

    pub fn insert_dentry(&mut self, parent: Ino, name: &str, ino: Ino) -> MetaResult<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO dentry (parent, name, ino) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![parent as i64, name, ino as i64])?;
        Ok(())
    }

    pub fn delete_dentry(&mut self, parent: Ino, name: &str) -> MetaResult<()> {
        self.conn
            .prepare_cached("DELETE FROM dentry WHERE parent = ?1 AND name = ?2")?
            .execute(params![parent as i64, name])?;
        Ok(())
    }

    /// The names of one inode (several for a hard-linked file).
    pub fn names_of(&self, ino: Ino) -> MetaResult<Vec<(Ino, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT parent, name FROM dentry WHERE ino = ?1")?;
        let rows = stmt.query_map([ino as i64], |r| {
            Ok((r.get::<_, i64>(0)? as Ino, r.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(super) fn blob_ref(&mut self, blob: &BlobInfo) -> MetaResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO blob (sha256, sha1, size, refs) VALUES (?1, ?2, ?3, 1) \
                 ON CONFLICT (sha256) DO UPDATE SET refs = refs + 1",
            )?
            .execute(params![blob.sha256, blob.sha1, blob.size as i64])?;
        Ok(())
    }

    pub(super) fn blob_unref(&mut self, sha256: &str) -> MetaResult<()> {
        self.conn
            .prepare_cached("UPDATE blob SET refs = refs - 1 WHERE sha256 = ?1")?
            .execute([sha256])?;
        let gone = self
            .conn
            .prepare_cached("DELETE FROM blob WHERE sha256 = ?1 AND refs <= 0")?
            .execute([sha256])?;
        if gone > 0 {
            self.freed_blobs.push(sha256.to_string());
        }
        Ok(())
    }

    pub fn apps(&self) -> MetaResult<Vec<AppRow>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, backend, root, changed_run FROM app ORDER BY root")?;
        let rows = stmt.query_map([], |r| {
            Ok(AppRow {
                id: r.get(0)?,
                backend: r.get(1)?,
                root: r.get::<_, i64>(2)? as Ino,
                changed_run: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn insert_app(&mut self, id: &str, backend: &str, root: Ino, run: i64) -> MetaResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO app (id, backend, root, changed_run) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, backend, root as i64, run])?;
        Ok(())
    }

    /// Forgets an app, with its history and kept trees.
    pub fn delete_app(&mut self, root: Ino) -> MetaResult<()> {
        let id: Option<String> = self
            .conn
            .prepare_cached("SELECT id FROM app WHERE root = ?1")?
            .query_row([root as i64], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.forget_history(&id)?;
        }
        self.conn
            .prepare_cached("DELETE FROM app WHERE root = ?1")?
            .execute([root as i64])?;
        Ok(())
    }

    /// Records that `run` changed the app: after an unclean stop, such an
    /// app comes back held.
    pub fn mark_app_changed(&mut self, root: Ino, run: i64) -> MetaResult<()> {
        self.conn
            .prepare_cached("UPDATE app SET changed_run = ?2 WHERE root = ?1")?
            .execute(params![root as i64, run])?;
        Ok(())
    }

    fn setting(&self, key: &str) -> MetaResult<Option<i64>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM setting WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    fn set_setting(&mut self, key: &str, value: i64) -> MetaResult<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO setting (key, value) VALUES (?1, ?2)")?
            .execute(params![key, value])?;
        Ok(())
    }

    /// Starts a run: numbers it and marks it open until [`Txn::end_run`].
    /// A previous run still marked open stopped uncleanly.
    pub fn begin_run(&mut self) -> MetaResult<RunStart> {
        let previous = self.setting("run")?.unwrap_or(0);
        let unclean = (self.setting("open")? == Some(1)).then_some(previous);
        let run = previous + 1;
        self.set_setting("run", run)?;
        self.set_setting("open", 1)?;
        Ok(RunStart { run, unclean })
    }

    pub fn end_run(&mut self) -> MetaResult<()> {
        self.set_setting("open", 0)
    }

    /// Every inode under `root`, parents before children, with its path.
    pub fn walk(&self, root: Ino) -> MetaResult<Vec<WalkEntry>> {
        let mut out = Vec::new();
        self.walk_each(root, |path, row| out.push(WalkEntry { path, row }))?;
        Ok(out)
    }

    /// Hands every inode under `root` to `visit`, parents before children,
    /// with its path: a million-file app is never a list of rows at once,
    /// only the directories still to walk are.
    pub fn walk_each(&self, root: Ino, mut visit: impl FnMut(String, InodeRow)) -> MetaResult<()> {
        let mut pending = vec![(String::new(), root)];
        while let Some((prefix, dir)) = pending.pop() {
            for (name, row) in self.children(dir)? {
                let path = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                if row.kind == InodeKind::Dir {
                    pending.push((path.clone(), row.ino));
                }
                visit(path, row);
            }
        }
        Ok(())
    }

    /// Inodes with no name left: unlinked while open when pushfs stopped.
    pub fn orphans(&self) -> MetaResult<Vec<InodeRow>> {
        self.rows_where("i.nlink = 0")
    }

    /// Files whose bytes were still in a temp file when pushfs stopped.
    pub fn being_written(&self) -> MetaResult<Vec<InodeRow>> {
        self.rows_where("i.temp IS NOT NULL")
    }

    fn rows_where(&self, condition: &str) -> MetaResult<Vec<InodeRow>> {
        let sql = format!("SELECT {COLUMNS} FROM {FROM} WHERE {condition}");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], row_to_inode)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Recounts every blob's references from the inodes and the kept trees
    /// (a safety net at mount) and drops blobs that nothing names.
    pub fn recount_blob_refs(&mut self) -> MetaResult<()> {
        self.conn.execute_batch(
            "CREATE TEMP TABLE counted (sha256 TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
             INSERT INTO counted SELECT blob, count(*) FROM \
                 (SELECT blob FROM inode WHERE blob IS NOT NULL \
                  UNION ALL SELECT blob FROM kept_entry WHERE blob IS NOT NULL) GROUP BY blob;
             UPDATE blob SET refs = coalesce((SELECT n FROM counted WHERE counted.sha256 = blob.sha256), 0);
             DROP TABLE counted;",
        )?;
        let mut stmt = self
            .conn
            .prepare("SELECT sha256 FROM blob WHERE refs <= 0")?;
        let gone: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        self.conn
            .execute_batch("DELETE FROM blob WHERE refs <= 0")?;
        self.freed_blobs.extend(gone);
        Ok(())
    }

    /// The SHA-256 of every referenced blob.
    pub fn live_blobs(&self) -> MetaResult<HashSet<String>> {
        let mut stmt = self.conn.prepare("SELECT sha256 FROM blob")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many inodes and blobs the engine holds (for status and tests).
    pub fn counts(&self) -> MetaResult<(u64, u64)> {
        let inodes: i64 = self
            .conn
            .query_row("SELECT count(*) FROM inode", [], |r| r.get(0))?;
        let blobs: i64 = self
            .conn
            .query_row("SELECT count(*) FROM blob", [], |r| r.get(0))?;
        Ok((inodes as u64, blobs as u64))
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.writing && !self.finished {
            self.roll_back();
        }
    }
}
