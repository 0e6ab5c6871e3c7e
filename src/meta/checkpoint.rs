//! Checkpoints off the request path, and a bound on the log. In WAL mode a
//! checkpoint copies the log into the database and syncs both; SQLite would
//! run it inside whichever commit crosses the threshold, so that FUSE
//! request would wait for two fsyncs. Here a thread with its own connection
//! runs passive checkpoints instead, which never block the writer.
//!
//! A passive checkpoint never shrinks the log, and under a steady stream of
//! commits SQLite never gets the moment it needs to start the log over: a
//! million creates left a 20 GB `meta.db-wal`. So once the log passes
//! [`WAL_BOUND`], the thread takes the engine's connection between two
//! transactions (the engine is idle while it holds it) and runs a TRUNCATE
//! checkpoint there, which empties the log. A write transaction that finds
//! the log past the bound does the same first, so the log never exceeds the
//! bound by more than one transaction however fast commits come. The two
//! connections take turns ([`Checkpointer::gate`]): a TRUNCATE that meets a
//! passive checkpoint in progress gives up at once rather than wait.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::Connection;

use super::MetaResult;

/// How often the log is folded into the database.
const INTERVAL: Duration = Duration::from_millis(500);

/// The log's size beyond which it is emptied: its frames are in the
/// database already, save those of the last half second.
pub const WAL_BOUND: u64 = 64 * 1024 * 1024;

/// How long the thread waits for the engine to be between transactions.
const IDLE_WAIT: Duration = Duration::from_millis(100);

pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Held by whichever connection checkpoints. Taken after the engine's
    /// connection, never before.
    gate: Arc<Mutex<()>>,
}

impl Checkpointer {
    /// `engine` is the connection requests use; the thread borrows it only
    /// to empty a log past the bound.
    pub fn start(db: &Path, engine: Weak<Mutex<Connection>>) -> MetaResult<Checkpointer> {
        let conn = Connection::open(db)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        limit_journal(&conn)?;
        let wal = wal_path(db);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let gate = Arc::new(Mutex::new(()));
        let turn = gate.clone();
        let thread = std::thread::Builder::new()
            .name("pushfs-checkpoint".into())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    std::thread::park_timeout(INTERVAL);
                    let passive = {
                        let _turn = turn.lock();
                        conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
                    };
                    if let Err(err) = passive {
                        tracing::debug!(%err, "checkpoint postponed");
                    }
                    if wal_len(&wal) <= WAL_BOUND {
                        continue;
                    }
                    let Some(engine) = engine.upgrade() else {
                        break;
                    };
                    // Between two transactions, or not at all this round.
                    if let Some(engine) = engine.try_lock_for(IDLE_WAIT) {
                        let _turn = turn.lock();
                        truncate_log(&engine);
                    };
                }
            })?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
            gate,
        })
    }

    /// Empties the log on `engine`, the engine's connection held between
    /// transactions, once a passive checkpoint in progress is done.
    pub fn truncate_log(&self, engine: &Connection) {
        let _turn = self.gate.lock();
        truncate_log(engine);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// After a checkpoint restarts the log, SQLite cuts its file back to this.
pub fn limit_journal(conn: &Connection) -> MetaResult<()> {
    conn.pragma_update(None, "journal_size_limit", WAL_BOUND as i64)?;
    Ok(())
}

pub fn wal_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", db.display()))
}

/// The log's size; 0 when there is none.
pub fn wal_len(wal: &Path) -> u64 {
    std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Empties the log on `conn`, the engine's connection held between
/// transactions, with the gate held. Failing is harmless: the next chance
/// retries.
fn truncate_log(conn: &Connection) {
    let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE);", [], |row| {
        row.get::<_, i64>(0)
    });
    match busy {
        Ok(0) => tracing::debug!("the metadata log passed its bound and was emptied"),
        Ok(_) => tracing::debug!("the metadata log is past its bound; emptying it waits"),
        Err(err) => tracing::warn!(%err, "cannot empty the metadata log; retried later"),
    }
}
