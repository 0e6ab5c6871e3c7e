//! `pushfs mount` as a child process, for tests that kill it or measure it
//! (`/proc/<pid>`): it starts, waits until the mount answers, and on drop
//! kills what is left and clears the mount.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pushfs::emulator::Emulators;

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");
/// How long a fresh process may take until its mount answers.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopping process may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Lazily unmounts `path`, quietly: nothing may be mounted there.
pub fn lazy_unmount(path: &Path) -> bool {
    Command::new("umount")
        .arg("-l")
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `path` is in the mount table, dead or alive (unlike
/// `is_mount_point`, which cannot see a dead FUSE mount).
pub fn in_mount_table(path: &Path) -> bool {
    let path = path.to_string_lossy();
    pushfs::fs::mount::mount_points()
        .iter()
        .any(|(point, _, _)| *point == path)
}

/// What a child-process test mounts against: the emulators on ports of
/// their own, a temp dir with `mnt/` (made) and `state/` (not yet), and a
/// client config for the emulators. A [`Pushfs`] started from it is a later
/// local, so it goes (and unmounts) before the emulators and the dir.
pub struct EmulatedSetup {
    pub emulators: Emulators,
    /// Serves the emulators; dropped after them.
    _runtime: tokio::runtime::Runtime,
    pub mnt: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

impl EmulatedSetup {
    pub fn new() -> EmulatedSetup {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let emulators = runtime
            .block_on(Emulators::start([0, 0, 0]))
            .expect("emulators start");
        let dir = tempfile::tempdir().unwrap();
        let (mnt, state) = (dir.path().join("mnt"), dir.path().join("state"));
        fs::create_dir(&mnt).unwrap();
        let config = emulators
            .write_client_config(&dir.path().join("client"))
            .unwrap();
        EmulatedSetup {
            emulators,
            _runtime: runtime,
            mnt,
            state,
            config,
            dir,
        }
    }

    /// `pushfs mount` of `mnt` against the emulators.
    pub fn start(&self, settle_ms: u64) -> Pushfs {
        Pushfs::start(&self.mnt, &self.state, settle_ms, Some(&self.config))
    }
}

/// `pushfs mount` in a child process. Dropping it kills the process and
/// lazily unmounts whatever it left.
pub struct Pushfs {
    child: Child,
    mnt: PathBuf,
    stderr: PathBuf,
}

impl Pushfs {
    /// Starts `pushfs mount` and waits until the mount answers.
    pub fn start(mnt: &Path, state: &Path, settle_ms: u64, config: Option<&Path>) -> Pushfs {
        Pushfs::start_with(mnt, state, settle_ms, config, &[])
    }

    /// [`Pushfs::start`] with more arguments for `pushfs mount`.
    pub fn start_with(
        mnt: &Path,
        state: &Path,
        settle_ms: u64,
        config: Option<&Path>,
        extra: &[&str],
    ) -> Pushfs {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let home = state.parent().expect("the state dir has a parent");
        let n = STARTS.fetch_add(1, Ordering::SeqCst);
        let stderr = home.join(format!("pushfs-{n}.stderr"));
        let mut cmd = Command::new(BIN);
        cmd.arg("mount")
            .arg(mnt)
            .arg("--state-dir")
            .arg(state)
            .arg("--settle-ms")
            .arg(settle_ms.to_string());
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(extra);
        let child = cmd
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("a file for pushfs's stderr"))
            .spawn()
            .expect("pushfs starts");
        let mut pushfs = Pushfs {
            child,
            mnt: mnt.to_path_buf(),
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while !mnt.join("cf").is_dir() {
            if let Ok(Some(status)) = pushfs.child.try_wait() {
                panic!(
                    "pushfs exited with {status} before mounting:\n{}",
                    pushfs.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "pushfs did not mount within {READY_TIMEOUT:?}:\n{}",
                pushfs.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pushfs
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: a signal to our own child, which is not yet reaped.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// What the process wrote on stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL, then clears the dead mount the kernel keeps.
    pub fn kill_9(mut self) {
        self.signal(libc::SIGKILL);
        self.child.wait().expect("reaping pushfs");
        assert!(
            lazy_unmount(&self.mnt),
            "umount -l of the dead mount failed"
        );
    }

    /// Waits for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling pushfs") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pushfs did not exit within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, and a clean exit.
    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(EXIT_TIMEOUT);
        assert!(
            status.success(),
            "pushfs exited with {status}:\n{}",
            self.log()
        );
        assert!(!in_mount_table(&self.mnt), "SIGTERM left the mount behind");
    }
}

impl Drop for Pushfs {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if in_mount_table(&self.mnt) {
            lazy_unmount(&self.mnt);
        }
    }
}

/// A line of `/proc/<pid>/status`, in KiB (`VmRSS`, `VmHWM`).
pub fn proc_kib(pid: i32, field: &str) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}
