//! FUSE over io_uring (pushfs patch, see PUSHFS-PATCH.md).
//!
//! The kernel hands requests to userspace through `IORING_OP_URING_CMD`
//! entries instead of `read(2)`/`write(2)` on /dev/fuse. Each ring entry owns
//! a header buffer (`fuse_uring_req_header`) and a payload buffer; the kernel
//! fills both with a request and completes the command, and userspace answers
//! by writing the reply into the same buffers and submitting
//! `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`, which also parks the entry for the
//! next request.
//!
//! One ring holds entries for every kernel queue (one per possible CPU) and is
//! served by a few ring threads, leader/follower style: one thread at a time
//! waits for a completion, takes it, lets the next thread wait, and handles
//! the request inline. A handler that blocks (an inode invalidation waiting
//! for a page a pending READ holds) therefore never holds a request hostage,
//! as with the /dev/fuse reader threads. Only ring threads enter the ring:
//! io_uring ties a command to the task that submitted it and cancels it when
//! that task exits, so a reply sent from any other thread only queues its SQE
//! and wakes the waiting ring thread through an eventfd.
//!
//! Requests are rebuilt into the contiguous `[fuse_in_header][op struct][payload]`
//! layout that /dev/fuse delivers and go through fuser's normal parser and
//! dispatch, so every opcode behaves as it does over /dev/fuse.

use std::fmt;
use std::io;
use std::io::IoSlice;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::thread::JoinHandle;

use io_uring::IoUring;
use io_uring::cqueue;
use io_uring::opcode;
use io_uring::squeue;
use io_uring::types;
use log::error;
use log::warn;
use parking_lot::Mutex;

use crate::Filesystem;
use crate::channel::Channel;
use crate::ll::Operation;
use crate::ll::fuse_abi as abi;
use crate::reply::ReplyEmpty;
use crate::request::RequestWithSender;
use crate::session::SessionEventLoop;

/// `FUSE_URING_IN_OUT_HEADER_SZ` and `FUSE_URING_OP_IN_OUT_SZ` of fuse_kernel.h.
const IN_OUT_SZ: usize = 128;
const OP_IN_SZ: usize = 128;
/// Offsets inside `struct fuse_uring_req_header`.
const OP_IN_OFF: usize = IN_OUT_SZ;
const ENT_IN_OUT_OFF: usize = IN_OUT_SZ + OP_IN_SZ;
/// `fuse_uring_ent_in_out`: flags u64, commit_id u64, payload_sz u32, padding u32, reserved u64.
const COMMIT_ID_OFF: usize = ENT_IN_OUT_OFF + 8;
const PAYLOAD_SZ_OFF: usize = ENT_IN_OUT_OFF + 16;
const REQ_HEADER_SZ: usize = ENT_IN_OUT_OFF + 32;

/// `enum fuse_uring_cmd`.
const CMD_REGISTER: u32 = 1;
const CMD_COMMIT_AND_FETCH: u32 = 2;

/// The kernel never sizes a ring payload below `FUSE_MIN_READ_BUFFER`.
const MIN_PAYLOAD: usize = 8192;
/// Without FUSE_MAX_PAGES the kernel keeps its default of 32 pages per request.
const DEFAULT_MAX_PAGES: usize = 32;

/// Entries per kernel queue. A reply the filesystem parks (answered later
/// from another thread) holds its entry until then, so a queue needs room for
/// a few of those besides the ones in flight.
const ENTRIES_PER_QUEUE: usize = 16;

thread_local! {
    /// Set on ring threads: they may enter the ring themselves.
    static ON_RING_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// user_data of the eventfd poll that wakes a ring thread.
const WAKE_TOKEN: u64 = u64::MAX;

/// Which transport carries requests after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Reads and writes on /dev/fuse (the filesystem did not ask for io_uring,
    /// or the kernel did not offer it).
    DevFuse,
    /// FUSE over io_uring: `threads` ring threads serve `queues` kernel queues.
    IoUring {
        /// Kernel queues (one per possible CPU).
        queues: usize,
        /// Ring threads, each with its own ring and entries on every queue.
        threads: usize,
    },
    /// The kernel offered io_uring but setting it up failed; requests stay on /dev/fuse.
    IoUringFailed(String),
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::DevFuse => write!(f, "/dev/fuse"),
            Transport::IoUring { queues, threads } => {
                write!(f, "io_uring ({queues} queues, {threads} ring threads)")
            }
            Transport::IoUringFailed(why) => write!(f, "/dev/fuse (io_uring failed: {why})"),
        }
    }
}

