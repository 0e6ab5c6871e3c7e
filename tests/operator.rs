//! Starting and stopping pushfs the way operators start other file
//! systems: an fstab line through `mount --fstab`, and `pushfs unmount`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run, MountGuard};

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");

/// An fstab naming the binary by path (`/path/to/pushfs#source`), so the
/// test needs nothing installed; `fuse.pushfs` would find it on the PATH.
fn fstab(dir: &Path, mnt: &Path, state: &Path) -> std::path::PathBuf {
    let path = dir.join("fstab");
    fs::write(
        &path,
        format!(
            "{BIN}#demo {} fuse defaults,noauto,state_dir={},settle_ms=200 0 0\n",
            mnt.display(),
            state.display()
        ),
    )
    .unwrap();
    path
}

fn mount_from(fstab: &Path, mnt: &Path) {
    run(Command::new("mount").arg("--fstab").arg(fstab).arg(mnt));
}

/// The pids serving `mnt`, waiting for their exit.
fn gone_within(pids: &[u32], limit: Duration) {
    let deadline = Instant::now() + limit;
    for pid in pids {
        while Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
        {
            assert!(Instant::now() < deadline, "pid {pid} still runs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn an_fstab_line_mounts_and_pushfs_unmount_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mnt, state) = (dir.path().join("mnt"), dir.path().join("state"));
    fs::create_dir(&mnt).unwrap();
    let _guard = MountGuard::new(&mnt);
    let table = fstab(dir.path(), &mnt, &state);

    mount_from(&table, &mnt);
    assert!(
        pushfs::fs::mount::is_mount_point(&mnt),
        "mount(8) returned with the mount up"
    );
    let pids = pushfs::unmount::owners(&mnt);
    assert_eq!(pids.len(), 1, "one process serves the mount");
    fs::create_dir(mnt.join("cf/site")).unwrap();
    fs::write(mnt.join("cf/site/index.html"), "<p>from fstab</p>").unwrap();

    run(Command::new(BIN).arg("unmount").arg(&mnt));
    gone_within(&pids, Duration::from_secs(10));
    assert!(!pushfs::fs::mount::is_mount_point(&mnt));
    let log = fs::read_to_string(state.join("pushfs.log")).unwrap();
    assert!(
        log.contains("mounted"),
        "the log is in the state directory:\n{log}"
    );

    mount_from(&table, &mnt);
    assert_eq!(
        fs::read_to_string(mnt.join("cf/site/index.html")).unwrap(),
        "<p>from fstab</p>"
    );
    let pids = pushfs::unmount::owners(&mnt);
    run(Command::new(BIN).arg("unmount").arg(&mnt));
    gone_within(&pids, Duration::from_secs(10));
}

#[test]
fn mistakes_in_an_fstab_line_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = Command::new(BIN)
        .args(["demo"])
        .arg(&mnt)
        .args(["-o", "rw,confg=/etc/pushfs.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown mount option `confg=/etc/pushfs.toml`"),
        "{stderr}"
    );
    assert!(!pushfs::fs::mount::is_mount_point(&mnt));
}

#[test]
fn unmount_of_something_else_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("unmount")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a pushfs mount"), "{stderr}");
}
