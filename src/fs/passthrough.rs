//! FUSE passthrough: the kernel writes straight into a file's temp file,
//! at native speed, instead of handing every write to us.
//!
//! The kernel allows one backing file per inode at a time, and refuses to
//! mix cached and passthrough opens of one inode. So per inode we count
//! cached and passthrough handles: a file being written gets passthrough
//! when nothing else has it open in another mode; any open that would mix
//! modes falls back to direct I/O, which goes through us and mixes with both.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fuser::BackingId;
use parking_lot::Mutex;

use crate::tree::OpenFile;

/// How one open handle does its I/O.
pub enum IoMode {
    /// The kernel's page cache, with reads and writes through us.
    Cached,
    /// No page cache; every read and write through us.
    DirectIo,
    /// Straight to the backing file, bypassing us.
    Passthrough(Arc<BackingId>),
}

#[derive(Default)]
struct InodeIo {
    /// The backing file's identity (its `OpenFile`) and the kernel's id for it.
    backing: Option<(usize, Arc<BackingId>)>,
    passthrough_handles: u32,
    cached_handles: u32,
}

#[derive(Clone, Copy)]
enum Counted {
    Passthrough,
    Cached,
}

#[derive(Default)]
struct Table {
    inodes: HashMap<u64, InodeIo>,
    handles: HashMap<u64, (u64, Counted)>,
}

pub struct Passthrough {
    enabled: AtomicBool,
    table: Mutex<Table>,
}

impl Passthrough {
    pub fn new() -> Passthrough {
        Passthrough {
            enabled: AtomicBool::new(false),
            table: Mutex::new(Table::default()),
        }
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// Picks the mode of a new handle `fh` on `ino`. `backing` is the temp
    /// file when the file is being written; `open_backing` registers it
    /// with the kernel.
    pub fn choose(
        &self,
        ino: u64,
        fh: u64,
        backing: Option<&Arc<OpenFile>>,
        open_backing: impl FnOnce(&OpenFile) -> std::io::Result<BackingId>,
    ) -> IoMode {
        let mut table = self.table.lock();
        let io = table.inodes.entry(ino).or_default();
        let mode = match backing {
            Some(file) if self.is_enabled() && io.cached_handles == 0 => {
                let identity = Arc::as_ptr(file) as usize;
                match &io.backing {
                    Some((id, backing_id)) if *id == identity => {
                        IoMode::Passthrough(backing_id.clone())
                    }
                    Some(_) => IoMode::DirectIo,
                    None => match open_backing(file) {
                        Ok(backing_id) => {
                            let backing_id = Arc::new(backing_id);
                            io.backing = Some((identity, backing_id.clone()));
                            IoMode::Passthrough(backing_id)
                        }
                        Err(err) => {
                            tracing::warn!(%err, "FUSE passthrough unavailable; writes go through pushfs");
                            self.enabled.store(false, Ordering::SeqCst);
                            IoMode::DirectIo
                        }
                    },
                }
            }
            _ if io.backing.is_some() || io.passthrough_handles > 0 => IoMode::DirectIo,
            _ => IoMode::Cached,
        };
        let counted = match mode {
            IoMode::Passthrough(_) => {
                io.passthrough_handles += 1;
                Some(Counted::Passthrough)
            }
            IoMode::Cached => {
                io.cached_handles += 1;
                Some(Counted::Cached)
            }
            IoMode::DirectIo => None,
        };
        match counted {
            Some(counted) => {
                table.handles.insert(fh, (ino, counted));
            }
            None => {
                if table
                    .inodes
                    .get(&ino)
                    .is_some_and(|io| io.passthrough_handles == 0 && io.cached_handles == 0)
                {
                    table.inodes.remove(&ino);
                }
            }
        }
        mode
    }

    /// Forgets handle `fh`; the kernel's backing id goes with the last passthrough handle.
    pub fn released(&self, fh: u64) {
        let mut table = self.table.lock();
        let Some((ino, counted)) = table.handles.remove(&fh) else {
            return;
        };
        let Some(io) = table.inodes.get_mut(&ino) else {
            return;
        };
        match counted {
            Counted::Passthrough => {
                io.passthrough_handles = io.passthrough_handles.saturating_sub(1);
                if io.passthrough_handles == 0 {
                    io.backing = None;
                }
            }
            Counted::Cached => io.cached_handles = io.cached_handles.saturating_sub(1),
        }
        if io.passthrough_handles == 0 && io.cached_handles == 0 {
            table.inodes.remove(&ino);
        }
    }
}

impl Default for Passthrough {
    fn default() -> Self {
        Passthrough::new()
    }
}