/// The payload buffer size the kernel will demand (`ring->max_payload_sz`).
pub(crate) fn payload_size(max_write: u32, max_pages: u16) -> usize {
    let page = page_size::get();
    let pages = usize::from(max_pages).max(DEFAULT_MAX_PAGES);
    let size = MIN_PAYLOAD.max(max_write as usize).max(pages * page);
    size.div_ceil(page) * page
}

/// Kernel queues: `num_possible_cpus()`, from the possible-CPU mask.
fn possible_cpus() -> io::Result<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let mut count = 0;
    for range in text.trim().split(',').filter(|r| !r.is_empty()) {
        let parse = |s: &str| {
            s.parse::<usize>()
                .map_err(|_| io::Error::other(format!("bad possible-CPU mask {text:?}")))
        };
        count += match range.split_once('-') {
            Some((lo, hi)) => parse(hi)? - parse(lo)? + 1,
            None => {
                parse(range)?;
                1
            }
        };
    }
    if count == 0 {
        return Err(io::Error::other("empty possible-CPU mask"));
    }
    Ok(count)
}

/// Anonymous memory for one entry: one page of headers, then the payload.
/// Pages are only backed once touched, so a large payload costs address space
/// until a request that big arrives.
struct EntryMem {
    base: *mut u8,
    len: usize,
    payload_len: usize,
    /// The iovecs handed to the kernel at registration.
    iov: Box<[libc::iovec; 2]>,
}

impl EntryMem {
    fn new(payload_len: usize) -> io::Result<EntryMem> {
        let page = page_size::get();
        let len = page + payload_len;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base.cast::<u8>();
        // SAFETY: both pointers lie inside the mapping just made.
        let iov = Box::new([
            libc::iovec {
                iov_base: base.cast(),
                iov_len: REQ_HEADER_SZ,
            },
            libc::iovec {
                iov_base: unsafe { base.add(page) }.cast(),
                iov_len: payload_len,
            },
        ]);
        Ok(EntryMem {
            base,
            len,
            payload_len,
            iov,
        })
    }

    fn header(&self) -> *mut u8 {
        self.base
    }

    fn payload(&self) -> *mut u8 {
        self.iov[1].iov_base.cast()
    }
}

impl Drop for EntryMem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// One registered entry: its memory and the kernel queue it serves.
struct Entry {
    mem: EntryMem,
    qid: u16,
}

/// One ring and its entries, shared by its thread and the replies in flight.
pub(crate) struct Ring {
    // Field order matters: the ring (and with it every command the kernel
    // still holds) goes before the buffers those commands point into.
    uring: IoUring<squeue::Entry128, cqueue::Entry>,
    entries: Vec<Entry>,
    /// Serialises pushes onto the submission queue; never held across a wait.
    sq: Mutex<()>,
    /// Held by the one ring thread that waits for and takes completions.
    cq: Mutex<()>,
    wake: OwnedEventFd,
    stop: AtomicBool,
}

// SAFETY: the raw pointers in `entries` point into mappings owned by the Ring.
// An entry's buffers are touched either by the kernel (while it holds the
// entry) or by the one request that owns it between its completion and its
// commit, never by two at once.
unsafe impl Send for Ring {}
// SAFETY: see Send; shared access to the ring itself goes through `sq`.
unsafe impl Sync for Ring {}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("entries", &self.entries.len())
            .finish()
    }
}

struct OwnedEventFd(RawFd);

impl OwnedEventFd {
    fn new() -> io::Result<Self> {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedEventFd(fd))
    }

    fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64.
        unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }

    fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64; non-blocking.
        unsafe { libc::read(self.0, (&mut value as *mut u64).cast(), 8) };
    }
}

