//! Extended attributes as stored: (inode, name) → value. They belong to the
//! inode, so every name of a hard-linked file shares them, and they go with
//! it ([`Txn::delete_inode`]). Nothing else counts or packages them.

use rusqlite::{params, OptionalExtension};

use super::{Ino, MetaResult, Txn};

impl Txn<'_> {
    /// One attribute's value.
    pub fn xattr(&self, ino: Ino, name: &[u8]) -> MetaResult<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM xattr WHERE ino = ?1 AND name = ?2")?
            .query_row(params![ino as i64, name], |r| r.get(0))
            .optional()?)
    }

    /// The inode's attribute names, in byte order.
    pub fn xattr_names(&self, ino: Ino) -> MetaResult<Vec<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM xattr WHERE ino = ?1 ORDER BY name")?;
        let rows = stmt.query_map([ino as i64], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether any inode has an attribute whose name starts with `prefix`
    /// (a namespace such as `security.`).
    pub fn has_xattr_in(&self, prefix: &[u8]) -> MetaResult<bool> {
        // A scan (the key starts with the inode), made once at mount.
        let found: i64 = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM xattr WHERE substr(name, 1, ?2) = ?1)")?
            .query_row(params![prefix, prefix.len() as i64], |r| r.get(0))?;
        Ok(found != 0)
    }

    /// Sets an attribute, replacing any value it had.
    pub fn set_xattr(&mut self, ino: Ino, name: &[u8], value: &[u8]) -> MetaResult<()> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO xattr (ino, name, value) VALUES (?1, ?2, ?3)")?
            .execute(params![ino as i64, name, value])?;
        Ok(())
    }

    /// Removes an attribute; false if it was not there.
    pub fn remove_xattr(&mut self, ino: Ino, name: &[u8]) -> MetaResult<bool> {
        let gone = self
            .conn
            .prepare_cached("DELETE FROM xattr WHERE ino = ?1 AND name = ?2")?
            .execute(params![ino as i64, name])?;
        Ok(gone > 0)
    }

    /// Removes every attribute of an inode that is going.
    pub(super) fn remove_xattrs_of(&mut self, ino: Ino) -> MetaResult<()> {
        self.conn
            .prepare_cached("DELETE FROM xattr WHERE ino = ?1")?
            .execute([ino as i64])?;
        Ok(())
    }

    /// Drops attributes whose inode is gone (a safety net at mount, like
    /// the blob recount); returns how many.
    pub fn drop_stray_xattrs(&mut self) -> MetaResult<usize> {
        Ok(self.conn.execute(
            "DELETE FROM xattr WHERE ino NOT IN (SELECT ino FROM inode)",
            [],
        )?)
    }

    /// How many attributes the engine holds, on every inode (for tests).
    pub fn xattr_count(&self) -> MetaResult<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM xattr", [], |r| r.get(0))?;
        Ok(n as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::Connection;

    use crate::meta::{InodeKind, MetaStore, NewInode};
    use crate::store::ContentStore;

    fn engine(dir: &std::path::Path) -> MetaStore {
        let store = Arc::new(ContentStore::open(dir).unwrap());
        MetaStore::open(dir, store).unwrap()
    }

    fn file(parent: u64) -> NewInode {
        NewInode {
            kind: InodeKind::File,
            parent,
            app: None,
            perm: 0o644,
            uid: 0,
            gid: 0,
            blob: None,
            temp: None,
            target: None,
        }
    }

    #[test]
    fn a_new_inode_row_is_the_row_stored() {
        let dir = tempfile::tempdir().unwrap();
        let meta = engine(dir.path());
        let store = ContentStore::open(dir.path()).unwrap();
        let mut with_blob = file(1);
        with_blob.blob = Some(store.put_bytes(b"content").unwrap());
        with_blob.app = Some(7);
        let mut writing = file(1);
        writing.temp = Some(dir.path().join("tmp/00/1-2"));
        let mut symlink = file(1);
        symlink.kind = InodeKind::Symlink;
        symlink.target = Some("../elsewhere".into());
        let mut directory = file(1);
        directory.kind = InodeKind::Dir;
        let mut txn = meta.begin().unwrap();
        for new in [with_blob, writing, symlink, directory] {
            let row = txn.insert_inode_row(&new).unwrap();
            assert_eq!(Some(row.clone()), txn.inode(row.ino).unwrap(), "{new:?}");
        }
        txn.commit().unwrap();
    }

    #[test]
    fn attributes_go_with_their_inode() {
        let dir = tempfile::tempdir().unwrap();
        let meta = engine(dir.path());
        let mut txn = meta.begin().unwrap();
        let ino = txn.insert_inode(&file(1)).unwrap();
        let other = txn.insert_inode(&file(1)).unwrap();
        txn.set_xattr(ino, b"user.b", b"2").unwrap();
        txn.set_xattr(ino, b"user.a", b"").unwrap();
        txn.set_xattr(other, b"user.a", b"kept").unwrap();
        txn.commit().unwrap();
        let txn = meta.read().unwrap();
        assert_eq!(
            txn.xattr_names(ino).unwrap(),
            [b"user.a".to_vec(), b"user.b".to_vec()]
        );
        assert_eq!(txn.xattr(ino, b"user.a").unwrap(), Some(Vec::new()));
        drop(txn);
        let mut txn = meta.begin().unwrap();
        let row = txn.inode(ino).unwrap().unwrap();
        txn.delete_inode(&row).unwrap();
        txn.commit().unwrap();
        let txn = meta.read().unwrap();
        assert_eq!(txn.xattr(ino, b"user.b").unwrap(), None);
        assert_eq!(txn.xattr_count().unwrap(), 1, "only the other inode's");
    }

    #[test]
    fn a_version_3_database_gains_the_table_and_becomes_version_4() {
        let dir = tempfile::tempdir().unwrap();
        {
            // As pushfs 3 left it: no xattr table.
            let conn = Connection::open(dir.path().join(crate::meta::DB_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE inode (ino INTEGER PRIMARY KEY, kind INTEGER NOT NULL, \
                 parent INTEGER NOT NULL, app INTEGER, perm INTEGER NOT NULL, \
                 uid INTEGER NOT NULL, gid INTEGER NOT NULL, atime INTEGER NOT NULL, \
                 mtime INTEGER NOT NULL, ctime INTEGER NOT NULL, nlink INTEGER NOT NULL, \
                 size INTEGER NOT NULL DEFAULT 0, blob TEXT, sha1 TEXT, temp TEXT, target TEXT);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let meta = engine(dir.path());
        let mut txn = meta.begin().unwrap();
        let ino = txn.insert_inode(&file(1)).unwrap();
        txn.set_xattr(ino, b"user.x", b"1").unwrap();
        txn.commit().unwrap();
        drop(meta);
        let conn = Connection::open(dir.path().join(crate::meta::DB_FILE)).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 4);
    }
}
