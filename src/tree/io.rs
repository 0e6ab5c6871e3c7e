//! Opening, reading, writing and releasing files and directories.
//!
//! Bytes move between the kernel and temp files or blobs without any lock;
//! the engine is asked only to find a file's content or record a new one.

use std::fs::File;
use std::sync::Arc;

use super::content::{read_exact_or_eof, OpenFile};
use super::handles::{Handle, Opened};
use super::sealer::{Hashed, Job};
use super::status_files::StatusFile;
use super::status_inodes::StatusInode;
use super::{CtlCommand, DirEntry, FileKind, Ino, Tree, TreeError, TreeResult};
use crate::meta::InodeKind;

/// File system usage, from the disk that holds the state directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// Where a handle opened on sealed content finds the file's bytes now.
enum Current {
    /// A writer came since: its temp file.
    Writing(Arc<OpenFile>),
    /// Written and sealed since: the newer blob.
    Newer(File),
    /// The blob the handle opened.
    Opened,
}

/// The reply to a read: now, or later (`.pushfs/wait`).
pub type ReadDone = Box<dyn FnOnce(TreeResult<Vec<u8>>) + Send>;

impl Tree {
    pub fn open(&self, ino: Ino, flags: i32) -> TreeResult<Opened> {
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let truncate = writing && flags & libc::O_TRUNC != 0;
        if let Some(status) = StatusInode::decode(ino) {
            return self.open_status(status, writing);
        }
        let handle = {
            let txn = self.meta.read()?;
            let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
            match row.kind {
                InodeKind::Dir => return Err(TreeError::IsDir),
                InodeKind::Symlink => return Err(TreeError::InvalidArgument),
                InodeKind::File => {}
            }
            // Under the engine's lock: the blob cannot be freed meanwhile.
            let blob = match (&row.blob, writing) {
                (Some(blob), false) => Some((
                    blob.sha256.clone(),
                    self.open_blob(&txn, ino, &blob.sha256)?,
                )),
                _ => None,
            };
            self.open_entry(ino, row.app, |entry| match &entry.writing {
                Some(open) => {
                    open.attach();
                    entry.handles += 1;
                    Some(Handle::File {
                        app: row.app,
                        open: Some(open.clone()),
                        blob: None,
                        ino,
                        writable: writing,
                    })
                }
                None if !writing => {
                    entry.handles += 1;
                    Some(Handle::File {
                        app: row.app,
                        open: None,
                        blob,
                        ino,
                        writable: false,
                    })
                }
                None => None,
            })
        };
        let handle = match handle {
            Some(handle) => {
                if let Handle::File {
                    open: Some(open),
                    writable: true,
                    ..
                } = &handle
                {
                    if truncate {
                        open.truncate(0)?;
                    }
                }
                handle
            }
            None => self.open_sealed_for_writing(ino, truncate)?,
        };
        let (app, backing) = match &handle {
            Handle::File { app, open, .. } => (*app, open.clone()),
            _ => (None, None),
        };
        // Writes through passthrough never reach us, and the kernel sends
        // RELEASE after close() returns: without this, a `.pushfs/wait`
        // read right after the close could answer for the content before.
        if writing {
            self.notify(app);
        }
        Ok(Opened {
            fh: self.handles.insert(handle),
            direct_io: false,
            backing,
        })
    }

    fn open_status(&self, status: StatusInode, writing: bool) -> TreeResult<Opened> {
        let StatusInode::File { root, file } = status else {
            return Err(TreeError::IsDir);
        };
        let app = self.app_id(root).ok_or(TreeError::NotFound)?;
        let handle = match file {
            StatusFile::Ctl => Handle::Ctl { app },
            _ if writing => return Err(TreeError::StatusFileReadOnly),
            StatusFile::Wait => Handle::Wait {
                app,
                result: Default::default(),
            },
            other => Handle::Status {
                bytes: self.status_bytes(&app, other)?,
            },
        };
        Ok(Opened {
            fh: self.handles.insert(handle),
            direct_io: true,
            backing: None,
        })
    }