impl Drop for OwnedEventFd {
    fn drop(&mut self) {
        // SAFETY: our fd, closed once.
        unsafe { libc::close(self.0) };
    }
}

fn cmd_sqe(cmd_op: u32, qid: u16, commit_id: u64, entry: usize) -> squeue::Entry128 {
    // struct fuse_uring_cmd_req: flags u64, commit_id u64, qid u16, padding.
    let mut cmd = [0u8; 80];
    cmd[8..16].copy_from_slice(&commit_id.to_ne_bytes());
    cmd[16..18].copy_from_slice(&qid.to_ne_bytes());
    opcode::UringCmd80::new(types::Fixed(0), cmd_op)
        .cmd(cmd)
        .build()
        .user_data(entry as u64)
}

fn register_sqe(entry: &Entry, index: usize) -> squeue::Entry128 {
    let sqe = cmd_sqe(CMD_REGISTER, entry.qid, 0, index);
    // The register command takes its two iovecs through addr/len; the
    // io-uring crate's UringCmd80 sets addr but not len, so len (offset 24 of
    // struct io_uring_sqe, which Entry128 lays out verbatim) is set here.
    // SAFETY: Entry128 is repr(C) and exactly 128 bytes.
    let mut raw: [u8; 128] = unsafe { std::mem::transmute(sqe) };
    raw[16..24].copy_from_slice(&(entry.mem.iov.as_ptr() as u64).to_ne_bytes());
    raw[24..28].copy_from_slice(&2u32.to_ne_bytes());
    // SAFETY: as above; every bit pattern of the fields changed is valid.
    unsafe { std::mem::transmute::<[u8; 128], squeue::Entry128>(raw) }
}

impl Ring {
    fn new(dev: RawFd, queues: usize, per_queue: usize, payload_len: usize) -> io::Result<Ring> {
        let count = queues * per_queue;
        let sq_size = (count + 2).next_power_of_two() as u32;
        let uring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
            .setup_cqsize(sq_size * 2)
            .build(sq_size)?;
        uring.submitter().register_files(&[dev])?;
        let mut entries = Vec::with_capacity(count);
        for qid in 0..queues {
            for _ in 0..per_queue {
                entries.push(Entry {
                    mem: EntryMem::new(payload_len)?,
                    qid: u16::try_from(qid).map_err(|_| io::Error::other("too many queues"))?,
                });
            }
        }
        Ok(Ring {
            uring,
            entries,
            sq: Mutex::new(()),
            cq: Mutex::new(()),
            wake: OwnedEventFd::new()?,
            stop: AtomicBool::new(false),
        })
    }

    /// Queues an SQE; the ring thread submits it on its next turn.
    fn push(&self, sqe: &squeue::Entry128) -> io::Result<()> {
        let _guard = self.sq.lock();
        // SAFETY: `sq` serialises every producer of this submission queue.
        let mut sq = unsafe { self.uring.submission_shared() };
        // SAFETY: the buffers an SQE names live as long as the Ring.
        unsafe { sq.push(sqe) }.map_err(|_| io::Error::other("io_uring submission queue full"))
    }

    /// Submits queued SQEs when called on a ring thread, else wakes the
    /// waiting ring thread to do so.
    fn kick(&self) {
        if ON_RING_THREAD.with(|on| on.get()) {
            if let Err(e) = self.uring.submit() {
                error!("io_uring submit failed: {e}");
            }
        } else {
            self.wake.signal();
        }
    }

    fn arm_wake(&self) -> io::Result<()> {
        let poll = opcode::PollAdd::new(types::Fd(self.wake.0), libc::POLLIN as u32)
            .build()
            .user_data(WAKE_TOKEN);
        self.push(&poll.into())
    }

