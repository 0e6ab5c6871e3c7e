//! The `pushfs` binary as a user runs it: mount in the foreground, stop on
//! SIGTERM, and a clear word about a stale mount left by a killed process.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::MountGuard;

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");

fn start_mount(mnt: &Path, state: &Path) -> Child {
    Command::new(BIN)
        .arg("mount")
        .arg(mnt)
        .arg("--state-dir")
        .arg(state)
        .env("HOME", state)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pushfs starts")
}

fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_unmounts_cleanly_and_a_killed_mount_is_reported_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    let state = dir.path().join("state");
    std::fs::create_dir(&mnt).unwrap();
    let _guard = MountGuard::new(&mnt);

    let mut child = start_mount(&mnt, &state);
    until("the mount to appear", || mnt.join("cf").is_dir());
    std::fs::create_dir(mnt.join("cf/app")).unwrap();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(
        !pushfs::fs::mount::is_mount_point(&mnt),
        "SIGTERM unmounted"
    );

    let mut child = start_mount(&mnt, &state);
    until("the mount to come back", || mnt.join("cf/app").is_dir());
    child.kill().unwrap();
    child.wait().unwrap();
    until("the mount to go stale", || {
        std::fs::metadata(&mnt).err().and_then(|e| e.raw_os_error()) == Some(libc::ENOTCONN)
    });

    let out = Command::new(BIN)
        .arg("mount")
        .arg(&mnt)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stale"), "{stderr}");
    assert!(
        stderr.contains(&format!("umount -l {}", mnt.display())),
        "{stderr}"
    );
}

#[test]
fn a_second_mount_of_the_same_state_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let state = dir.path().join("state");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let _guards = (MountGuard::new(&a), MountGuard::new(&b));
    let mut first = start_mount(&a, &state);
    until("the first mount", || a.join("cf").is_dir());
    let out = Command::new(BIN)
        .arg("mount")
        .arg(&b)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("used by another running pushfs"));
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    first.wait().unwrap();
}