    /// A sealed file opened for writing gets a temp copy of its blob (or an
    /// empty one on O_TRUNC), recorded in the engine so a crash keeps what
    /// is written to it. The copy is made outside the lock; if another
    /// writer got there first, its temp file is shared instead.
    fn open_sealed_for_writing(&self, ino: Ino, truncate: bool) -> TreeResult<Handle> {
        let row = self.meta.read()?.inode(ino)?.ok_or(TreeError::NotFound)?;
        let blob = row.blob.clone().ok_or(TreeError::NotFound)?;
        let (temp, file) = if truncate || blob.size == 0 {
            self.store.new_temp()?
        } else {
            self.store
                .temp_copy_of(&blob.sha256)
                .map_err(|err| self.blob_error(err, ino, &blob.sha256))?
        };
        let fresh = Arc::new(OpenFile::new(temp, file));
        let mut txn = self.meta.begin()?;
        let current = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
        // Rewriting a file changes its app, in this run.
        if let Err(err) = self.mark(&mut txn, current.app) {
            fresh.remove_temp();
            return Err(err);
        }
        let mut open_table = self.open.lock();
        let entry = open_table.entry(ino).or_insert(super::content::OpenInode {
            app: current.app,
            handles: 0,
            writing: None,
            orphan: false,
            sealed: None,
        });
        let open = match &entry.writing {
            Some(existing) => {
                fresh.remove_temp();
                if truncate {
                    existing.truncate(0)?;
                }
                existing.clone()
            }
            None => {
                txn.set_content(ino, current.blob.as_ref(), Some(&fresh.temp))?;
                entry.writing = Some(fresh.clone());
                fresh
            }
        };
        open.attach();
        entry.handles += 1;
        let app = entry.app;
        let recorded = txn.commit();
        if let Err(err) = recorded {
            entry.handles -= 1;
            open.detach();
            if Arc::ptr_eq(&open, entry.writing.as_ref().expect("set above")) && open.handles() == 0
            {
                entry.writing = None;
                open.remove_temp();
            }
            if entry.handles == 0 && entry.writing.is_none() {
                open_table.remove(&ino);
            }
            return Err(err.into());
        }
        Ok(Handle::File {
            app,
            open: Some(open),
            blob: None,
            ino,
            writable: true,
        })
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32, done: ReadDone) {
        let handle = match self.handles.get(fh) {
            Ok(handle) => handle,
            Err(e) => return done(Err(e)),
        };
        let slice = move |bytes: &[u8]| {
            let start = (offset as usize).min(bytes.len());
            let end = start.saturating_add(size as usize).min(bytes.len());
            bytes[start..end].to_vec()
        };
        match &*handle {
            Handle::File {
                open: Some(open), ..
            } => done(open.read_at(offset, size).map_err(Into::into)),
            Handle::File {
                blob: Some((sha256, blob)),
                ino,
                ..
            } => done(self.read_current(*ino, sha256, blob, offset, size)),
            Handle::File { .. } => done(Err(TreeError::BadHandle)),
            Handle::Status { bytes } => done(Ok(slice(bytes))),
            Handle::Ctl { .. } => done(Ok(Vec::new())),
            Handle::Dir { .. } => done(Err(TreeError::IsDir)),
            Handle::Wait { app, result } => {
                if let Some(bytes) = result.lock().as_deref() {
                    return done(Ok(slice(bytes)));
                }
                let result = result.clone();
                self.hooks.wait(
                    app,
                    Box::new(move |bytes| {
                        let reply = slice(&bytes);
                        *result.lock() = Some(bytes);
                        done(Ok(reply));
                    }),
                );
            }
        }
    }

    /// A read through a handle opened on sealed content returns what the
    /// file holds now, as on a local disk: the bytes of a writer that came
    /// since (written, or closed and sealed), else the handle's own blob.
    fn read_current(
        &self,
        ino: Ino,
        opened: &str,
        blob: &File,
        offset: u64,
        size: u32,
    ) -> TreeResult<Vec<u8>> {
        Ok(match self.current_content(ino, opened) {
            Current::Writing(writing) => writing.read_at(offset, size)?,
            Current::Newer(file) => read_exact_or_eof(&file, offset, size)?,
            Current::Opened => read_exact_or_eof(blob, offset, size)?,
        })
    }

    /// Where the bytes of a file opened on the sealed blob `opened` are now.
    fn current_content(&self, ino: Ino, opened: &str) -> Current {
        let (writing, sealed) = match self.open.lock().get(&ino) {
            Some(entry) if !entry.orphan => (entry.writing.clone(), entry.sealed.clone()),
            _ => (None, None),
        };
        if let Some(writing) = writing {
            return Current::Writing(writing);
        }
        if let Some(newer) = sealed.filter(|s| s != opened) {
            // The newest seal is named by the inode, so it exists; a
            // failure here only means the file went meanwhile.
            if let Ok(file) = File::open(self.store.blob_path(&newer)) {
                return Current::Newer(file);
            }
        }
        Current::Opened
    }

