//! Mounting the adapter with fuser, and telling a stale mount from a live one.

use std::io;
use std::path::Path;
use std::sync::{mpsc, Arc};

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier, SessionACL, Transport};

use super::PushFs;
use crate::config::IoUringMode;
use crate::tree::{KernelCache, Tree};

/// The source name in /proc/mounts, used to find our mounts.
pub const FS_NAME: &str = "pushfs";

/// FUSE worker threads: enough that a slow release (hashing a big file)
/// does not stall lookups from other processes.
const THREADS: usize = 4;

/// Where the kernel says whether it may offer FUSE over io_uring.
const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

pub fn spawn(
    tree: Arc<Tree>,
    mountpoint: &Path,
    allow_other: bool,
    passthrough: bool,
    io_uring: IoUringMode,
) -> io::Result<(BackgroundSession, Transport)> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName(FS_NAME.to_string()),
        MountOption::Subtype(FS_NAME.to_string()),
        MountOption::DefaultPermissions,
        MountOption::NoAtime,
    ];
    config.acl = if allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(THREADS);
    let want_io_uring = io_uring != IoUringMode::Off;
    let fs = PushFs::new(tree.clone(), passthrough, want_io_uring);
    let session = fuser::Session::new(fs, mountpoint, &config)?;
    let transport = session.transport();
    let enable_uring = std::fs::read_to_string(ENABLE_URING).ok();
    match judge_transport(&transport, io_uring, enable_uring.as_deref()) {
        Ok(line) => tracing::info!("FUSE transport: {line}"),
        Err(refusal) => {
            // Dropping the session unmounts it.
            drop(session);
            return Err(io::Error::other(refusal));
        }
    }
    let session = session.spawn()?;
    tree.set_kernel_cache(Box::new(KernelNotifier::start(session.notifier())?));
    Ok((session, transport))
}

/// The log line for the transport a mount got, or, for `io_uring = on`
/// without io_uring, why the mount is refused. `enable_uring` is the kernel
/// parameter's value (`None`: the kernel has no such parameter).
fn judge_transport(
    transport: &Transport,
    mode: IoUringMode,
    enable_uring: Option<&str>,
) -> Result<String, String> {
    if let Transport::IoUring { .. } = transport {
        return Ok(transport.to_string());
    }
    let why = match (transport, enable_uring.map(str::trim)) {
        (Transport::IoUringFailed(why), _) => why.clone(),
        (_, Some("N")) => format!("enable_uring is off: echo 1 > {ENABLE_URING}"),
        (_, Some(_)) => "the kernel did not offer it for this mount".to_string(),
        (_, None) => {
            "this kernel has no FUSE over io_uring (Linux 6.14+ with CONFIG_FUSE_IO_URING)"
                .to_string()
        }
    };
    match mode {
        IoUringMode::Off => Ok("/dev/fuse (io_uring = off)".to_string()),
        IoUringMode::Auto => Ok(format!("/dev/fuse; io_uring not used: {why}")),
        IoUringMode::On => Err(format!(
            "io_uring = on, but FUSE over io_uring is not available: {why}"
        )),
    }
}

/// Tells the kernel about names and content the tree changed on its own.
struct KernelNotifier {
    notifier: Notifier,
    /// To the thread that drops cached content (see `forget_content`).
    content: mpsc::Sender<u64>,
}

impl KernelNotifier {
    fn start(notifier: Notifier) -> io::Result<KernelNotifier> {
        let (content, changed) = mpsc::channel::<u64>();
        let dropper = notifier.clone();
        std::thread::Builder::new()
            .name("pushfs-inval".into())
            .spawn(move || {
                for ino in changed {
                    // ENOENT only means the kernel holds nothing of it.
                    let _ = dropper.inval_inode(INodeNo(ino), 0, 0);
                }
            })?;
        Ok(KernelNotifier { notifier, content })
    }
}

impl KernelCache for KernelNotifier {
    fn forget_entries(&self, parent: u64, names: Vec<String>) {
        // Called while answering a write to `.pushfs/ctl`: the kernel then
        // holds that file's lock, never `parent`'s, so this cannot wait on
        // itself, and the writer's next `cat` sees the new names.
        for name in names {
            // ENOENT only means the kernel had not cached the name.
            let _ = self
                .notifier
                .inval_entry(INodeNo(parent), std::ffi::OsStr::new(&name));
        }
    }

    fn forget_content(&self, ino: u64) {
        // On a thread of its own: dropping pages waits for every page a
        // read has locked, and that read's request needs a free thread to
        // be answered. Releases run back to back (the kernel sends them
        // after close() returns), so invalidating in each would soon take
        // every request thread and none would be left to answer the read.
        let _ = self.content.send(ino);
    }
}