    /// Registers every entry. Runs on the ring thread: the commands belong to it.
    fn register(&self) -> io::Result<()> {
        for (index, entry) in self.entries.iter().enumerate() {
            self.push(&register_sqe(entry, index))?;
        }
        self.arm_wake()?;
        self.uring.submit()?;
        // A refused REGISTER completes at once; a good one stays pending
        // until a request arrives.
        // SAFETY: only the ring thread reads the completion queue.
        let cq = unsafe { self.uring.completion_shared() };
        let mut failure = None;
        for cqe in cq {
            if cqe.result() < 0 && cqe.user_data() != WAKE_TOKEN {
                failure.get_or_insert(io::Error::from_raw_os_error(-cqe.result()));
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Serves requests until told to stop.
    fn serve(&self, dispatch: &dyn Dispatch, scratch: &mut Vec<u64>) {
        while let Some((index, result)) = self.next_completion() {
            match result {
                0 => self.handle(index, dispatch, scratch),
                // The connection is going away: the entry is done.
                e if e == -libc::ENOTCONN || e == -libc::ECANCELED => {}
                e => warn!(
                    "io_uring entry {index} failed: {}",
                    io::Error::from_raw_os_error(-e)
                ),
            }
        }
    }

    /// Waits for the next entry completion, as the one thread holding `cq`.
    /// `None` once the session stops the ring.
    fn next_completion(&self) -> Option<(usize, i32)> {
        let _leader = self.cq.lock();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            let next = {
                // SAFETY: only the holder of `cq` reads the completion queue.
                let mut cq = unsafe { self.uring.completion_shared() };
                cq.next().map(|c| (c.user_data(), c.result()))
            };
            match next {
                Some((WAKE_TOKEN, _)) => {
                    self.wake.drain();
                    if let Err(e) = self.arm_wake() {
                        error!("io_uring: cannot re-arm wake-up: {e}");
                    }
                }
                Some((user_data, result)) => return Some((user_data as usize, result)),
                None => {
                    // Also submits what other threads queued.
                    if let Err(e) = self.uring.submit_and_wait(1) {
                        if e.raw_os_error() != Some(libc::EINTR)
                            && e.raw_os_error() != Some(libc::EBUSY)
                        {
                            error!("io_uring wait failed: {e}");
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Rebuilds the request the kernel put into entry `index` and dispatches it.
    fn handle(&self, index: usize, dispatch: &dyn Dispatch, scratch: &mut Vec<u64>) {
        let mem = &self.entries[index].mem;
        // SAFETY: the kernel completed this entry, so it is ours until we
        // commit; the header page holds at least REQ_HEADER_SZ bytes.
        let header = unsafe { std::slice::from_raw_parts(mem.header(), REQ_HEADER_SZ) };
        let commit_id = u64::from_ne_bytes(header[COMMIT_ID_OFF..][..8].try_into().unwrap());
        let payload_sz =
            u32::from_ne_bytes(header[PAYLOAD_SZ_OFF..][..4].try_into().unwrap()) as usize;
        let in_header_sz = size_of::<abi::fuse_in_header>();
        let total = u32::from_ne_bytes(header[..4].try_into().unwrap()) as usize;
        let unique = u64::from_ne_bytes(header[8..16].try_into().unwrap());
        let reply = RingReply {
            ring: dispatch.ring(),
            entry: index,
            commit_id,
        };
        // in_header.len counts the op struct and the payload as over /dev/fuse;
        // the kernel put the op struct (its first argument) into op_in and
        // the rest into the payload buffer.
        let op_len = total.checked_sub(in_header_sz + payload_sz);
        let Some(op_len) = op_len.filter(|&n| n <= OP_IN_SZ && payload_sz <= mem.payload_len)
        else {
            error!("io_uring: malformed request (len {total}, payload {payload_sz})");
            reply.send_error(unique, libc::EIO);
            return;
        };
        // u64 words keep the copy aligned for fuse_in_header.
        scratch.clear();
        scratch.resize(total.div_ceil(8), 0);
        // SAFETY: `scratch` holds at least `total` bytes.
        let buf =
            unsafe { std::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), total) };
        buf[..in_header_sz].copy_from_slice(&header[..in_header_sz]);
        buf[in_header_sz..][..op_len].copy_from_slice(&header[OP_IN_OFF..][..op_len]);
        // SAFETY: payload_sz <= payload_len, checked above.
        let payload = unsafe { std::slice::from_raw_parts(mem.payload(), payload_sz) };
        buf[in_header_sz + op_len..].copy_from_slice(payload);
        // The request is copied out because a reply sent during dispatch
        // reuses the entry's buffers while the parsed request still borrows it.
        dispatch.dispatch(buf, reply);
    }
}

/// Where a ring request's reply goes: its entry, committed with its commit id.
#[derive(Clone)]
pub(crate) struct RingReply {
    ring: Arc<Ring>,
    entry: usize,
    commit_id: u64,
}

impl fmt::Debug for RingReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingReply")
            .field("entry", &self.entry)
            .field("commit_id", &self.commit_id)
            .finish()
    }
}

impl RingReply {
    /// Writes `[fuse_out_header, data...]` into the entry and commits it.
    pub(crate) fn send(&self, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        let out_sz = size_of::<abi::fuse_out_header>();
        let mem = &self.ring.entries[self.entry].mem;
        let mut out = [0u8; 16];
        let mut filled = 0;
        let mut payload_len = 0usize;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let fits = total.saturating_sub(out_sz) <= mem.payload_len;
        for buf in bufs {
            let mut bytes: &[u8] = buf;
            if filled < out_sz {
                let n = bytes.len().min(out_sz - filled);
                out[filled..filled + n].copy_from_slice(&bytes[..n]);
                filled += n;
                bytes = &bytes[n..];
            }
            if fits && !bytes.is_empty() {
                // SAFETY: the entry is ours until committed; `fits` bounds the copy.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        bytes.as_ptr(),
                        mem.payload().add(payload_len),
                        bytes.len(),
                    )
                };
                payload_len += bytes.len();
            }
        }
        if filled < out_sz {
            return Err(io::Error::other("reply shorter than fuse_out_header"));
        }
        if !fits {
            error!("io_uring: reply of {total} bytes exceeds the ring buffer");
            out[4..8].copy_from_slice(&(-libc::EIO).to_ne_bytes());
            payload_len = 0;
        }
        out[..4].copy_from_slice(&((out_sz + payload_len) as u32).to_ne_bytes());
        // SAFETY: the header page is ours until committed.
        unsafe {
            std::ptr::copy_nonoverlapping(out.as_ptr(), mem.header(), out_sz);
            std::ptr::copy_nonoverlapping(
                (payload_len as u32).to_ne_bytes().as_ptr(),
                mem.header().add(PAYLOAD_SZ_OFF),
                4,
            );
        }
        self.commit()
    }

    fn send_error(&self, unique: u64, errno: i32) {
        let header = abi::fuse_out_header {
            len: size_of::<abi::fuse_out_header>() as u32,
            error: -errno,
            unique,
        };
        let bytes = zerocopy::IntoBytes::as_bytes(&header);
        if let Err(e) = self.send(&[IoSlice::new(bytes)]) {
            error!("io_uring: cannot send error reply: {e}");
        }
    }

    fn commit(&self) -> io::Result<()> {
        let entry = &self.ring.entries[self.entry];
        self.ring.push(&cmd_sqe(
            CMD_COMMIT_AND_FETCH,
            entry.qid,
            self.commit_id,
            self.entry,
        ))?;
        self.ring.kick();
        Ok(())
    }
}

/// Runs a rebuilt request through fuser's dispatch with a ring reply.
pub(crate) trait Dispatch: Send + Sync {
    fn dispatch(&self, request: &[u8], reply: RingReply);
    fn ring(&self) -> Arc<Ring>;
}

struct RingDispatch<FS: Filesystem> {
    event_loop: SessionEventLoop<FS>,
    ring: Arc<Ring>,
}

impl<FS: Filesystem> Dispatch for RingDispatch<FS> {
    fn dispatch(&self, request: &[u8], reply: RingReply) {
        let unique = u64::from_ne_bytes(request[8..16].try_into().unwrap());
        let ch = self.event_loop.ch.sender();
        match RequestWithSender::with_ring(ch, reply.clone(), request) {
            Some(req) => {
                if let Ok(Operation::Destroy(_)) = req.request.operation() {
                    // Over /dev/fuse this ends a session thread; here the
                    // ring keeps serving until the session stops it.
                    req.reply::<ReplyEmpty>().ok();
                } else {
                    req.dispatch(&self.event_loop);
                }
            }
            None => reply.send_error(unique, libc::EIO),
        }
    }

    fn ring(&self) -> Arc<Ring> {
        self.ring.clone()
    }
}

/// Everything a session needs to hand a ring thread once the filesystem runs.
type Starter = Box<dyn FnOnce(Arc<Ring>) -> Box<dyn Dispatch> + Send>;

/// The ring of one session: built before the INIT reply (so a failure can
/// still keep io_uring out of it), registered right after it.
pub(crate) struct Rings {
    ring: Arc<Ring>,
    threads: usize,
    queues: usize,
    starts: Vec<mpsc::Sender<Starter>>,
    handles: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Rings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rings")
            .field("threads", &self.threads)
            .field("queues", &self.queues)
            .finish()
    }
}

impl Rings {
    /// Builds the ring with entries for every kernel queue. Nothing is sent
    /// to the kernel yet.
    pub(crate) fn create(ch: &Channel, threads: usize, payload_len: usize) -> io::Result<Rings> {
        let queues = possible_cpus()?;
        let dev = ch.as_fd().as_raw_fd();
        let ring = Arc::new(Ring::new(dev, queues, ENTRIES_PER_QUEUE, payload_len)?);
        Ok(Rings {
            ring,
            threads: threads.max(1),
            queues,
            starts: Vec::new(),
            handles: Vec::new(),
        })
    }

