//! Open file and directory handles.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::content::OpenFile;
use super::node::DirEntry;
use super::{AppId, TreeError, TreeResult};

/// What `open` and `create` hand back to the adapter.
#[derive(Debug, Clone)]
pub struct Opened {
    pub fh: u64,
    /// Bypass the page cache: status files change behind the kernel's back.
    pub direct_io: bool,
    /// The temp file, when the file is being written: the adapter may let
    /// the kernel write to it directly.
    pub backing: Option<Arc<OpenFile>>,
}

#[derive(Debug)]
pub(super) enum Handle {
    File {
        /// The app root, told of every write.
        app: Option<super::Ino>,
        /// Set while the file is being written (by this handle or another).
        open: Option<Arc<OpenFile>>,
        /// The immutable blob, for a handle opened on a sealed file: its
        /// SHA-256 and the open file. Reads prefer newer content.
        blob: Option<(String, File)>,
        ino: super::Ino,
        writable: bool,
    },
    /// A status file's bytes, frozen at open so reads agree with each other.
    Status {
        bytes: Vec<u8>,
    },
    /// `.pushfs/wait`: filled once the deploy ends.
    Wait {
        app: AppId,
        result: Arc<Mutex<Option<Vec<u8>>>>,
    },
    Ctl {
        app: AppId,
    },
    Dir {
        entries: Vec<DirEntry>,
    },
}

#[derive(Debug, Default)]
pub(super) struct HandleTable {
    map: Mutex<HashMap<u64, Arc<Handle>>>,
    next: AtomicU64,
}

impl HandleTable {
    pub fn insert(&self, handle: Handle) -> u64 {
        let fh = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.map.lock().insert(fh, Arc::new(handle));
        fh
    }

    pub fn get(&self, fh: u64) -> TreeResult<Arc<Handle>> {
        self.map
            .lock()
            .get(&fh)
            .cloned()
            .ok_or(TreeError::BadHandle)
    }

    pub fn remove(&self, fh: u64) -> Option<Arc<Handle>> {
        self.map.lock().remove(&fh)
    }
}
