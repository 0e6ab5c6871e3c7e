//! The metadata engine: inodes, names, attributes, link counts, blob
//! references and the apps, in an embedded SQLite database (WAL mode).
//! The only code that persists the tree.
//!
//! Every namespace or attribute change is one [`Txn`], committed before the
//! kernel is answered. A commit is a write into the WAL, so it survives
//! `kill -9` of pushfs; [`MetaStore::sync`] makes it survive power loss
//! too (pushfs calls it for `fsync`). JuiceFS's `pkg/meta` is the model:
//! the tree speaks to the engine through the typed methods of [`Txn`], and a
//! networked SQL engine would implement the same methods.
//!
//! Blob files follow their references: a commit that drops a blob's last
//! reference deletes its file while the engine's lock is still held, so a
//! concurrent seal can never adopt a blob that is about to vanish. Blobs a
//! deploy is packaging are pinned ([`BlobPins`]) and outlive their last
//! reference until the deploy lets go.

mod checkpoint;
mod error;
mod history;
mod inspect;
mod legacy;
mod pins;
mod reserve;
mod row_cache;
mod schema;
mod txn;
mod wal_check;
mod xattr;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;

use crate::private_files::private_file_options;
use crate::store::ContentStore;

pub use checkpoint::WAL_BOUND;
pub use error::{MetaError, MetaResult};
pub use history::{HistoryLine, KeptEntry};
pub use inspect::{db_path, BlobName, Inspector};
pub use legacy::{has_legacy_manifests, import_legacy};
pub use pins::BlobPins;
pub use txn::{AppRow, InodeKind, InodeRow, NewInode, RunStart, Txn, WalkEntry};

use reserve::Reserve;

pub type Ino = u64;

/// The database file's name in the state directory.
pub const DB_FILE: &str = "meta.db";

pub struct MetaStore {
    /// Shared with the checkpointer, which borrows it between transactions.
    conn: Arc<Mutex<Connection>>,
    parts: EngineParts,
    path: PathBuf,
    wal: PathBuf,
    checkpointer: checkpoint::Checkpointer,
}

/// What every transaction works with besides the connection.
pub(crate) struct EngineParts {
    store: Arc<ContentStore>,
    /// Blobs deploys are reading. Locked after `conn`, never before.
    pins: Mutex<pins::PinTable>,
    /// Room that lets deletes commit on a full disk.
    reserve: Reserve,
    /// The next inode number: never reused while mounted, as the kernel
    /// caches them (a new mount starts a new kernel cache).
    next_ino: AtomicU64,
    /// Inode rows as committed. Locked after `conn`, never before.
    rows: Mutex<row_cache::RowCache>,
}

impl MetaStore {
    /// Opens (creating if needed) the database in `state_dir`.
    pub fn open(state_dir: &Path, store: Arc<ContentStore>) -> MetaResult<MetaStore> {
        let path = state_dir.join(DB_FILE);
        if !path.exists() {
            // SQLite gives its -wal and -shm files the database file's mode.
            private_file_options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
        }
        check_log(state_dir, &path)?;
        // Taken first: a disk that is full already still lets this start.
        let reserve = Reserve::new(state_dir.join(reserve::RESERVE_FILE));
        let conn = Connection::open(&path)?;
        if let Err(err) = schema::prepare(&conn) {
            // Only a full disk is helped by the reserve: a damaged database
            // must neither cost it nor be reported as a full disk.
            if err.errno() != libc::ENOSPC || !reserve.release() {
                return Err(err.damaged_at(&path));
            }
            schema::prepare(&conn).map_err(|err| err.damaged_at(&path))?;
        }
        // The checkpointer thread folds the log in; commits never wait for it.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        checkpoint::limit_journal(&conn)?;
        let max_ino: i64 =
            conn.query_row("SELECT coalesce(max(ino), 0) FROM inode", [], |r| r.get(0))?;
        let conn = Arc::new(Mutex::new(conn));
        let checkpointer = checkpoint::Checkpointer::start(&path, Arc::downgrade(&conn))?;
        Ok(MetaStore {
            conn,
            wal: checkpoint::wal_path(&path),
            parts: EngineParts {
                store,
                pins: Mutex::new(pins::PinTable::default()),
                reserve,
                next_ino: AtomicU64::new(max_ino as u64 + 1),
                rows: Mutex::new(row_cache::RowCache::default()),
            },
            path,
            checkpointer,
        })
    }

