//! The FUSE adapter: the only code that knows fuser. Each handler maps a
//! kernel request to a call on the [`Tree`] and its result or error back.

mod errno;
pub mod mount;
mod passthrough;
mod tally;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::tree::{Attr, Creator, FileKind, SetAttr, Tree, TreeError, XattrReply};

pub use errno::errno;
use passthrough::{IoMode, Passthrough};
use tally::Tally;

/// `cp` and friends size their writes by `st_blksize`; 1 MiB matches max_write.
const BLOCK_SIZE: u32 = 1 << 20;
const MAX_WRITE: u32 = 1 << 20;
const TTL: Duration = Duration::from_secs(1);

pub struct PushFs {
    tree: Arc<Tree>,
    /// Asked for by the configuration; used if the kernel offers it.
    want_passthrough: bool,
    /// Asked for by the configuration; the session uses it if the kernel offers it.
    want_io_uring: bool,
    passthrough: Passthrough,
    requests: Tally,
}

impl PushFs {
    pub fn new(tree: Arc<Tree>, want_passthrough: bool, want_io_uring: bool) -> PushFs {
        PushFs {
            tree,
            want_passthrough,
            want_io_uring,
            passthrough: Passthrough::new(),
            requests: Tally::new(),
        }
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks,
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.ctime,
        kind: match attr.kind {
            FileKind::Dir => FileType::Directory,
            FileKind::File => FileType::RegularFile,
            FileKind::Symlink => FileType::Symlink,
        },
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// The attributes of a negative entry: only the inode number, 0, counts.
fn absent() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

fn ttl(attr: &Attr) -> Duration {
    if attr.volatile {
        Duration::ZERO
    } else {
        TTL
    }
}

fn fail(op: &str, err: TreeError) -> Errno {
    if err.is_expected() {
        tracing::trace!(op, %err);
    } else {
        tracing::debug!(op, %err, "request failed");
    }
    errno(&err)
}

/// A span per kernel request, so every event logged while serving it says
/// which request and inode it was for.
/// It also notes that the mount is in use: a stop waits for quiet.
fn request_span(
    fs: &PushFs,
    req: &Request,
    op: &'static str,
    ino: u64,
) -> tracing::span::EnteredSpan {
    fs.tree.note_request();
    fs.requests.count(op);
    tracing::debug_span!("fuse", op, req = req.unique().0, ino).entered()
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn creator(req: &Request, mode: u32, umask: u32) -> Creator {
    Creator {
        uid: req.uid(),
        gid: req.gid(),
        mode,
        umask,
    }
}

fn reply_entry(reply: ReplyEntry, op: &str, result: Result<Attr, TreeError>) {
    match result {
        Ok(attr) => reply.entry(&ttl(&attr), &file_attr(&attr), Generation(0)),
        Err(err) => reply.error(fail(op, err)),
    }
}

fn reply_xattr(reply: ReplyXattr, op: &str, result: Result<XattrReply, TreeError>) {
    match result {
        Ok(XattrReply::Size(size)) => reply.size(size),
        Ok(XattrReply::Data(bytes)) => reply.data(&bytes),
        Err(err) => reply.error(fail(op, err)),
    }
}

fn reply_empty(reply: ReplyEmpty, op: &str, result: Result<(), TreeError>) {
    match result {
        Ok(()) => reply.ok(),
        Err(err) => reply.error(fail(op, err)),
    }
}

impl Filesystem for PushFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_WRITE);
        let _ = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC);
        if self.want_io_uring {
            // Refused when the kernel does not offer it; mount.rs says why.
            let _ = config.add_capabilities(InitFlags::FUSE_OVER_IO_URING);
        }
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let offered = config.capabilities().contains(InitFlags::FUSE_PASSTHROUGH);
        if self.want_passthrough && root && offered {
            // Depth 2: the state directory may itself sit on a stacked fs (overlayfs).
            if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(2).is_ok()
            {
                self.passthrough.enable();
                tracing::debug!("FUSE passthrough enabled for files being written");
            }
        }
        if self.want_passthrough && !self.passthrough.is_enabled() {
            let why = if root {
                "this kernel does not offer it (Linux 6.9+)"
            } else {
                "it needs root"
            };
            tracing::warn!(
                "FUSE passthrough is off ({why}): writes go through pushfs, slower for big files"
            );
        }
        Ok(())
    }

    fn destroy(&mut self) {
        tracing::info!(requests = %self.requests.summary(), "kernel requests served");
        self.tree.drain_seals();
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _span = request_span(self, req, "lookup", parent.0);
        match self.tree.lookup(parent.0, name) {
            // Inode 0 is the kernel's negative entry: it remembers the
            // absence for the TTL, so the open(O_CREAT) that follows a
            // `stat` (cp, rsync) or an `open(O_EXCL)` (tar) goes straight
            // to CREATE instead of asking again.
            Err(TreeError::NotFound) if self.tree.absence_is_cacheable(parent.0, name) => {
                reply.entry(&TTL, &absent(), Generation(0))
            }
            result => reply_entry(reply, "lookup", result),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.requests.count("forget");
        self.tree.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _span = request_span(self, req, "getattr", ino.0);
        match self.tree.getattr(ino.0) {
            Ok(attr) => reply.attr(&ttl(&attr), &file_attr(&attr)),
            Err(err) => reply.error(fail("getattr", err)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _span = request_span(self, req, "setattr", ino.0);
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
            fh: fh.map(|f| f.0),
        };
        match self.tree.setattr(ino.0, set) {
            Ok(attr) => reply.attr(&ttl(&attr), &file_attr(&attr)),
            Err(err) => reply.error(fail("setattr", err)),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let _span = request_span(self, req, "readlink", ino.0);
        match self.tree.readlink(ino.0) {
            Ok(target) => reply.data(target.as_encoded_bytes()),
            Err(err) => reply.error(fail("readlink", err)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let _span = request_span(self, req, "mknod", parent.0);
        let result = self.tree.mknod(parent.0, name, creator(req, mode, umask));
        reply_entry(reply, "mknod", result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _span = request_span(self, req, "mkdir", parent.0);
        let result = self.tree.mkdir(parent.0, name, creator(req, mode, umask));
        reply_entry(reply, "mkdir", result);
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _span = request_span(self, req, "unlink", parent.0);
        reply_empty(reply, "unlink", self.tree.unlink(parent.0, name));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _span = request_span(self, req, "rmdir", parent.0);
        reply_empty(reply, "rmdir", self.tree.rmdir(parent.0, name));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _span = request_span(self, req, "symlink", parent.0);
        let result = self
            .tree
            .symlink(parent.0, name, target.as_os_str(), req.uid(), req.gid());
        reply_entry(reply, "symlink", result);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "rename", parent.0);
        let result = self
            .tree
            .rename(parent.0, name, newparent.0, newname, flags.bits());
        reply_empty(reply, "rename", result);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _span = request_span(self, req, "link", ino.0);
        reply_entry(reply, "link", self.tree.link(ino.0, newparent.0, newname));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _span = request_span(self, req, "open", ino.0);
        match self.tree.open(ino.0, flags.0) {
            Ok(opened) => {
                let fh = FileHandle(opened.fh);
                let mode = if opened.direct_io {
                    IoMode::DirectIo
                } else {
                    self.passthrough
                        .choose(ino.0, opened.fh, opened.backing.as_ref(), |file| {
                            reply.open_backing(file.backing_fd())
                        })
                };
                match mode {
                    IoMode::Passthrough(id) => {
                        reply.opened_passthrough(fh, FopenFlags::empty(), &id)
                    }
                    IoMode::DirectIo => reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO),
                    IoMode::Cached => reply.opened(fh, FopenFlags::empty()),
                }
            }
            Err(err) => reply.error(fail("open", err)),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _span = request_span(self, req, "read", ino.0);
        self.tree.read(
            fh.0,
            offset,
            size,
            Box::new(move |result| match result {
                Ok(bytes) => reply.data(&bytes),
                Err(err) => reply.error(fail("read", err)),
            }),
        );
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _span = request_span(self, req, "write", ino.0);
        match self.tree.write(ino.0, fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(err) => reply.error(fail("write", err)),
        }
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "flush", ino.0);
        // Nothing to do at close: files are recorded at create and sealed
        // after release. ENOSYS tells the kernel never to ask again, which
        // saves a round trip on every close.
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "release", ino.0);
        self.passthrough.released(fh.0);
        reply_empty(reply, "release", self.tree.release(ino.0, fh.0));
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "fsync", ino.0);
        reply_empty(reply, "fsync", self.tree.fsync(fh.0));
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _span = request_span(self, req, "opendir", ino.0);
        match self.tree.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(err) => reply.error(fail("opendir", err)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _span = request_span(self, req, "readdir", ino.0);
        match self.tree.readdir(fh.0, offset) {
            Ok(entries) => {
                for (i, entry) in entries.iter().enumerate() {
                    let kind = match entry.kind {
                        FileKind::Dir => FileType::Directory,
                        FileKind::File => FileType::RegularFile,
                        FileKind::Symlink => FileType::Symlink,
                    };
                    if reply.add(INodeNo(entry.ino), offset + i as u64 + 1, kind, &entry.name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(err) => reply.error(fail("readdir", err)),
        }
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "releasedir", ino.0);
        self.tree.releasedir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "fsyncdir", ino.0);
        reply_empty(reply, "fsyncdir", self.tree.sync());
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        let _span = request_span(self, req, "statfs", ino.0);
        match self.tree.statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(err) => reply.error(fail("statfs", err)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let _span = request_span(self, req, "create", parent.0);
        match self.tree.create(parent.0, name, creator(req, mode, umask)) {
            Ok((attr, opened)) => {
                let (ttl, file_attr) = (ttl(&attr), file_attr(&attr));
                let fh = FileHandle(opened.fh);
                let mode =
                    self.passthrough
                        .choose(attr.ino, opened.fh, opened.backing.as_ref(), |file| {
                            reply.open_backing(file.backing_fd())
                        });
                match mode {
                    IoMode::Passthrough(id) => reply.created_passthrough(
                        &ttl,
                        &file_attr,
                        Generation(0),
                        fh,
                        FopenFlags::empty(),
                        &id,
                    ),
                    IoMode::DirectIo => reply.created(
                        &ttl,
                        &file_attr,
                        Generation(0),
                        fh,
                        FopenFlags::FOPEN_DIRECT_IO,
                    ),
                    IoMode::Cached => {
                        reply.created(&ttl, &file_attr, Generation(0), fh, FopenFlags::empty())
                    }
                }
            }
            Err(err) => reply.error(fail("create", err)),
        }
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "setxattr", ino.0);
        let result = self.tree.setxattr(ino.0, name, value, flags, req.uid());
        reply_empty(reply, "setxattr", result);
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _span = request_span(self, req, "getxattr", ino.0);
        let result = self.tree.getxattr(ino.0, name, size, req.uid());
        reply_xattr(reply, "getxattr", result);
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _span = request_span(self, req, "listxattr", ino.0);
        reply_xattr(
            reply,
            "listxattr",
            self.tree.listxattr(ino.0, size, req.uid()),
        );
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _span = request_span(self, req, "removexattr", ino.0);
        let result = self.tree.removexattr(ino.0, name, req.uid());
        reply_empty(reply, "removexattr", result);
    }

    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let _span = request_span(self, req, "lseek", ino.0);
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(Errno::from_i32(libc::ENXIO));
        };
        match self.tree.seek_data(fh.0, offset, whence) {
            Ok(at) => reply.offset(at as i64),
            Err(err) => reply.error(fail("lseek", err)),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _span = request_span(self, req, "fallocate", ino.0);
        let result = self.tree.fallocate(fh.0, offset, length, mode);
        reply_empty(reply, "fallocate", result);
    }
}
