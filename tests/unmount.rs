//! An external unmount ends pushfs the way SIGTERM does: `umount` as root,
//! and `fusermount3 -u` as the unprivileged user who mounted. The process
//! exits 0 within seconds, and the next mount finds every app as it was.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, have, other_user, run, MountGuard};

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Who runs the mount: root, or an unprivileged user through fusermount3.
#[derive(Clone, Copy)]
enum Runner {
    Root,
    User { uid: u32, gid: u32 },
}

impl Runner {
    fn command(self, program: &str) -> Command {
        match self {
            Runner::Root => Command::new(program),
            Runner::User { uid, gid } => {
                let mut cmd = Command::new("setpriv");
                cmd.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(program);
                cmd
            }
        }
    }

    /// Runs a shell line as this runner, failing the test if it fails.
    fn sh(self, line: &str) -> String {
        run(self.command("sh").arg("-c").arg(line))
    }
}

struct Pushfs {
    child: Child,
    log: PathBuf,
}

impl Pushfs {
    fn start(runner: Runner, mnt: &Path, state: &Path) -> Pushfs {
        Pushfs::start_with(runner, mnt, state, &[])
    }

    fn start_with(runner: Runner, mnt: &Path, state: &Path, extra: &[&Path]) -> Pushfs {
        let log = state.with_extension("log");
        let child = runner
            .command(BIN)
            .arg("mount")
            .arg(mnt)
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("pushfs starts");
        let mut pushfs = Pushfs { child, log };
        let mnt = mnt.to_path_buf();
        eventually("the mount to appear", || {
            if let Ok(Some(status)) = pushfs.child.try_wait() {
                panic!("pushfs exited with {status}:\n{}", pushfs.log());
            }
            pushfs::fs::mount::is_mount_point(&mnt)
        });
        pushfs
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, failing the test if it takes longer than `limit`.
    fn exited_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "pushfs still runs {limit:?} after its mount went away:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pushfs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A work directory others can traverse, owned by `owner`.
fn work_dir(owner: Option<(u32, u32)>) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (mnt, state) = (dir.path().join("mnt"), dir.path().join("state"));
    fs::create_dir(&mnt).unwrap();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&mnt, Some(uid), Some(gid)).unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
    }
    (dir, mnt, state)
}

fn unmounted_cleanly(pushfs: &mut Pushfs) {
    let status = pushfs.exited_within(EXIT_LIMIT);
    let log = pushfs.log();
    assert!(status.success(), "pushfs exited with {status}:\n{log}");
    assert!(log.contains("unmounted by an external umount"), "{log}");
}

#[test]
fn umount_as_root_ends_pushfs_and_the_next_mount_finds_every_app() {
    let (_dir, mnt, state) = work_dir(None);
    let _guard = MountGuard::new(&mnt);
    let mut pushfs = Pushfs::start(Runner::Root, &mnt, &state);
    fs::create_dir(mnt.join("cf/kept")).unwrap();
    fs::write(mnt.join("cf/kept/index.html"), "<p>kept</p>").unwrap();
    fs::write(mnt.join("cf/kept/.pushfs/ctl"), "hold\n").unwrap();
    run(Command::new("umount").arg(&mnt));
    unmounted_cleanly(&mut pushfs);

    let mut again = Pushfs::start(Runner::Root, &mnt, &state);
    assert_eq!(
        fs::read_to_string(mnt.join("cf/kept/index.html")).unwrap(),
        "<p>kept</p>"
    );
    assert_eq!(
        fs::read_to_string(mnt.join("cf/kept/.pushfs/state")).unwrap(),
        "held\n",
        "the deploy state came back too"
    );
    run(Command::new("umount").arg(&mnt));
    unmounted_cleanly(&mut again);
}

#[test]
fn an_unprivileged_user_mounts_copies_deploys_and_unmounts() {
    let (uid, gid) = usable_fuse_and_other_user();
    let user = Runner::User { uid, gid };
    let (dir, mnt, state) = work_dir(Some((uid, gid)));
    let _guard = MountGuard::new(&mnt);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulators = runtime
        .block_on(pushfs::emulator::Emulators::start([0, 0, 0]))
        .unwrap();
    let config_dir = dir.path().join("config");
    let config = emulators.write_client_config(&config_dir).unwrap();
    for path in [config_dir.clone(), config.clone()] {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
    }
    for entry in fs::read_dir(&config_dir).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(uid), Some(gid)).unwrap();
    }
    let mut pushfs = Pushfs::start_with(user, &mnt, &state, &[Path::new("--config"), &config]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cf-hello");
    let m = mnt.display();
    user.sh(&format!("cp -r {} {m}/cf/", example.display()));
    assert_eq!(
        user.sh(&format!("cat {m}/cf/cf-hello/.pushfs/wait")),
        "deployed\n"
    );
    assert_eq!(emulators.cf.api.uploads().len(), 1);
    assert!(
        pushfs.log().contains("passthrough is off (it needs root)"),
        "said once that writes go through pushfs:\n{}",
        pushfs.log()
    );
    user.sh(&format!("fusermount3 -u {m}"));
    unmounted_cleanly(&mut pushfs);
}

/// The second user, and /dev/fuse and fusermount3 as a user needs them.
fn usable_fuse_and_other_user() -> (u32, u32) {
    assert!(
        have("fusermount3"),
        "this test needs fusermount3 (apt-get install fuse3; scripts/test.sh installs it)"
    );
    // Distributions ship /dev/fuse as 0666, so that users can mount through
    // fusermount3; some minimal images make it root's alone.
    let fuse = Path::new("/dev/fuse");
    if fs::metadata(fuse).unwrap().permissions().mode() & 0o006 != 0o006 {
        fs::set_permissions(fuse, fs::Permissions::from_mode(0o666)).unwrap();
    }
    other_user()
}

#[test]
fn fusermount3_as_the_user_who_mounted_ends_pushfs() {
    let (uid, gid) = usable_fuse_and_other_user();
    let user = Runner::User { uid, gid };
    let (_dir, mnt, state) = work_dir(Some((uid, gid)));
    let _guard = MountGuard::new(&mnt);
    let mut pushfs = Pushfs::start(user, &mnt, &state);
    let m = mnt.display();
    user.sh(&format!(
        "mkdir {m}/flux/mine && echo mine > {m}/flux/mine/notes.txt"
    ));
    user.sh(&format!("fusermount3 -u {m}"));
    unmounted_cleanly(&mut pushfs);

    let mut again = Pushfs::start(user, &mnt, &state);
    assert_eq!(user.sh(&format!("cat {m}/flux/mine/notes.txt")), "mine\n");
    user.sh(&format!("fusermount3 -u {m}"));
    unmounted_cleanly(&mut again);
}