    /// Starts a write transaction; it rolls back unless committed. A log
    /// past its bound is emptied first (the checkpointer usually has).
    pub fn begin(&self) -> MetaResult<Txn<'_>> {
        let conn = self.conn.lock();
        if checkpoint::wal_len(&self.wal) > checkpoint::WAL_BOUND {
            self.checkpointer.truncate_log(&conn);
        }
        Txn::begin(conn, &self.parts)
    }

    /// The log's size now, for tests and diagnostics.
    pub fn wal_len(&self) -> u64 {
        checkpoint::wal_len(&self.wal)
    }

    /// A read-only view; cheaper than [`MetaStore::begin`] for lookups.
    pub fn read(&self) -> MetaResult<Txn<'_>> {
        Ok(Txn::read(self.conn.lock(), &self.parts))
    }

    /// Gives the room kept for deletes back to a full disk; false if it is
    /// already in use. It is taken again once commits free space.
    pub fn release_reserve(&self) -> bool {
        self.parts.reserve.release()
    }

    /// Makes every commit so far durable against power loss.
    pub fn sync(&self) -> MetaResult<()> {
        let conn = self.conn.lock();
        sync_wal(&conn, &self.path)
    }

    /// Keeps the blobs named by `sha256s` on disk until the returned pins
    /// drop, even if their last reference goes meanwhile.
    pub fn pin(self: &Arc<Self>, sha256s: impl IntoIterator<Item = pins::Sha256>) -> BlobPins {
        let pins = BlobPins::new(self.clone(), sha256s);
        self.parts.pins.lock().add(pins.set().clone());
        pins
    }

    /// Drops pins; a blob that lost its last reference while pinned goes now.
    fn unpin(&self, set: &Arc<[pins::Sha256]>) {
        let conn = self.conn.lock();
        let mut pins = self.parts.pins.lock();
        for sha in pins.remove(set) {
            let sha = pins::name_of(sha);
            match txn::blob_referenced(&conn, &sha) {
                Ok(true) => {}
                Ok(false) => self.parts.store.remove_blob(&sha),
                Err(err) => {
                    tracing::warn!(%err, "cannot check a blob after a deploy; the sweep at the next mount decides")
                }
            }
        }
    }
}

/// Reads the log before SQLite replays it. If SQLite would drop committed
/// transactions, the database and its log are copied to lost+found first
/// (`pushfs fsck` reads what they name), and the mount goes on with a
/// warning: what the rest of the log holds is served, and the files the
/// lost transactions named are set aside with their blobs by the sweep.
fn check_log(state_dir: &Path, db: &Path) -> MetaResult<()> {
    let wal = checkpoint::wal_path(db);
    let scan = wal_check::scan(&wal)?;
    if !scan.is_damaged() {
        return Ok(());
    }
    let copy = crate::store::lost_found_dir(state_dir).join(format!(
        "{}{}",
        crate::store::lost_found::DAMAGED_PREFIX,
        humantime::format_rfc3339_seconds(std::time::SystemTime::now())
    ));
    crate::private_files::create_private_dir_all(&copy)?;
    std::fs::copy(db, copy.join(DB_FILE))?;
    std::fs::copy(&wal, checkpoint::wal_path(&copy.join(DB_FILE)))?;
    if scan.header_damaged {
        tracing::warn!(
            "the metadata log {} has a damaged header: SQLite ignores all of it, and changes not yet folded into the database are lost; a copy is kept in {}",
            wal.display(),
            copy.display()
        );
    } else {
        tracing::warn!(
            replayed = scan.replayed_frames,
            frames = scan.frames,
            lost_commits = scan.lost_commits,
            "the metadata log {} is damaged: SQLite replays {} of its {} frames and drops {} committed transactions after the damage; a copy is kept in {}",
            wal.display(),
            scan.replayed_frames,
            scan.frames,
            scan.lost_commits,
            copy.display()
        );
    }
    Ok(())
}

/// With `synchronous=NORMAL`, WAL commits reach the OS at once (so a crash
/// of the process loses nothing) but the disk only at checkpoints. Syncing
/// the WAL file makes every commit so far durable.
fn sync_wal(conn: &Connection, db: &Path) -> MetaResult<()> {
    let wal = checkpoint::wal_path(db);
    match std::fs::File::open(&wal) {
        Ok(file) => file.sync_all()?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            conn.execute_batch("PRAGMA wal_checkpoint(FULL);")?
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