    /// After the INIT reply: starts the ring threads; the first registers the
    /// entries. They then wait for `start` to hand them the filesystem.
    /// Once every queue has an entry the kernel sends requests to the ring.
    pub(crate) fn register(&mut self) -> io::Result<()> {
        let (registered_tx, registered_rx) = mpsc::channel();
        for i in 0..self.threads {
            let (start_tx, start_rx) = mpsc::channel::<Starter>();
            let ring = self.ring.clone();
            let registered_tx = (i == 0).then(|| registered_tx.clone());
            let handle = thread::Builder::new()
                .name(format!("fuser-ring-{i}"))
                .spawn(move || {
                    ON_RING_THREAD.with(|on| on.set(true));
                    if let Some(tx) = registered_tx {
                        // Even after a refusal, entries that did register may
                        // get requests, so the threads serve all the same.
                        let _ = tx.send(ring.register());
                    }
                    let Ok(starter) = start_rx.recv() else {
                        return;
                    };
                    let dispatch = starter(ring.clone());
                    let mut scratch = Vec::new();
                    ring.serve(dispatch.as_ref(), &mut scratch);
                })?;
            self.handles.push(handle);
            self.starts.push(start_tx);
        }
        drop(registered_tx);
        // A refused REGISTER makes the kernel drop io_uring for the
        // connection, so requests keep flowing over /dev/fuse.
        registered_rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("ring thread died")))
    }

    pub(crate) fn transport(&self) -> Transport {
        Transport::IoUring {
            queues: self.queues,
            threads: self.threads,
        }
    }

    /// Hands each ring thread its dispatcher: from here on they serve requests.
    pub(crate) fn start<FS: Filesystem>(&mut self, make: impl Fn(usize) -> SessionEventLoop<FS>) {
        for (i, start) in self.starts.drain(..).enumerate() {
            let event_loop = make(i);
            let starter: Starter = Box::new(move |ring| {
                Box::new(RingDispatch { event_loop, ring }) as Box<dyn Dispatch>
            });
            let _ = start.send(starter);
        }
    }

    /// Stops and joins the ring threads. Called once /dev/fuse reports the
    /// connection gone, when the kernel has failed every pending command.
    pub(crate) fn stop(&mut self) {
        self.starts.clear();
        self.ring.stop.store(true, Ordering::Release);
        self.ring.wake.signal();
        for handle in self.handles.drain(..) {
            if handle.join().is_err() {
                error!("io_uring ring thread panicked");
            }
        }
    }
}

impl Drop for Rings {
    fn drop(&mut self) {
        self.stop();
    }
}
