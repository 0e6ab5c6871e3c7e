//! A regular file while it is being written: a temp file in the state
//! directory, sealed into an immutable blob when its last writer closes.
//!
//! The temp file is the truth while it is open: writes may reach it
//! straight from the kernel (FUSE passthrough), so its size and mtime are
//! read from it rather than counted here.

use std::fs::{File, FileTimes};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::SystemTime;

use crate::store::{BlobInfo, ContentStore};

#[derive(Debug)]
pub struct OpenFile {
    pub temp: PathBuf,
    file: File,
    /// Bumped by every write, truncate and new handle, so sealing can tell
    /// whether the bytes it hashed are still the current ones (passthrough
    /// writes are not seen, but their handle's arrival is).
    generation: AtomicU64,
    /// Open handles on this content, readers included: it is sealed when
    /// the last one closes, so every handle of a file shares one temp file
    /// (the kernel insists on one backing file per inode for passthrough).
    handles: AtomicU32,
    /// A writer called fsync: sealing must keep the bytes durable too.
    synced: AtomicBool,
}

/// What the temp file says of a file being written: writes, truncates and
/// utimes reach it, some straight from the kernel.
#[derive(Debug, Clone, Copy)]
pub struct TempStat {
    pub size: u64,
    /// 512-byte blocks allocated: holes take none.
    pub blocks: u64,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
}

/// An inode with open handles, or whose bytes are still in a temp file.
#[derive(Debug)]
pub struct OpenInode {
    /// The app root, to tell the deploy layer without asking the engine.
    pub app: Option<super::Ino>,
    pub handles: u32,
    /// The temp file, from the first write until the seal is committed.
    pub writing: Option<std::sync::Arc<OpenFile>>,
    /// Its last name went while it was open: freed at the last close.
    pub orphan: bool,
    /// The blob of the last seal while the inode was open, so a reader
    /// that opened an older one reads what was written and closed since.
    pub sealed: Option<String>,
}

impl OpenFile {
    pub fn new(temp: PathBuf, file: File) -> OpenFile {
        OpenFile {
            temp,
            file,
            generation: AtomicU64::new(0),
            handles: AtomicU32::new(0),
            synced: AtomicBool::new(false),
        }
    }

    /// Size and modification time, from the temp file itself.
    pub fn stat(&self) -> io::Result<TempStat> {
        use std::os::unix::fs::MetadataExt;
        let meta = self.file.metadata()?;
        let ctime = std::time::UNIX_EPOCH
            + std::time::Duration::new(meta.ctime().max(0) as u64, meta.ctime_nsec() as u32);
        Ok(TempStat {
            size: meta.len(),
            blocks: meta.blocks(),
            mtime: meta.modified()?,
            ctime,
        })
    }

    /// Sets the temp file's times, so they survive passthrough writes and sealing.
    pub fn set_times(
        &self,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> io::Result<()> {
        let mut times = FileTimes::new();
        if let Some(t) = atime {
            times = times.set_accessed(t);
        }
        if let Some(t) = mtime {
            times = times.set_modified(t);
        }
        self.file.set_times(times)
    }

    /// The temp file, for the kernel to write to directly (passthrough).
    pub fn backing_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn attach(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Returns the number of handles left.
    pub fn detach(&self) -> u32 {
        self.handles
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1)
    }

    pub fn handles(&self) -> u32 {
        self.handles.load(Ordering::Acquire)
    }

    pub fn read_at(&self, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        read_exact_or_eof(&self.file, offset, len)
    }

    /// `SEEK_DATA` or `SEEK_HOLE` in the temp file; `None` past its data.
    pub fn seek(&self, offset: u64, whence: i32) -> io::Result<Option<u64>> {
        crate::store::seek(&self.file, offset, whence)
    }

    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    pub fn truncate(&self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// `fallocate(2)` on the temp file with the caller's mode, so the disk
    /// that will hold the bytes answers: `ENOSPC` now rather than at a
    /// later write, and its own size and times.
    pub fn allocate(&self, mode: i32, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let too_big = |_| io::Error::from_raw_os_error(libc::EFBIG);
        let offset = libc::off_t::try_from(offset).map_err(too_big)?;
        let len = libc::off_t::try_from(len).map_err(too_big)?;
        // SAFETY: a plain call on a descriptor this struct owns.
        if unsafe { libc::fallocate(self.file.as_raw_fd(), mode, offset, len) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    pub fn sync(&self) -> io::Result<()> {
        self.synced.store(true, Ordering::Release);
        self.file.sync_data()
    }

    pub fn was_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Hashes the temp file without moving it. Slow for big files: call
    /// without holding the tree lock.
    pub fn hash(&self) -> io::Result<BlobInfo> {
        crate::store::hash_open_file(&self.file)
    }

    /// Links the temp file into the store under `info`; the temp file
    /// itself goes once the seal is committed.
    pub fn link_in(&self, store: &ContentStore, info: &BlobInfo) -> io::Result<bool> {
        store.link_in(&self.temp, info, self.was_synced())
    }

    /// The seal is committed, or the content was never recorded: the temp
    /// file is no longer needed. (Not on drop: the engine may still name it.)
    pub fn remove_temp(&self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

/// Reads up to `len` bytes at `offset`, fewer only at end of file.
pub fn read_exact_or_eof(file: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let filled = crate::store::read_full_at(file, &mut buf, offset)?;
    buf.truncate(filled);
    Ok(buf)
}
