//! Opening, reading, writing and releasing files and directories.
//!
//! Bytes move between the kernel and temp files or blobs without the tree
//! lock; the lock is taken only to look up or swap a file's content.

use std::ffi::OsString;
use std::fs::File;
use std::sync::Arc;

use super::content::{read_exact_or_eof, OpenFile};
use super::handles::{Handle, Opened};
use super::node::{Content, NodeKind};
use super::status_files::StatusFile;
use super::{CtlCommand, FileKind, Ino, Tree, TreeError, TreeResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: FileKind,
    pub name: OsString,
}

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

/// The reply to a read: now, or later (`.pushfs/wait`).
pub type ReadDone = Box<dyn FnOnce(TreeResult<Vec<u8>>) + Send>;

impl Tree {
    pub fn open(&self, ino: Ino, flags: i32) -> TreeResult<Opened> {
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY;
        let truncate = writing && flags & libc::O_TRUNC != 0;
        let handle = {
            let state = self.state.lock();
            match &state.node(ino)?.kind {
                NodeKind::Dir { .. } | NodeKind::StatusDir { .. } => return Err(TreeError::IsDir),
                NodeKind::Symlink { .. } => return Err(TreeError::InvalidArgument),
                NodeKind::StatusFile { app, file } => {
                    let handle = match file {
                        StatusFile::Ctl => Handle::Ctl { app: app.clone() },
                        _ if writing => return Err(TreeError::StatusFileReadOnly),
                        StatusFile::Wait => Handle::Wait {
                            app: app.clone(),
                            result: Default::default(),
                        },
                        other => Handle::Status {
                            bytes: self.hooks.status_file(app, *other),
                        },
                    };
                    drop(state);
                    let fh = self.handles.insert(handle);
                    return Ok(Opened {
                        fh,
                        direct_io: true,
                        backing: None,
                    });
                }
                NodeKind::File { content } => match (content, writing) {
                    (Content::Open(open), _) => {
                        open.attach();
                        Some(Handle::File {
                            open: Some(open.clone()),
                            blob: None,
                            writable: writing,
                        })
                    }
                    (Content::Blob(blob), false) => Some(Handle::File {
                        open: None,
                        blob: Some(File::open(self.store.blob_path(&blob.sha256))?),
                        writable: false,
                    }),
                    (Content::Blob(_), true) => None,
                },
            }
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
        let mut state = self.state.lock();
        let node = state.node_mut(ino)?;
        node.open_handles += 1;
        if truncate {
            node.meta.touch_content();
            self.changed(&state, ino);
        }
        drop(state);
        let backing = match &handle {
            Handle::File { open, .. } => open.clone(),
            _ => None,
        };
        Ok(Opened {
            fh: self.handles.insert(handle),
            direct_io: false,
            backing,
        })
    }

    /// A sealed file opened for writing gets a temp copy of its blob (or an
    /// empty one on O_TRUNC). The copy is made outside the lock; if another
    /// writer got there first, its temp file is shared instead.
    fn open_sealed_for_writing(&self, ino: Ino, truncate: bool) -> TreeResult<Handle> {
        let blob = {
            let state = self.state.lock();
            match &state.node(ino)?.kind {
                NodeKind::File {
                    content: Content::Blob(blob),
                } => blob.clone(),
                _ => return Err(TreeError::NotFound),
            }
        };
        let (temp, file) = if truncate || blob.size == 0 {
            self.store.new_temp()?
        } else {
            self.store.temp_copy_of(&blob.sha256)?
        };
        let fresh = Arc::new(OpenFile::new(temp, file));
        let mut state = self.state.lock();
        let NodeKind::File { content } = &mut state.node_mut(ino)?.kind else {
            return Err(TreeError::NotFound);
        };
        let open = match content {
            Content::Open(existing) => {
                if truncate {
                    existing.truncate(0)?;
                }
                existing.clone()
            }
            Content::Blob(_) => {
                *content = Content::Open(fresh.clone());
                fresh
            }
        };
        open.attach();
        Ok(Handle::File {
            open: Some(open),
            blob: None,
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
                blob: Some(blob), ..
            } => done(read_exact_or_eof(blob, offset, size).map_err(Into::into)),
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

    pub fn write(&self, ino: Ino, fh: u64, offset: u64, data: &[u8]) -> TreeResult<u32> {
        let handle = self.handles.get(fh)?;
        match &*handle {
            Handle::File {
                open: Some(open),
                writable: true,
                ..
            } => {
                open.write_at(offset, data)?;
                let mut state = self.state.lock();
                if let Some(node) = state.nodes.get_mut(&ino) {
                    node.meta.touch_content();
                }
                self.changed(&state, ino);
                Ok(data.len() as u32)
            }
            Handle::Ctl { app } => {
                let command = CtlCommand::parse(data).ok_or(TreeError::UnknownCtlCommand)?;
                self.hooks.command(app, command);
                Ok(data.len() as u32)
            }
            Handle::Status { .. } | Handle::Wait { .. } => Err(TreeError::StatusFileReadOnly),
            _ => Err(TreeError::BadHandle),
        }
    }

    pub fn fsync(&self, fh: u64) -> TreeResult<()> {
        if let Handle::File {
            open: Some(open), ..
        } = &*self.handles.get(fh)?
        {
            open.sync()?;
        }
        Ok(())
    }

    pub fn release(&self, ino: Ino, fh: u64) -> TreeResult<()> {
        let Some(handle) = self.handles.remove(fh) else {
            return Err(TreeError::BadHandle);
        };
        {
            let mut state = self.state.lock();
            if let Some(node) = state.nodes.get_mut(&ino) {
                node.open_handles = node.open_handles.saturating_sub(1);
            }
        }
        if let Handle::File {
            open: Some(open), ..
        } = &*handle
        {
            if open.detach() == 0 {
                self.seal(ino, open)?;
            }
        }
        self.state.lock().reap(ino);
        Ok(())
    }

    /// Hashes a file whose last handle closed and makes it an immutable
    /// blob, unless a writer came back or it changed while hashing.
    fn seal(&self, ino: Ino, open: &Arc<OpenFile>) -> TreeResult<()> {
        loop {
            let generation = open.generation();
            let info = open.hash()?;
            let mut state = self.state.lock();
            let Some(node) = state.nodes.get_mut(&ino) else {
                return Ok(());
            };
            let NodeKind::File { content } = &mut node.kind else {
                return Ok(());
            };
            let current = matches!(content, Content::Open(c) if Arc::ptr_eq(c, open));
            if !current || open.handles() > 0 {
                return Ok(());
            }
            if open.generation() != generation {
                continue;
            }
            // The temp file's mtime is the file's: writes may have bypassed us.
            let (_, modified) = open.stat()?;
            open.commit(&self.store, &info)?;
            *content = Content::Blob(info);
            node.meta.mtime = modified;
            self.changed(&state, ino);
            return Ok(());
        }
    }

    pub fn opendir(&self, ino: Ino) -> TreeResult<u64> {
        let state = self.state.lock();
        let node = state.node(ino)?;
        let mut entries = vec![
            DirEntry {
                ino,
                kind: FileKind::Dir,
                name: ".".into(),
            },
            DirEntry {
                ino: node.parent,
                kind: FileKind::Dir,
                name: "..".into(),
            },
        ];
        match &node.kind {
            // `.pushfs/` is reachable by name but not listed, so `rm -r`,
            // `cp -r` and `rsync --delete` of an app never trip over it.
            NodeKind::Dir { children, .. } => {
                for (name, child) in children {
                    entries.push(DirEntry {
                        ino: *child,
                        kind: state.nodes[child].file_kind(),
                        name: name.clone(),
                    });
                }
            }
            NodeKind::StatusDir { .. } => {
                for (i, file) in StatusFile::ALL.iter().enumerate() {
                    entries.push(DirEntry {
                        ino: ino + 1 + i as Ino,
                        kind: FileKind::File,
                        name: file.name().into(),
                    });
                }
            }
            _ => return Err(TreeError::NotDir),
        }
        drop(state);
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
