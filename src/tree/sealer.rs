//! Sealing closed files into blobs, off the FUSE request threads.
//!
//! `release` only queues the file; one thread hashes what is queued and
//! commits the whole batch in one engine transaction. Until its seal is
//! committed a file reads from its temp file, which the engine names, so
//! nothing is lost if pushfs dies in between: the next mount seals it.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::content::OpenFile;
use super::{Ino, Tree};
use crate::store::BlobInfo;

/// Most files sealed in one transaction.
const BATCH: usize = 512;
/// After a failed batch (a full disk), wait this long before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long the thread lets a batch gather once a file is queued. A tool
/// closing files one after another (`cp -r`, `tar x`) queues one every
/// 50-200 µs; sealing each alone costs an engine commit apiece, and the
/// files are safe in their temp files meanwhile. Only `.pushfs/wait` and a
/// stop wait on it, for at most this long more.
const GATHER: Duration = Duration::from_millis(2);

pub(super) struct Job {
    pub ino: Ino,
    pub open: Arc<OpenFile>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Jobs taken but not finished.
    in_flight: usize,
    /// The last batch could not be committed (a full or failing disk).
    stuck: bool,
    stopping: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when jobs arrive, and when the queue empties.
    changed: Condvar,
}

pub struct Sealer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sealer {
    pub fn start(tree: Weak<Tree>) -> Sealer {
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pushfs-sealer".into())
            .spawn(move || run(&worker, &tree))
            .expect("cannot start the sealer thread");
        Sealer {
            shared,
            thread: Some(thread),
        }
    }

    pub fn queue(&self, ino: Ino, open: Arc<OpenFile>) {
        let mut queue = self.shared.queue.lock();
        queue.jobs.push_back(Job { ino, open });
        self.shared.changed.notify_all();
    }

    /// Blocks until every queued file is sealed, or sealing is stuck on a
    /// failing disk (the engine still names those temp files, so the next
    /// mount seals them).
    pub fn drain(&self) {
        let mut queue = self.shared.queue.lock();
        while (!queue.jobs.is_empty() || queue.in_flight > 0) && !queue.stuck {
            self.shared.changed.wait(&mut queue);
        }
    }
}

impl Drop for Sealer {
    /// Stops the thread after the batch it is committing, if any: once the
    /// tree is gone, no seal of its may land in an engine that a new tree
    /// (a remount, a test's simulated crash) has opened meanwhile.
    fn drop(&mut self) {
        self.shared.queue.lock().stopping = true;
        self.shared.changed.notify_all();
        let Some(thread) = self.thread.take() else {
            return;
        };
        // The thread itself may hold the tree's last reference.
        if thread.thread().id() != std::thread::current().id() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, tree: &Weak<Tree>) {
    loop {
        let batch: Vec<Job> = {
            let mut queue = shared.queue.lock();
            while queue.jobs.is_empty() && !queue.stopping {
                shared.changed.wait(&mut queue);
            }
            if queue.stopping {
                return;
            }
            if queue.jobs.len() < BATCH {
                // Not a wait on the condvar: every queued file would end it.
                parking_lot::MutexGuard::unlocked(&mut queue, || std::thread::sleep(GATHER));
                if queue.stopping {
                    return;
                }
            }
            let n = queue.jobs.len().min(BATCH);
            queue.in_flight = n;
            queue.jobs.drain(..n).collect()
        };
        let retry = match tree.upgrade() {
            Some(tree) => tree.seal_batch(batch),
            None => return,
        };
        let mut queue = shared.queue.lock();
        queue.in_flight = 0;
        queue.stuck = !retry.is_empty();
        queue.jobs.extend(retry);
        shared.changed.notify_all();
        if queue.stuck {
            shared.changed.wait_for(&mut queue, RETRY_AFTER);
        }
    }
}

/// A file hashed and ready to commit.
pub(super) struct Hashed {
    pub ino: Ino,
    pub open: Arc<OpenFile>,
    pub generation: u64,
    pub info: BlobInfo,
}

impl Hashed {
    pub fn of(ino: Ino, open: Arc<OpenFile>) -> std::io::Result<Hashed> {
        let generation = open.generation();
        let info = open.hash()?;
        Ok(Hashed {
            ino,
            open,
            generation,
            info,
        })
    }
}
