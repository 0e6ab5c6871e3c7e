//! The engine-neutral metadata store interface and the engine configurations under test.

use std::path::Path;

use crate::redb_store::{RedbMode, RedbStore};
use crate::sqlite_store::{SqliteStore, SqliteSync};
use crate::workload::Inode;

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

/// One filesystem operation = one transaction, committed before the call returns.
pub trait MetaStore {
    /// Insert a new inode and its directory entry.
    fn create(&mut self, parent: u64, name: &str, ino: u64, inode: &Inode) -> Result<()>;
    /// Record the content hash and final size of a written file.
    fn seal(&mut self, ino: u64, size: u64, blob: &str) -> Result<()>;
    /// Resolve `(parent, name)` and read the inode, in one read transaction.
    fn lookup(&mut self, parent: u64, name: &str) -> Result<Option<(u64, Inode)>>;
    /// Move a directory entry; the target name must not exist.
    fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Result<()>;
    /// Remove a directory entry and its (single-link) inode.
    fn unlink(&mut self, parent: u64, name: &str) -> Result<()>;
}

/// An engine with its durability setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    SqliteNormal,
    SqliteFull,
    RedbNone,
    RedbImmediate,
    RedbNoSyncBackend,
}

impl Engine {
    pub const ALL: [Engine; 5] = [
        Engine::SqliteNormal,
        Engine::SqliteFull,
        Engine::RedbNone,
        Engine::RedbImmediate,
        Engine::RedbNoSyncBackend,
    ];

    /// Short identifier, used on the command line and for `--child`.
    pub fn id(self) -> &'static str {
        match self {
            Engine::SqliteNormal => "sqlite-normal",
            Engine::SqliteFull => "sqlite-full",
            Engine::RedbNone => "redb-none",
            Engine::RedbImmediate => "redb-immediate",
            Engine::RedbNoSyncBackend => "redb-nosync",
        }
    }

    /// Human-readable label for the report.
    pub fn label(self) -> &'static str {
        match self {
            Engine::SqliteNormal => "SQLite WAL, synchronous=NORMAL",
            Engine::SqliteFull => "SQLite WAL, synchronous=FULL",
            Engine::RedbNone => "redb Durability::None",
            Engine::RedbImmediate => "redb Durability::Immediate",
            Engine::RedbNoSyncBackend => "redb Immediate + no-fsync backend",
        }
    }

    pub fn from_id(id: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|engine| engine.id() == id)
    }

    /// Open (or create) the database file at `path`.
    pub fn open(self, path: &Path) -> Result<Box<dyn MetaStore>> {
        Ok(match self {
            Engine::SqliteNormal => Box::new(SqliteStore::open(path, SqliteSync::Normal)?),
            Engine::SqliteFull => Box::new(SqliteStore::open(path, SqliteSync::Full)?),
            Engine::RedbNone => Box::new(RedbStore::open(path, RedbMode::NoneDurability)?),
            Engine::RedbImmediate => Box::new(RedbStore::open(path, RedbMode::Immediate)?),
            Engine::RedbNoSyncBackend => Box::new(RedbStore::open(path, RedbMode::NoSyncBackend)?),
        })
    }
}
