//! Each app's deploy history, and the folder trees a rollback can return
//! to. A kept tree's entries hold references on their blobs, exactly as
//! inodes do, so the blobs stay while the tree is kept and go with it.

use std::time::SystemTime;

use rusqlite::params;

use super::txn::{from_ns, to_ns};
use super::{InodeKind, MetaResult, Txn};
use crate::store::BlobInfo;

/// How many history lines an app keeps; older ones are dropped.
const LINES_KEPT: i64 = 1000;

/// One line of `.pushfs/history`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    pub at: SystemTime,
    pub outcome: String,
    pub digest: String,
    /// The server's hash, revision or id, as `key=value` words.
    pub server: Option<String>,
    /// Whether the line's tree is kept: a rollback can return to it.
    pub kept: bool,
}

/// One entry of a kept tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptEntry {
    pub path: String,
    pub kind: InodeKind,
    pub perm: u16,
    pub blob: Option<BlobInfo>,
    pub target: Option<String>,
    /// Set on each name of a file with several (hard links): the same
    /// number for all of them.
    pub link: Option<u64>,
}

impl Txn<'_> {
    /// Appends a history line; with `tree`, the tree is kept (or, if it
    /// already is, marked as used by this line). Returns the line's id.
    pub fn add_history(
        &mut self,
        app: &str,
        line: &HistoryLine,
        tree: Option<&mut dyn Iterator<Item = KeptEntry>>,
    ) -> MetaResult<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO history (app, at, outcome, digest, server) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                app,
                to_ns(line.at),
                line.outcome,
                line.digest,
                line.server
            ])?;
        let id = self.conn.last_insert_rowid();
        if let Some(entries) = tree {
            self.keep_tree(app, &line.digest, entries, id)?;
        }
        self.conn
            .prepare_cached(
                "DELETE FROM history WHERE app = ?1 AND id <= \
                 (SELECT id FROM history WHERE app = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![app, LINES_KEPT])?;
        Ok(id)
    }

    fn keep_tree(
        &mut self,
        app: &str,
        digest: &str,
        entries: &mut dyn Iterator<Item = KeptEntry>,
        used: i64,
    ) -> MetaResult<()> {
        let kept = self
            .conn
            .prepare_cached("SELECT 1 FROM kept_tree WHERE app = ?1 AND digest = ?2")?
            .exists(params![app, digest])?;
        if kept {
            self.conn
                .prepare_cached("UPDATE kept_tree SET used = ?3 WHERE app = ?1 AND digest = ?2")?
                .execute(params![app, digest, used])?;
            return Ok(());
        }
        self.conn
            .prepare_cached("INSERT INTO kept_tree (app, digest, used) VALUES (?1, ?2, ?3)")?
            .execute(params![app, digest, used])?;
        for entry in entries {
            if let Some(blob) = &entry.blob {
                self.blob_ref(blob)?;
            }
            self.conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO kept_entry \
                     (app, digest, path, kind, perm, blob, sha1, size, target, link) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    app,
                    digest,
                    entry.path,
                    entry.kind.code(),
                    i64::from(entry.perm),
                    entry.blob.as_ref().map(|b| b.sha256.as_str()),
                    entry.blob.as_ref().map(|b| b.sha1.as_str()),
                    entry.blob.as_ref().map_or(0, |b| b.size as i64),
                    entry.target,
                    entry.link.map(|l| l as i64),
                ])?;
        }
        Ok(())
    }

    /// Keeps the app's `keep` most recently used trees and drops the rest,
    /// with their blob references.
    pub fn prune_kept_trees(&mut self, app: &str, keep: usize) -> MetaResult<()> {
        let old: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT digest FROM kept_tree WHERE app = ?1 ORDER BY used DESC LIMIT -1 OFFSET ?2",
            )?
            .query_map(params![app, keep as i64], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for digest in old {
            self.drop_kept_tree(app, &digest)?;
        }
        Ok(())
    }

    fn drop_kept_tree(&mut self, app: &str, digest: &str) -> MetaResult<()> {
        let blobs: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT blob FROM kept_entry WHERE app = ?1 AND digest = ?2 AND blob IS NOT NULL",
            )?
            .query_map(params![app, digest], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for sha in blobs {
            self.blob_unref(&sha)?;
        }
        self.conn
            .prepare_cached("DELETE FROM kept_entry WHERE app = ?1 AND digest = ?2")?
            .execute(params![app, digest])?;
        self.conn
            .prepare_cached("DELETE FROM kept_tree WHERE app = ?1 AND digest = ?2")?
            .execute(params![app, digest])?;
        Ok(())
    }

    /// Forgets an app's history and its kept trees (its folder is gone).
    pub fn forget_history(&mut self, app: &str) -> MetaResult<()> {
        let digests: Vec<String> = self
            .conn
            .prepare_cached("SELECT digest FROM kept_tree WHERE app = ?1")?
            .query_map([app], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for digest in digests {
            self.drop_kept_tree(app, &digest)?;
        }
        self.conn
            .prepare_cached("DELETE FROM history WHERE app = ?1")?
            .execute([app])?;
        Ok(())
    }

    /// The app's history, oldest first.
    pub fn history(&self, app: &str) -> MetaResult<Vec<HistoryLine>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT h.at, h.outcome, h.digest, h.server, \
             EXISTS (SELECT 1 FROM kept_tree k WHERE k.app = h.app AND k.digest = h.digest) \
             FROM history h WHERE h.app = ?1 ORDER BY h.id",
        )?;
        let rows = stmt.query_map([app], |r| {
            Ok(HistoryLine {
                at: from_ns(r.get(0)?),
                outcome: r.get(1)?,
                digest: r.get(2)?,
                server: r.get(3)?,
                kept: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The digests of the app's kept trees that start with `prefix`.
    pub fn kept_trees_matching(&self, app: &str, prefix: &str) -> MetaResult<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT digest FROM kept_tree WHERE app = ?1 AND substr(digest, 1, length(?2)) = ?2",
        )?;
        let rows = stmt.query_map(params![app, prefix], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A kept tree's entries, sorted by path (parents before children).
    pub fn kept_tree(&self, app: &str, digest: &str) -> MetaResult<Vec<KeptEntry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT path, kind, perm, blob, sha1, size, target, link FROM kept_entry \
             WHERE app = ?1 AND digest = ?2 ORDER BY path",
        )?;
        let rows = stmt.query_map(params![app, digest], |r| {
            let blob: Option<String> = r.get(3)?;
            let sha1: Option<String> = r.get(4)?;
            let size: i64 = r.get(5)?;
            Ok(KeptEntry {
                path: r.get(0)?,
                kind: InodeKind::from_code(r.get(1)?),
                perm: r.get::<_, i64>(2)? as u16,
                blob: blob.map(|sha256| BlobInfo {
                    sha256,
                    sha1: sha1.unwrap_or_default(),
                    size: size as u64,
                }),
                target: r.get(6)?,
                link: r.get::<_, Option<i64>>(7)?.map(|l| l as u64),
            })
        })?;
        // A parent's path is a prefix of its children's: it sorts first.
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