/// Detaches the mount now (`umount -l`): it disappears from the namespace,
/// and handles still open on it keep working until they close.
pub fn detach(mountpoint: &Path) -> io::Result<()> {
    let path = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes())
        .map_err(io::Error::other)?;
    // SAFETY: a valid C string; umount2 has no other inputs.
    if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// What is at a mount point before we mount there.
#[derive(Debug, PartialEq, Eq)]
pub enum MountPointState {
    Free,
    /// A FUSE mount whose process died: every access fails with ENOTCONN.
    Stale,
    /// A live mount (ours or another file system's).
    Mounted,
    Missing,
    NotADirectory,
}

pub fn inspect(mountpoint: &Path) -> MountPointState {
    match std::fs::metadata(mountpoint) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => MountPointState::Stale,
        Err(e) if e.kind() == io::ErrorKind::NotFound => MountPointState::Missing,
        Err(_) => MountPointState::Stale,
        Ok(meta) if !meta.is_dir() => MountPointState::NotADirectory,
        Ok(_) if is_mount_point(mountpoint) => MountPointState::Mounted,
        Ok(_) => MountPointState::Free,
    }
}

/// Whether `path` appears as a mount point in /proc/self/mountinfo.
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(canonical) = path.canonicalize() else {
        return false;
    };
    mount_points()
        .iter()
        .any(|(p, _, _)| Path::new(p) == canonical)
}

/// (mount point, file system type, source) of every mount, from /proc/self/mountinfo.
pub fn mount_points() -> Vec<(String, String, String)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<(String, String, String)> {
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-")?;
    let point = unescape(fields.get(4)?);
    let fstype = fields.get(dash + 1)?.to_string();
    let source = unescape(fields.get(dash + 2)?);
    Some((point, fstype, source))
}

/// The mount points of pushfs mounts on this machine. Mounted without
/// fusermount the type is plain `fuse` and the source names us.
pub fn pushfs_mounts() -> Vec<String> {
    mount_points()
        .into_iter()
        .filter(|(_, fstype, source)| {
            fstype == &format!("fuse.{FS_NAME}")
                || (fstype.starts_with("fuse") && source == FS_NAME)
        })
        .map(|(point, _, _)| point)
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            if let Ok(n) = u8::from_str_radix(&code, 8) {
                out.push(n as char);
                continue;
            }
            out.push('\\');
            out.push_str(&code);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn mountinfo_lines_give_point_type_and_source() {
        let line = "42 27 0:39 / /tmp/my\\040deploy rw,nosuid - fuse pushfs rw,user_id=0";
        let (point, fstype, source) = parse_mountinfo_line(line).unwrap();
        assert_eq!(
            (point.as_str(), fstype.as_str(), source.as_str()),
            ("/tmp/my deploy", "fuse", "pushfs")
        );
    }

    #[test]
    fn io_uring_on_refuses_dev_fuse_and_says_how_to_enable_it() {
        let refusal = judge_transport(&Transport::DevFuse, IoUringMode::On, Some("N\n"));
        assert_eq!(
            refusal,
            Err(
                "io_uring = on, but FUSE over io_uring is not available: enable_uring is off: \
                 echo 1 > /sys/module/fuse/parameters/enable_uring"
                    .to_string()
            )
        );
        let failed = Transport::IoUringFailed("setting up rings: ENOMEM".to_string());
        assert!(judge_transport(&failed, IoUringMode::On, Some("Y"))
            .unwrap_err()
            .ends_with("setting up rings: ENOMEM"));
        assert!(judge_transport(&Transport::DevFuse, IoUringMode::On, None)
            .unwrap_err()
            .contains("CONFIG_FUSE_IO_URING"));
    }

    #[test]
    fn io_uring_auto_falls_back_with_the_reason_and_off_is_quiet() {
        assert_eq!(
            judge_transport(&Transport::DevFuse, IoUringMode::Auto, Some("N")).unwrap(),
            "/dev/fuse; io_uring not used: enable_uring is off: \
             echo 1 > /sys/module/fuse/parameters/enable_uring"
        );
        assert_eq!(
            judge_transport(&Transport::DevFuse, IoUringMode::Off, Some("Y")).unwrap(),
            "/dev/fuse (io_uring = off)"
        );
        let ring = Transport::IoUring {
            queues: 2,
            threads: 4,
        };
        for mode in [IoUringMode::Auto, IoUringMode::On] {
            assert_eq!(
                judge_transport(&ring, mode, Some("Y")).unwrap(),
                "io_uring (2 queues, 4 ring threads)"
            );
        }
    }

    #[test]
    fn a_plain_directory_is_free() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(inspect(dir.path()), MountPointState::Free);
        assert_eq!(inspect(&dir.path().join("nope")), MountPointState::Missing);
        assert_eq!(inspect(Path::new("/proc")), MountPointState::Mounted);
    }
}
