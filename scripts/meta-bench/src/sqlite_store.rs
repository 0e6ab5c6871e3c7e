//! SQLite (WAL mode) implementation of [`MetaStore`] with cached prepared statements.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::store::{MetaStore, Result};
use crate::workload::Inode;

/// `PRAGMA synchronous` level: NORMAL syncs the WAL only at checkpoints, FULL on every commit.
#[derive(Clone, Copy, Debug)]
pub enum SqliteSync {
    Normal,
    Full,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inodes (
    ino      INTEGER PRIMARY KEY,
    kind     INTEGER NOT NULL,
    perm     INTEGER NOT NULL,
    uid      INTEGER NOT NULL,
    gid      INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    nlink    INTEGER NOT NULL,
    blob     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dentries (
    parent INTEGER NOT NULL,
    name   TEXT NOT NULL,
    ino    INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
";

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub fn open(path: &Path, sync: SqliteSync) -> Result<Self> {
        let conn = Connection::open(path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(format!("journal_mode=WAL refused, got {mode}").into());
        }
        let sync = match sync {
            SqliteSync::Normal => "NORMAL",
            SqliteSync::Full => "FULL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous={sync};"))?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore { conn })
    }

    /// Run `body` between `begin` (a BEGIN statement) and COMMIT, rolling back on error.
    fn in_transaction<T>(
        &self,
        begin: &str,
        body: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.conn.prepare_cached(begin)?.execute([])?;
        match body(&self.conn) {
            Ok(value) => {
                self.conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(value)
            }
            Err(err) => {
                self.conn.prepare_cached("ROLLBACK")?.execute([])?;
                Err(err)
            }
        }
    }

    fn write<T>(&self, body: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.in_transaction("BEGIN IMMEDIATE", body)
    }
}

/// SQLite integers are i64; every u64 in this workload (inode numbers, sizes) is far below 2^63.
fn sql_int(value: u64) -> i64 {
    value as i64
}

impl MetaStore for SqliteStore {
    fn create(&mut self, parent: u64, name: &str, ino: u64, inode: &Inode) -> Result<()> {
        self.write(|conn| {
            conn.prepare_cached(
                "INSERT INTO inodes (ino, kind, perm, uid, gid, size, mtime_ns, ctime_ns, nlink, blob)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                sql_int(ino),
                inode.kind,
                inode.perm,
                inode.uid,
                inode.gid,
                sql_int(inode.size),
                inode.mtime_ns,
                inode.ctime_ns,
                inode.nlink,
                inode.blob,
            ])?;
            conn.prepare_cached("INSERT INTO dentries (parent, name, ino) VALUES (?1, ?2, ?3)")?
                .execute(params![sql_int(parent), name, sql_int(ino)])?;
            Ok(())
        })
    }

    fn seal(&mut self, ino: u64, size: u64, blob: &str) -> Result<()> {
        self.write(|conn| {
            let changed = conn
                .prepare_cached("UPDATE inodes SET blob = ?2, size = ?3 WHERE ino = ?1")?
                .execute(params![sql_int(ino), blob, sql_int(size)])?;
            if changed != 1 {
                return Err(format!("seal: inode {ino} not found").into());
            }
            Ok(())
        })
    }

    fn lookup(&mut self, parent: u64, name: &str) -> Result<Option<(u64, Inode)>> {
        self.in_transaction("BEGIN DEFERRED", |conn| {
            let ino: Option<i64> = conn
                .prepare_cached("SELECT ino FROM dentries WHERE parent = ?1 AND name = ?2")?
                .query_row(params![sql_int(parent), name], |row| row.get(0))
                .optional()?;
            let Some(ino) = ino else { return Ok(None) };
            let inode = conn
                .prepare_cached(
                    "SELECT kind, perm, uid, gid, size, mtime_ns, ctime_ns, nlink, blob
                     FROM inodes WHERE ino = ?1",
                )?
                .query_row(params![ino], |row| {
                    Ok(Inode {
                        kind: row.get(0)?,
                        perm: row.get(1)?,
                        uid: row.get(2)?,
                        gid: row.get(3)?,
                        size: row.get::<_, i64>(4)? as u64,
                        mtime_ns: row.get(5)?,
                        ctime_ns: row.get(6)?,
                        nlink: row.get(7)?,
                        blob: row.get(8)?,
                    })
                })
                .optional()?;
            Ok(inode.map(|inode| (ino as u64, inode)))
        })
    }

    fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Result<()> {
        self.write(|conn| {
            let ino: i64 = conn
                .prepare_cached(
                    "DELETE FROM dentries WHERE parent = ?1 AND name = ?2 RETURNING ino",
                )?
                .query_row(params![sql_int(parent), name], |row| row.get(0))?;
            conn.prepare_cached("INSERT INTO dentries (parent, name, ino) VALUES (?1, ?2, ?3)")?
                .execute(params![sql_int(new_parent), new_name, ino])?;
            Ok(())
        })
    }

    fn unlink(&mut self, parent: u64, name: &str) -> Result<()> {
        self.write(|conn| {
            let ino: i64 = conn
                .prepare_cached(
                    "DELETE FROM dentries WHERE parent = ?1 AND name = ?2 RETURNING ino",
                )?
                .query_row(params![sql_int(parent), name], |row| row.get(0))?;
            conn.prepare_cached("DELETE FROM inodes WHERE ino = ?1")?
                .execute(params![ino])?;
            Ok(())
        })
    }
}
