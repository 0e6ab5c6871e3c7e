//! The database layout, and the settings every connection runs with.

use rusqlite::Connection;

use super::{MetaError, MetaResult};

/// Bumped on every incompatible change; a newer database is refused.
const VERSION: i64 = 4;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS inode (
    ino     INTEGER PRIMARY KEY,                -- given by the engine, never reused while mounted
    kind    INTEGER NOT NULL,                   -- 1 directory, 2 regular file, 3 symlink
    parent  INTEGER NOT NULL,                   -- a directory's parent; a file's first parent
    app     INTEGER,                            -- the app's root inode; NULL above the apps
    perm    INTEGER NOT NULL,
    uid     INTEGER NOT NULL,
    gid     INTEGER NOT NULL,
    atime   INTEGER NOT NULL,                   -- nanoseconds since the epoch
    mtime   INTEGER NOT NULL,
    ctime   INTEGER NOT NULL,
    nlink   INTEGER NOT NULL,
    size    INTEGER NOT NULL DEFAULT 0,
    blob    TEXT,                               -- SHA-256 of a sealed file's content
    sha1    TEXT,                               -- its SHA-1, here too so no read joins blob
    temp    TEXT,                               -- the temp file of a file being written
    target  TEXT                                -- a symlink's target
);
-- No secondary index on inode: each would cost every create a page write;
-- the scans that would use one (recovery, recounts) run once per mount.
CREATE TABLE IF NOT EXISTS dentry (
    parent  INTEGER NOT NULL,
    name    TEXT NOT NULL,
    ino     INTEGER NOT NULL,
    PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob (
    sha256  TEXT PRIMARY KEY,
    sha1    TEXT NOT NULL,
    size    INTEGER NOT NULL,
    refs    INTEGER NOT NULL                     -- inodes and kept entries naming it; the file goes at 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS app (
    id          TEXT PRIMARY KEY,
    backend     TEXT NOT NULL,
    root        INTEGER NOT NULL UNIQUE,
    changed_run INTEGER NOT NULL DEFAULT 0        -- the last run that changed the app
);
-- One line per deploy outcome (and per tree a rollback replaced).
CREATE TABLE IF NOT EXISTS history (
    id      INTEGER PRIMARY KEY,
    app     TEXT NOT NULL,                      -- the app's id
    at      INTEGER NOT NULL,                   -- nanoseconds since the epoch
    outcome TEXT NOT NULL,                      -- deployed, accepted, failed, cancelled, replaced
    digest  TEXT NOT NULL,                      -- the content digest of the deployed tree
    server  TEXT                                -- the server's hash, revision or id
);
-- The folder trees a rollback can go back to, by app and digest; each
-- entry holds a reference on its blob.
CREATE TABLE IF NOT EXISTS kept_tree (
    app     TEXT NOT NULL,
    digest  TEXT NOT NULL,
    used    INTEGER NOT NULL,                   -- the newest history line naming it
    PRIMARY KEY (app, digest)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kept_entry (
    app     TEXT NOT NULL,
    digest  TEXT NOT NULL,
    path    TEXT NOT NULL,                      -- from the app root, `/`-separated
    kind    INTEGER NOT NULL,                   -- as inode.kind
    perm    INTEGER NOT NULL,
    blob    TEXT,
    sha1    TEXT,
    size    INTEGER NOT NULL DEFAULT 0,
    target  TEXT,
    link    INTEGER,                            -- entries sharing it are one file's names
    PRIMARY KEY (app, digest, path)
) WITHOUT ROWID;
-- Extended attributes (`user.*`, and `trusted.*` / `security.*` set by
-- root), by inode: hard links share them. Deleted with their inode; never
-- packaged, never counted.
CREATE TABLE IF NOT EXISTS xattr (
    ino     INTEGER NOT NULL,
    name    BLOB NOT NULL,                      -- the full name, `user.` prefix included
    value   BLOB NOT NULL,
    PRIMARY KEY (ino, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS setting (
    key     TEXT PRIMARY KEY,
    value   INTEGER NOT NULL
);
";

/// Settings, then tables; refuses a database from a newer pushfs.
pub fn prepare(conn: &Connection) -> MetaResult<()> {
    // WAL + NORMAL: a commit is one append to the WAL, durable against a
    // crash of the process; power loss needs the fsync pushfs does on request.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // A bounded page cache keeps the mount's memory flat however many files pass.
    conn.pragma_update(None, "cache_size", -8192)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Every statement the engine runs stays compiled (the default keeps 16).
    conn.set_prepared_statement_cache_capacity(128);
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > VERSION {
        return Err(MetaError::NewerSchema {
            found,
            known: VERSION,
        });
    }
    if found == 1 {
        conn.execute_batch(
            "ALTER TABLE inode ADD COLUMN sha1 TEXT;
             UPDATE inode SET sha1 = (SELECT sha1 FROM blob WHERE sha256 = inode.blob);",
        )?;
    }
    // 3 → 4 adds the `xattr` table, which TABLES creates. The version still
    // moves: an older pushfs would delete inodes and leave their attributes
    // behind, for a later inode with the same number to inherit.
    conn.execute_batch(TABLES)?;
    if found < VERSION {
        conn.pragma_update(None, "user_version", VERSION)?;
    }
    Ok(())
}