    /// `lseek(2)` with `SEEK_DATA` or `SEEK_HOLE` (the kernel answers the
    /// other kinds itself), in the file that holds the bytes a read through
    /// this handle would return.
    pub fn seek_data(&self, fh: u64, offset: u64, whence: i32) -> TreeResult<u64> {
        if whence != libc::SEEK_DATA && whence != libc::SEEK_HOLE {
            return Err(TreeError::InvalidArgument);
        }
        let past_data = || TreeError::Io(std::io::Error::from_raw_os_error(libc::ENXIO));
        let handle = self.handles.get(fh)?;
        let found = match &*handle {
            Handle::File {
                open: Some(open), ..
            } => open.seek(offset, whence)?,
            Handle::File {
                blob: Some((sha256, blob)),
                ino,
                ..
            } => match self.current_content(*ino, sha256) {
                Current::Writing(writing) => writing.seek(offset, whence)?,
                Current::Newer(file) => crate::store::seek(&file, offset, whence)?,
                Current::Opened => crate::store::seek(blob, offset, whence)?,
            },
            // Status files are all data.
            Handle::Status { bytes } if offset < bytes.len() as u64 => {
                Some(if whence == libc::SEEK_DATA {
                    offset
                } else {
                    bytes.len() as u64
                })
            }
            Handle::Status { .. } => None,
            Handle::File { .. } => return Err(TreeError::BadHandle),
            Handle::Dir { .. } => return Err(TreeError::IsDir),
            Handle::Ctl { .. } | Handle::Wait { .. } => return Err(TreeError::InvalidArgument),
        };
        found.ok_or_else(past_data)
    }

    pub fn write(&self, _ino: Ino, fh: u64, offset: u64, data: &[u8]) -> TreeResult<u32> {
        let handle = self.handles.get(fh)?;
        match &*handle {
            Handle::File {
                app,
                open: Some(open),
                writable: true,
                ..
            } => {
                open.write_at(offset, data)?;
                self.notify(*app);
                Ok(data.len() as u32)
            }
            Handle::Ctl { app } => {
                match CtlCommand::parse(data).ok_or(TreeError::UnknownCtlCommand)? {
                    CtlCommand::Rollback(prefix) => match self.rollback(app, &prefix) {
                        Ok(done) => self.hooks.app_rolled_back(app, &done),
                        Err(err) => {
                            self.hooks
                                .command_refused(app, &format!("rollback {prefix}: {err}"));
                            return Err(err);
                        }
                    },
                    command => self.hooks.command(app, command),
                }
                Ok(data.len() as u32)
            }
            Handle::Status { .. } | Handle::Wait { .. } => Err(TreeError::StatusFileReadOnly),
            _ => Err(TreeError::BadHandle),
        }
    }

    /// Makes the file's bytes and its record durable against power loss.
    pub fn fsync(&self, fh: u64) -> TreeResult<()> {
        if let Handle::File {
            open: Some(open), ..
        } = &*self.handles.get(fh)?
        {
            open.sync()?;
            self.store.sync_temp_dir(&open.temp)?;
        }
        self.meta.sync()?;
        Ok(())
    }

    /// Closes a handle. The last close of a written file queues its seal
    /// and returns at once; an unlinked file goes with its last handle.
    pub fn release(&self, ino: Ino, fh: u64) -> TreeResult<()> {
        let Some(handle) = self.handles.remove(fh) else {
            return Err(TreeError::BadHandle);
        };
        let Handle::File { open: written, .. } = &*handle else {
            return Ok(());
        };
        let mut free_orphan = false;
        let mut stale_elsewhere = false;
        {
            let mut open_table = self.open.lock();
            let Some(entry) = open_table.get_mut(&ino) else {
                return Ok(());
            };
            entry.handles = entry.handles.saturating_sub(1);
            if let Some(open) = written {
                if open.detach() == 0 && !entry.orphan {
                    self.sealer.queue(ino, open.clone());
                }
                stale_elsewhere = entry.handles > 0;
            }
            if entry.handles == 0 && (entry.writing.is_none() || entry.orphan) {
                free_orphan = entry.orphan;
                if let Some(open) = open_table.remove(&ino).and_then(|e| e.writing) {
                    open.remove_temp();
                }
            }
        }
        if stale_elsewhere {
            // Written and closed: other handles must not read old pages.
            self.forget_content(ino);
        }
        if free_orphan {
            self.free_orphan(ino)?;
        }
        Ok(())
    }

