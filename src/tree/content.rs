//! A regular file while it is being written: a temp file in the state
//! directory, sealed into an immutable blob when its last writer closes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::store::{BlobInfo, ContentStore};

#[derive(Debug)]
pub struct OpenFile {
    pub temp: PathBuf,
    file: File,
    size: AtomicU64,
    /// Bumped by every write and truncate, so sealing can tell whether the
    /// bytes it hashed are still the current ones.
    generation: AtomicU64,
    writers: AtomicU32,
    sealed: AtomicBool,
}

impl OpenFile {
    pub fn new(temp: PathBuf, file: File) -> io::Result<OpenFile> {
        let size = file.metadata()?.len();
        Ok(OpenFile {
            temp,
            file,
            size: AtomicU64::new(size),
            generation: AtomicU64::new(0),
            writers: AtomicU32::new(0),
            sealed: AtomicBool::new(false),
        })
    }

    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn add_writer(&self) {
        self.writers.fetch_add(1, Ordering::AcqRel);
    }

    /// Returns the number of writers left.
    pub fn remove_writer(&self) -> u32 {
        self.writers
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1)
    }

    pub fn writers(&self) -> u32 {
        self.writers.load(Ordering::Acquire)
    }

    pub fn read_at(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        read_exact_or_eof(&self.file, offset, len)
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)?;
        self.size
            .fetch_max(offset + data.len() as u64, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    pub fn truncate(&self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.size.store(size, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Hashes the temp file without moving it. Slow for big files: call
    /// without holding the tree lock.
    pub fn hash(&self) -> io::Result<BlobInfo> {
        crate::store::hash_file(&self.temp)
    }

    /// Moves the temp file into the store under `info`. Call under the
    /// tree lock, after checking that nothing was written since `hash`.
    pub fn commit(&self, store: &ContentStore, info: &BlobInfo) -> io::Result<()> {
        store.adopt(&self.temp, info)?;
        self.sealed.store(true, Ordering::Release);
        Ok(())
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if !self.sealed.load(Ordering::Acquire) {
            // Unlinked or replaced before it was sealed: nothing refers to it.
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Reads up to `len` bytes at `offset`, fewer only at end of file.
pub fn read_exact_or_eof(file: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}
