//! Shared set-up for the real-mount tests: a temp mount point and state
//! directory, a runtime, the emulators, and guards that always unmount.

#![allow(dead_code)]

pub mod cf_harness;
pub mod child;
pub mod hostile;
pub mod report;
pub mod scripted;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use pushfs::backend::Backend;
use pushfs::config::{Config, RetryPolicy};
use pushfs::emulator::Emulators;
use pushfs::mount::Mounted;

/// Generous: CI machines are slow, but a test must never hang forever.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Unmounts lazily on drop, even if the test panicked while the mount was busy.
pub struct MountGuard {
    path: PathBuf,
}

impl MountGuard {
    pub fn new(path: &Path) -> MountGuard {
        MountGuard {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        use pushfs::fs::mount::{inspect, is_mount_point, MountPointState};
        // A mount whose process died cannot be resolved, so ask both ways.
        if is_mount_point(&self.path) || inspect(&self.path) == MountPointState::Stale {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

pub struct TestMount {
    pub runtime: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub mounted: Option<Mounted>,
    pub emulators: Option<Emulators>,
    backends: Option<Vec<Arc<dyn Backend>>>,
    _guard: MountGuard,
}

impl TestMount {
    /// A mount whose backends talk to freshly started emulators.
    pub fn with_emulators() -> TestMount {
        TestMount::with_emulators_and(|_, _| {})
    }

    /// Like [`TestMount::with_emulators`], with the configuration adjusted before mounting.
    pub fn with_emulators_and(adjust: impl FnOnce(&mut Config, &Emulators)) -> TestMount {
        let mut t = TestMount::prepare();
        let emulators = t
            .runtime
            .block_on(Emulators::start([0, 0, 0]))
            .expect("emulators start");
        emulators.configure_clients(&mut t.config);
        adjust(&mut t.config, &emulators);
        t.emulators = Some(emulators);
        t.mount();
        t
    }

    pub fn emulators(&self) -> &Emulators {
        self.emulators.as_ref().expect("started with emulators")
    }

    /// Every status file of `app`, and every file in the state directory, as text.
    pub fn everything_written(&self, app: &Path) -> String {
        let mut all = String::new();
        for entry in fs::read_dir(app.join(".pushfs")).unwrap() {
            all.push_str(&fs::read_to_string(entry.unwrap().path()).unwrap_or_default());
        }
        let mut stack = vec![self.config.state_dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Ok(text) = fs::read(&path) {
                    all.push_str(&String::from_utf8_lossy(&text));
                }
            }
        }
        all
    }

    /// A mount whose backends are the given (scripted) ones.
    pub fn with_backends(backends: Vec<Arc<dyn Backend>>) -> TestMount {
        TestMount::with_backends_and(backends, |_| {})
    }

    /// Like [`TestMount::with_backends`], with the configuration adjusted before mounting.
    pub fn with_backends_and(
        backends: Vec<Arc<dyn Backend>>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestMount {
        let mut t = TestMount::prepare();
        adjust(&mut t.config);
        t.backends = Some(backends);
        t.mount();
        t
    }

    fn prepare() -> TestMount {
        // PUSHFS_LOG=pushfs=debug shows what the mount did, when a test needs explaining.
        if let Ok(filter) = std::env::var("PUSHFS_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("mnt")).unwrap();
        let mut config = Config::with_state_dir(&dir.path().join("state"));
        config.settle = Duration::from_millis(150);
        config.retry = RetryPolicy {
            attempts: Some(4),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            deadline: Duration::from_secs(60),
        };
        let guard = MountGuard {
            path: dir.path().join("mnt"),
        };
        TestMount {
            runtime,
            dir,
            config,
            mounted: None,
            emulators: None,
            backends: None,
            _guard: guard,
        }
    }

    pub fn mount(&mut self) {
        let handle = self.runtime.handle().clone();
        let mnt = self.mnt();
        let mounted = match &self.backends {
            Some(backends) => Mounted::start_with(&self.config, &mnt, handle, backends.clone()),
            None => Mounted::start(&self.config, &mnt, handle),
        };
        self.mounted = Some(mounted.expect("mount"));
    }

    pub fn unmount(&mut self) {
        if let Some(m) = self.mounted.take() {
            m.unmount();
        }
    }

    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }

    pub fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    pub fn app(&self, backend: &str, name: &str) -> PathBuf {
        self.mnt().join(backend).join(name)
    }

    /// `cp -r examples/<backend>-hello` into the backend's directory, as
    /// the README shows it; returns the app folder.
    pub fn copy_example(&self, backend: &str) -> PathBuf {
        let name = format!("{backend}-hello");
        let example = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(&name);
        run(Command::new("cp")
            .arg("-r")
            .arg(example)
            .arg(self.mnt().join(backend)));
        self.app(backend, &name)
    }

    /// A scratch directory outside the mount.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("scratch").join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        self.unmount();
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than `limit`
/// (a hung FUSE request must fail the test, not hang it).
pub fn within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("timed out after {limit:?}: {what}"),
        Err(RecvTimeoutError::Disconnected) => panic!("panicked: {what}"),
    }
}

/// Reads `.pushfs/wait` on a thread, failing the test after [`WAIT_TIMEOUT`].
pub fn wait(app: &Path) -> String {
    wait_within(app, WAIT_TIMEOUT)
}

/// Reads `.pushfs/wait` on a thread, failing the test after `limit`.
pub fn wait_within(app: &Path, limit: Duration) -> String {
    let path = app.join(".pushfs/wait");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let r = fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut s));
        let _ = tx.send(r.map(|_| s));
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(s)) => s.trim().to_string(),
        Ok(Err(e)) => panic!("reading .pushfs/wait failed: {e}"),
        Err(_) => panic!(
            "timed out after {limit:?} waiting for the deploy of {}",
            app.display()
        ),
    }
}

/// One status file, trimmed.
pub fn status(app: &Path, file: &str) -> String {
    fs::read_to_string(app.join(".pushfs").join(file))
        .unwrap_or_else(|e| panic!("reading .pushfs/{file}: {e}"))
        .trim()
        .to_string()
}

pub fn status_json(app: &Path) -> serde_json::Value {
    serde_json::from_str(&status(app, "status.json")).expect("status.json is JSON")
}

/// Polls `cond` every 20 ms until it holds or [`WAIT_TIMEOUT`] passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT_TIMEOUT;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes a tree of `count` small files under `root` in a few subdirectories.
pub fn write_tree(root: &Path, count: usize) {
    for i in 0..count {
        let dir = root.join(format!("d{}", i % 7)).join(format!("e{}", i % 3));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("f{i}.txt")),
            format!("file {i}\n").repeat(i % 50 + 1),
        )
        .unwrap();
    }
}

/// Runs a command, failing the test with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The unprivileged second user the tests act as (created if missing).
pub const OTHER_USER: &str = "pushfs-test-other";

/// The uid and gid of the unprivileged second user, created once if missing.
pub fn other_user() -> (u32, u32) {
    static USER: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *USER.get_or_init(|| {
        let id = |flag: &str| {
            Command::new("id")
                .arg(flag)
                .arg(OTHER_USER)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<u32>()
                        .unwrap()
                })
        };
        if id("-u").is_none() {
            run(Command::new("useradd")
                .args(["-M", "-r", "-s", "/usr/sbin/nologin"])
                .arg(OTHER_USER));
        }
        let (uid, gid) = (id("-u").unwrap(), id("-g").unwrap());
        assert_ne!(uid, 0, "{OTHER_USER} must not be root");
        (uid, gid)
    })
}