    /// Deletes an inode whose last name went while it was open.
    fn free_orphan(&self, ino: Ino) -> TreeResult<()> {
        let mut txn = self.meta.begin()?;
        if let Some(row) = txn.inode(ino)? {
            if row.nlink == 0 && !self.open.lock().contains_key(&ino) {
                txn.delete_inode(&row)?;
            }
        }
        Ok(txn.commit()?)
    }

    /// Makes every recorded change durable (fsyncdir).
    pub fn sync(&self) -> TreeResult<()> {
        Ok(self.meta.sync()?)
    }

    /// Seals a batch of closed files in one transaction. Returns the ones
    /// to try again (the commit failed); files written again meanwhile are
    /// dropped from the batch, as their next close queues them anew.
    pub(super) fn seal_batch(&self, batch: Vec<Job>) -> Vec<Job> {
        let mut hashed = Vec::with_capacity(batch.len());
        for job in batch {
            match Hashed::of(job.ino, job.open.clone()) {
                Ok(h) => hashed.push(h),
                // Deleted before its seal: nothing to do.
                Err(_) if !self.still_writing(job.ino, &job.open) => {}
                Err(err) => {
                    tracing::error!(ino = job.ino, %err, "cannot hash a closed file; its bytes stay in its temp file");
                }
            }
        }
        let result = self.commit_seals(&hashed);
        match result {
            Ok(()) => Vec::new(),
            Err(err) => {
                tracing::error!(%err, files = hashed.len(), "cannot record closed files; retrying (their bytes are safe in temp files)");
                hashed
                    .into_iter()
                    .map(|h| Job {
                        ino: h.ino,
                        open: h.open,
                    })
                    .collect()
            }
        }
    }

    /// Whether `open` is still the content being written of a named file.
    fn still_writing(&self, ino: Ino, open: &Arc<OpenFile>) -> bool {
        self.open.lock().get(&ino).is_some_and(|entry| {
            !entry.orphan && entry.writing.as_ref().is_some_and(|w| Arc::ptr_eq(w, open))
        })
    }

    fn commit_seals(&self, hashed: &[Hashed]) -> TreeResult<()> {
        let mut txn = self.meta.begin()?;
        let mut open_table = self.open.lock();
        let mut sealed = Vec::new();
        let mut durable = false;
        for h in hashed {
            let Some(entry) = open_table.get(&h.ino) else {
                continue;
            };
            let current = entry
                .writing
                .as_ref()
                .is_some_and(|w| Arc::ptr_eq(w, &h.open));
            if !current || entry.orphan || h.open.handles() > 0 {
                continue;
            }
            if h.open.generation() != h.generation {
                self.sealer.queue(h.ino, h.open.clone());
                continue;
            }
            // Times now, not at hashing (a utime() may have come in between),
            // and before the link, which moves the temp file's ctime.
            let times = h.open.stat()?;
            if h.open.link_in(&self.store, &h.info)? {
                txn.linked_blob(&h.info.sha256);
            }
            txn.seal(h.ino, &h.info, times.mtime, times.ctime)?;
            durable |= h.open.was_synced();
            sealed.push(h);
        }
        txn.commit()?;
        let mut apps = Vec::new();
        let mut read_elsewhere = Vec::new();
        for h in &sealed {
            if let Some(entry) = open_table.get_mut(&h.ino) {
                entry.writing = None;
                entry.sealed = Some(h.info.sha256.clone());
                apps.push(entry.app);
                if entry.handles == 0 {
                    open_table.remove(&h.ino);
                } else {
                    read_elsewhere.push(h.ino);
                }
            }
        }
        drop(open_table);
        // Readers still open may hold pages of the old content.
        for ino in read_elsewhere {
            self.forget_content(ino);
        }
        if durable {
            self.meta.sync()?;
        }
        for h in &sealed {
            h.open.remove_temp();
        }
        apps.sort();
        apps.dedup();
        for app in apps {
            self.notify(app);
        }
        Ok(())
    }

