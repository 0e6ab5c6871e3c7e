//! Read-only questions to a database that no pushfs has open, for
//! `pushfs fsck`: which paths name a blob, and which named blobs exist.
//! The connection is read-only, so even a damaged log stays as it was.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{checkpoint, wal_check, Ino, MetaError, MetaResult};

/// The root directory's inode, where every path starts.
const ROOT: Ino = 1;

/// Where a blob is named.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlobName {
    /// A file of the tree, by its path from the mount's root.
    File(String),
    /// A file of a tree kept for rollback, by its path from the mount's root
    /// and the tree's digest.
    Kept { path: String, digest: String },
}

impl BlobName {
    pub fn path(&self) -> &str {
        match self {
            BlobName::File(path) | BlobName::Kept { path, .. } => path,
        }
    }
}

pub struct Inspector {
    conn: Connection,
    /// A scratch copy to delete with the inspector, for a salvaged database.
    _scratch: Option<tempfile::TempDir>,
}

impl Inspector {
    /// Opens the database at `db` read-only.
    pub fn open(db: &Path) -> MetaResult<Inspector> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // A first read, so a file that is no database says so here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|err| MetaError::from(err).damaged_at(db))?;
        Ok(Inspector {
            conn,
            _scratch: None,
        })
    }

    /// Opens a copy of the damaged database `db` whose log is replayed in
    /// full, past the damage: the frames after it hold the transactions
    /// SQLite dropped. `db` itself is not changed.
    pub fn salvage(db: &Path) -> MetaResult<Inspector> {
        let scratch = tempfile::tempdir()?;
        let copy = scratch.path().join("meta.db");
        std::fs::copy(db, &copy)?;
        let wal = checkpoint::wal_path(db);
        if wal.exists() {
            let copy_wal = checkpoint::wal_path(&copy);
            std::fs::copy(&wal, &copy_wal)?;
            wal_check::rechain(&copy_wal)?;
        }
        let conn = Connection::open(&copy)?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(|err| MetaError::from(err).damaged_at(db))?;
        Ok(Inspector {
            conn,
            _scratch: Some(scratch),
        })
    }

    /// Every blob the tree or a kept tree names.
    pub fn named_blobs(&self) -> MetaResult<HashSet<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT blob FROM inode WHERE blob IS NOT NULL \
             UNION SELECT blob FROM kept_entry WHERE blob IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The names of each blob in `wanted` that the database names. A
    /// damaged page can hide some; what can be read is returned.
    pub fn names(&self, wanted: &HashSet<String>) -> MetaResult<HashMap<String, Vec<BlobName>>> {
        let dentries = self.dentries()?;
        let path_of = |mut ino: Ino| {
            let mut parts = Vec::new();
            while ino != ROOT {
                let (parent, name) = dentries.get(&ino)?;
                parts.push(name.as_str());
                ino = *parent;
                if parts.len() > 4096 {
                    return None;
                }
            }
            parts.reverse();
            Some(parts.join("/"))
        };
        let mut names: HashMap<String, Vec<BlobName>> = HashMap::new();
        let mut files = self
            .conn
            .prepare("SELECT ino, blob FROM inode WHERE blob IS NOT NULL")?;
        let rows = files.query_map([], |r| {
            Ok((r.get::<_, i64>(0)? as Ino, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (ino, blob) = row?;
            if wanted.contains(&blob) {
                if let Some(path) = path_of(ino) {
                    names.entry(blob).or_default().push(BlobName::File(path));
                }
            }
        }
        let app_paths: HashMap<String, String> = {
            let mut stmt = self.conn.prepare("SELECT id, root FROM app")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as Ino))
            })?;
            let mut paths = HashMap::new();
            for row in rows {
                let (id, root) = row?;
                let path = path_of(root).unwrap_or_else(|| format!("(removed app {id})"));
                paths.insert(id, path);
            }
            paths
        };
        let mut kept = self
            .conn
            .prepare("SELECT app, digest, path, blob FROM kept_entry WHERE blob IS NOT NULL")?;
        let rows = kept.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (app, digest, path, blob) = row?;
            if wanted.contains(&blob) {
                let root = app_paths
                    .get(&app)
                    .cloned()
                    .unwrap_or_else(|| format!("(removed app {app})"));
                names.entry(blob).or_default().push(BlobName::Kept {
                    path: format!("{root}/{path}"),
                    digest,
                });
            }
        }
        for list in names.values_mut() {
            list.sort();
            list.dedup();
        }
        Ok(names)
    }

    fn dentries(&self) -> MetaResult<HashMap<Ino, (Ino, String)>> {
        let mut stmt = self.conn.prepare("SELECT parent, name, ino FROM dentry")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(2)? as Ino,
                (r.get::<_, i64>(0)? as Ino, r.get::<_, String>(1)?),
            ))
        })?;
        let mut map = HashMap::new();
        for row in rows {
            let (ino, entry) = row?;
            // The first name of a file with several, as the tree reports it.
            map.entry(ino).or_insert(entry);
        }
        Ok(map)
    }
}

/// The database file of a state directory or of a kept damaged copy.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(super::DB_FILE)
}
