//! Inode rows recently read or written, kept beside the engine.
//!
//! Nearly every request starts by reading one inode row by its number, and
//! in SQLite that point query costs mostly the read transaction around it.
//! The cache holds rows as committed: a transaction records what it changes
//! and hands that over only once its commit succeeds, so a rollback leaves
//! the cache as it was. It is only touched with the engine's connection
//! held, so it never disagrees with what that connection would read.

use std::collections::HashMap;

use super::txn::InodeRow;
use super::Ino;

/// At most this many rows (a few MB): the directories and files in use stay,
/// a million-file walk does not grow the mount.
const CAPACITY: usize = 8192;

#[derive(Default)]
pub(crate) struct RowCache {
    rows: HashMap<Ino, InodeRow>,
}

impl RowCache {
    pub fn get(&self, ino: Ino) -> Option<InodeRow> {
        self.rows.get(&ino).cloned()
    }

    /// Full, it starts over rather than track use: rows in use come back
    /// with their next read.
    pub fn put(&mut self, row: InodeRow) {
        if self.rows.len() >= CAPACITY && !self.rows.contains_key(&row.ino) {
            self.rows.clear();
        }
        self.rows.insert(row.ino, row);
    }

    pub fn forget(&mut self, ino: Ino) {
        self.rows.remove(&ino);
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rows.len()
    }
}

/// What one transaction did to inode rows, handed to the cache at commit.
#[derive(Default)]
pub(crate) struct RowChanges {
    /// A row as it now stands in the transaction, or `None` where a
    /// statement changed columns the transaction did not follow.
    rows: HashMap<Ino, Option<InodeRow>>,
    /// A statement changed rows it did not name one by one.
    all: bool,
}

/// What the transaction knows of one row.
pub(crate) enum Known<'a> {
    /// As the transaction now has it.
    Row(&'a InodeRow),
    /// Changed here in ways only the database knows.
    AskTheDatabase,
    /// Not changed here: the committed row, which the cache may hold.
    Committed,
}