    pub fn opendir(&self, ino: Ino) -> TreeResult<u64> {
        let dot = |ino, name: &str| DirEntry {
            ino,
            kind: FileKind::Dir,
            name: name.into(),
        };
        let entries = match StatusInode::decode(ino) {
            Some(StatusInode::Dir { root }) => {
                let mut entries = vec![dot(ino, "."), dot(root, "..")];
                entries.extend(StatusFile::ALL.iter().map(|file| DirEntry {
                    ino: StatusInode::file_ino(root, *file),
                    kind: FileKind::File,
                    name: file.name().into(),
                }));
                entries
            }
            Some(StatusInode::File { .. }) => return Err(TreeError::NotDir),
            None => {
                let txn = self.meta.read()?;
                let row = txn.inode(ino)?.ok_or(TreeError::NotFound)?;
                if row.kind != InodeKind::Dir {
                    return Err(TreeError::NotDir);
                }
                // `.pushfs/` is reachable by name but not listed, so `rm -r`,
                // `cp -r` and `rsync --delete` of an app never trip over it.
                let mut entries = vec![dot(ino, "."), dot(row.parent, "..")];
                entries.extend(
                    txn.children(ino)?
                        .into_iter()
                        .map(|(name, child)| DirEntry {
                            ino: child.ino,
                            kind: match child.kind {
                                InodeKind::Dir => FileKind::Dir,
                                InodeKind::File => FileKind::File,
                                InodeKind::Symlink => FileKind::Symlink,
                            },
                            name: name.into(),
                        }),
                );
                entries
            }
        };
        Ok(self.handles.insert(Handle::Dir { entries }))
    }

    /// Entries from `offset` on; an entry's offset for the next call is its index + 1.
    pub fn readdir(&self, fh: u64, offset: u64) -> TreeResult<Vec<DirEntry>> {
        match &*self.handles.get(fh)? {
            Handle::Dir { entries } => Ok(entries.iter().skip(offset as usize).cloned().collect()),
            _ => Err(TreeError::NotDir),
        }
    }

    pub fn releasedir(&self, fh: u64) {
        self.handles.remove(fh);
    }

    pub fn statfs(&self) -> TreeResult<StatFs> {
        let path = std::ffi::CString::new(self.state_dir.as_os_str().as_encoded_bytes())
            .map_err(|_| TreeError::InvalidArgument)?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid C string and `st` a valid out pointer.
        if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(StatFs {
            blocks: st.f_blocks,
            bfree: st.f_bfree,
            bavail: st.f_bavail,
            files: st.f_files,
            ffree: st.f_ffree,
            bsize: st.f_bsize as u32,
            namelen: 255,
            frsize: st.f_frsize as u32,
        })
    }
}

/// The `fallocate(2)` modes a file being written takes: allocate (growing
/// the file), allocate beyond its end, and punch a hole (the kernel insists
/// on `KEEP_SIZE` with it).
const FALLOCATE_MODES: [i32; 3] = [
    0,
    libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
];

impl Tree {
    /// Preallocates or punches a hole in a file open for writing, in its
    /// temp file. Its size and times are the temp file's, as after a write;
    /// the app is marked changed like after a truncate.
    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> TreeResult<()> {
        let handle = self.handles.get(fh)?;
        let (app, open) = match &*handle {
            Handle::File {
                app,
                open: Some(open),
                writable: true,
                ..
            } => (*app, open),
            Handle::Ctl { .. } | Handle::Status { .. } | Handle::Wait { .. } => {
                return Err(TreeError::NotSupportedOnStatusFiles)
            }
            _ => return Err(TreeError::BadHandle),
        };
        if !FALLOCATE_MODES.contains(&mode) {
            return Err(TreeError::FallocateModeUnsupported);
        }
        open.allocate(mode, offset, len)?;
        if mode != libc::FALLOC_FL_KEEP_SIZE {
            self.record_content_change(app)?;
        }
        Ok(())
    }

    /// Marks the app changed in this run (once) and restarts its settle
    /// timer, as a truncate does.
    fn record_content_change(&self, app: Option<Ino>) -> TreeResult<()> {
        if app.is_some_and(|root| !self.marked.lock().contains(&root)) {
            let mut txn = self.meta.begin()?;
            self.mark(&mut txn, app)?;
            txn.commit()?;
        }
        self.notify(app);
        Ok(())
    }
}
