//! redb implementation of [`MetaStore`]: `inodes: u64 -> encoded Inode`,
//! `dentries: (parent, name) -> ino`.

use std::fs::{File, OpenOptions};
use std::ops::Bound;
use std::path::Path;

use redb::backends::FileBackend;
use redb::{
    BackendError, Builder, Database, Durability, ReadableDatabase, ReadableTable, StorageBackend,
    TableDefinition,
};

use crate::store::{MetaStore, Result};
use crate::workload::Inode;

const INODES: TableDefinition<u64, &[u8]> = TableDefinition::new("inodes");
const DENTRIES: TableDefinition<(u64, &str), u64> = TableDefinition::new("dentries");

#[derive(Clone, Copy, Debug)]
pub enum RedbMode {
    /// `Durability::None` on every operation: the commit stays in process memory.
    NoneDurability,
    /// `Durability::Immediate` (the default): every commit is written and fsynced.
    Immediate,
    /// `Durability::Immediate` over a backend whose `sync_data` does nothing: every commit is
    /// written to the file (the page cache) but never fsynced. Not an official redb mode.
    NoSyncBackend,
}

pub struct RedbStore {
    db: Database,
    durability: Durability,
}

impl RedbStore {
    pub fn open(path: &Path, mode: RedbMode) -> Result<Self> {
        let db = match mode {
            RedbMode::NoSyncBackend => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)?;
                Builder::new().create_with_backend(NoSyncBackend::new(file)?)?
            }
            RedbMode::NoneDurability | RedbMode::Immediate => Database::create(path)?,
        };
        // Create both tables with a durable commit so a crashed run still finds them.
        let txn = db.begin_write()?;
        txn.open_table(INODES)?;
        txn.open_table(DENTRIES)?;
        txn.commit()?;
        let durability = match mode {
            RedbMode::NoneDurability => Durability::None,
            RedbMode::Immediate | RedbMode::NoSyncBackend => Durability::Immediate,
        };
        Ok(RedbStore { db, durability })
    }

    /// Run `body` in one write transaction committed with this store's durability.
    fn write<T>(&self, body: impl FnOnce(&redb::WriteTransaction) -> Result<T>) -> Result<T> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(self.durability)?;
        let value = body(&txn)?;
        txn.commit()?;
        Ok(value)
    }
}

impl MetaStore for RedbStore {
    fn create(&mut self, parent: u64, name: &str, ino: u64, inode: &Inode) -> Result<()> {
        self.write(|txn| {
            txn.open_table(INODES)?
                .insert(ino, inode.encode().as_slice())?;
            txn.open_table(DENTRIES)?.insert((parent, name), ino)?;
            Ok(())
        })
    }

    fn seal(&mut self, ino: u64, size: u64, blob: &str) -> Result<()> {
        self.write(|txn| {
            let mut inodes = txn.open_table(INODES)?;
            let mut inode = match inodes.get(ino)? {
                Some(bytes) => Inode::decode(bytes.value()).ok_or("seal: corrupt inode")?,
                None => return Err(format!("seal: inode {ino} not found").into()),
            };
            inode.size = size;
            inode.blob = blob.to_owned();
            inodes.insert(ino, inode.encode().as_slice())?;
            Ok(())
        })
    }

    fn lookup(&mut self, parent: u64, name: &str) -> Result<Option<(u64, Inode)>> {
        let txn = self.db.begin_read()?;
        let Some(ino) = txn.open_table(DENTRIES)?.get((parent, name))? else {
            return Ok(None);
        };
        let ino = ino.value();
        let inodes = txn.open_table(INODES)?;
        let Some(bytes) = inodes.get(ino)? else {
            return Ok(None);
        };
        let inode = Inode::decode(bytes.value()).ok_or("lookup: corrupt inode")?;
        Ok(Some((ino, inode)))
    }

    fn rename(&mut self, parent: u64, name: &str, new_parent: u64, new_name: &str) -> Result<()> {
        self.write(|txn| {
            let mut dentries = txn.open_table(DENTRIES)?;
            let ino = dentries
                .remove((parent, name))?
                .ok_or("rename: source not found")?
                .value();
            if dentries.insert((new_parent, new_name), ino)?.is_some() {
                return Err("rename: target exists".into());
            }
            Ok(())
        })
    }

    fn unlink(&mut self, parent: u64, name: &str) -> Result<()> {
        self.write(|txn| {
            let ino = txn
                .open_table(DENTRIES)?
                .remove((parent, name))?
                .ok_or("unlink: entry not found")?
                .value();
            txn.open_table(INODES)?.remove(ino)?;
            Ok(())
        })
    }
}

/// redb's own [`FileBackend`] with `sync_data` turned into a no-op.
#[derive(Debug)]
struct NoSyncBackend {
    inner: FileBackend,
}

impl NoSyncBackend {
    fn new(file: File) -> Result<Self> {
        Ok(NoSyncBackend {
            inner: FileBackend::new(file)?,
        })
    }
}

impl StorageBackend for NoSyncBackend {
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.inner.write(offset, data)
    }

    fn close(&self) -> std::io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> std::result::Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