impl RowChanges {
    pub fn known(&self, ino: Ino) -> Known<'_> {
        if self.all {
            return Known::AskTheDatabase;
        }
        match self.rows.get(&ino) {
            Some(Some(row)) => Known::Row(row),
            Some(None) => Known::AskTheDatabase,
            None => Known::Committed,
        }
    }

    pub fn now(&mut self, row: InodeRow) {
        self.rows.insert(row.ino, Some(row));
    }

    pub fn unknown(&mut self, ino: Ino) {
        self.rows.insert(ino, None);
    }

    pub fn all_unknown(&mut self) {
        self.all = true;
    }

    /// After the commit succeeded.
    pub fn apply(self, cache: &mut RowCache) {
        if self.all {
            cache.clear();
            return;
        }
        for (ino, row) in self.rows {
            match row {
                Some(row) => cache.put(row),
                None => cache.forget(ino),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::InodeKind;

    fn row(ino: Ino) -> InodeRow {
        InodeRow {
            ino,
            kind: InodeKind::File,
            parent: 1,
            app: None,
            perm: 0o644,
            uid: 0,
            gid: 0,
            atime: std::time::UNIX_EPOCH,
            mtime: std::time::UNIX_EPOCH,
            ctime: std::time::UNIX_EPOCH,
            nlink: 1,
            size: 0,
            blob: None,
            temp: None,
            target: None,
        }
    }

    /// Every row the engine would read from the cache is the row in the
    /// database, after each kind of change, committed or rolled back.
    #[test]
    fn the_engine_reads_through_the_cache_what_the_database_holds() {
        use std::sync::Arc;
        use std::time::{Duration, UNIX_EPOCH};

        use crate::meta::{MetaStore, NewInode};
        use crate::store::ContentStore;

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ContentStore::open(dir.path()).unwrap());
        let blob = store.put_bytes(b"content").unwrap();
        let meta = MetaStore::open(dir.path(), store).unwrap();
        let new = |kind, parent| NewInode {
            kind,
            parent,
            app: Some(1),
            perm: 0o755,
            uid: 0,
            gid: 0,
            blob: None,
            temp: None,
            target: None,
        };
        let agree = |inos: &[Ino], when: &str| {
            let txn = meta.read().unwrap();
            for &ino in inos {
                let db = txn.inode_from_database(ino).unwrap();
                assert_eq!(txn.inode(ino).unwrap(), db, "{when}: inode {ino}");
                assert_eq!(txn.inode(ino).unwrap(), db, "{when}: inode {ino}, cached");
            }
        };

        let mut txn = meta.begin().unwrap();
        let dir_row = txn.insert_inode_row(&new(InodeKind::Dir, 1)).unwrap();
        let file_row = txn
            .insert_inode_row(&new(InodeKind::File, dir_row.ino))
            .unwrap();
        txn.commit().unwrap();
        let (d, f) = (dir_row.ino, file_row.ino);
        agree(&[d, f], "inserted");

        // Attributes over a cached row; times beyond what the engine keeps.
        let mut txn = meta.begin().unwrap();
        let mut row = txn.inode(f).unwrap().unwrap();
        row.perm = 0o600;
        row.mtime = UNIX_EPOCH + Duration::new(u64::MAX / 2, 123);
        row.atime = UNIX_EPOCH - Duration::from_nanos(5);
        txn.update_attrs(&row).unwrap();
        assert_eq!(txn.inode(f).unwrap(), txn.inode_from_database(f).unwrap());
        txn.commit().unwrap();
        agree(&[d, f], "attributes");

        // Rolled back: the cache keeps the committed row.
        let mut txn = meta.begin().unwrap();
        let mut row = txn.inode(f).unwrap().unwrap();
        row.uid = 42;
        txn.update_attrs(&row).unwrap();
        txn.set_content(f, Some(&blob), None).unwrap();
        drop(txn);
        agree(&[d, f], "rolled back");

        // Content, then attributes over content the transaction did not follow.
        let mut txn = meta.begin().unwrap();
        txn.set_content(f, Some(&blob), None).unwrap();
        let mut row = txn.inode(f).unwrap().unwrap();
        row.gid = 7;
        txn.update_attrs(&row).unwrap();
        txn.commit().unwrap();
        agree(&[d, f], "content and attributes");

        let mut txn = meta.begin().unwrap();
        txn.seal(f, &blob, UNIX_EPOCH, UNIX_EPOCH + Duration::from_secs(9))
            .unwrap();
        txn.commit().unwrap();
        agree(&[d, f], "sealed");

        let mut txn = meta.begin().unwrap();
        txn.insert_dentry(d, "f", f).unwrap();
        txn.set_app_of_subtree(d, Some(99)).unwrap();
        txn.commit().unwrap();
        agree(&[d, f], "moved to another app");

        let mut txn = meta.begin().unwrap();
        let row = txn.inode(f).unwrap().unwrap();
        txn.delete_inode(&row).unwrap();
        txn.commit().unwrap();
        agree(&[d, f], "deleted");
        assert_eq!(meta.read().unwrap().inode(f).unwrap(), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let mut cache = RowCache::default();
        for ino in 0..CAPACITY as u64 {
            cache.put(row(ino));
        }
        assert_eq!(cache.len(), CAPACITY);
        cache.put(row(0));
        assert_eq!(cache.len(), CAPACITY, "a row already held is replaced");
        cache.put(row(CAPACITY as u64));
        assert_eq!(cache.len(), 1);
        assert!(cache.get(CAPACITY as u64).is_some());
    }

    #[test]
    fn changes_reach_the_cache_as_they_stand() {
        let mut cache = RowCache::default();
        cache.put(row(2));
        cache.put(row(3));
        let mut changes = RowChanges::default();
        let mut changed = row(2);
        changed.perm = 0o600;
        changes.now(changed.clone());
        changes.unknown(3);
        assert!(matches!(changes.known(2), Known::Row(r) if *r == changed));
        assert!(matches!(changes.known(3), Known::AskTheDatabase));
        assert!(matches!(changes.known(4), Known::Committed));
        changes.apply(&mut cache);
        assert_eq!(cache.get(2), Some(changed));
        assert_eq!(cache.get(3), None);

        let mut bulk = RowChanges::default();
        bulk.now(row(5));
        bulk.all_unknown();
        assert!(matches!(bulk.known(5), Known::AskTheDatabase));
        bulk.apply(&mut cache);
        assert_eq!(cache.len(), 0);
    }
}
