//! The `pushfs` binary as a user runs it: mount in the foreground, stop on
//! SIGTERM, and a clear word about a stale mount left by a killed process.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::child::in_mount_table;
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

#[test]
fn deleting_the_lock_file_does_not_let_a_second_mount_in() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let state = dir.path().join("state");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let _guards = (MountGuard::new(&a), MountGuard::new(&b));
    let mut first = start_mount(&a, &state);
    until("the first mount", || a.join("cf").is_dir());
    // The file an earlier pushfs locked: deleting it let a second mount in.
    let _ = std::fs::remove_file(state.join("lock"));
    let mut second = Command::new(BIN)
        .arg("mount")
        .arg(&b)
        .arg("--state-dir")
        .arg(&state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A second mount that got in would run until stopped.
    let deadline = Instant::now() + Duration::from_secs(30);
    while second.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if second.try_wait().unwrap().is_none() {
        unsafe { libc::kill(second.id() as i32, libc::SIGTERM) };
        second.wait().unwrap();
        unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
        first.wait().unwrap();
        panic!("a second mount of the same state directory ran");
    }
    let out = second.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "state directory {} is used by another running pushfs",
            state.display()
        )),
        "{stderr}"
    );
    assert!(!in_mount_table(&b), "the second mount must not happen");
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    first.wait().unwrap();
}

#[test]
fn the_readme_demo_deploys_the_bytenite_example() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("deploy");
    let _guard = MountGuard::new(&mnt);
    let mut demo = Command::new(BIN)
        .arg("demo")
        .arg(&mnt)
        .arg("--settle-ms")
        .arg("200")
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pushfs demo starts");
    until("the demo mount", || mnt.join("bytenite").is_dir());
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    common::run(
        Command::new("cp")
            .arg("-r")
            .arg(example)
            .arg(mnt.join("bytenite")),
    );
    let app = mnt.join("bytenite/bytenite-hello");
    assert_eq!(common::wait(&app), "deployed");
    assert_eq!(common::status(&app, "revision"), "1");
    let hash = common::status(&app, "hash");
    assert_eq!(hash.len(), 44, "base64 of a SHA-256: {hash}");
    std::fs::write(app.join("app/main.py"), "print('v2')\n").unwrap();
    assert_eq!(common::wait(&app), "deployed");
    assert_eq!(common::status(&app, "revision"), "2");

    let status = common::run(Command::new(BIN).arg("status").arg(&mnt));
    assert!(
        status.contains("bytenite/bytenite-hello: deployed"),
        "{status}"
    );
    let json = common::run(Command::new(BIN).args(["status", "--json"]).arg(&mnt));
    let json: serde_json::Value = serde_json::from_str(&json).expect("status --json is JSON");
    let app_json = &json[0]["apps"][0];
    assert_eq!(json[0]["mountpoint"], mnt.to_str().unwrap());
    assert_eq!(
        (app_json["backend"].as_str(), app_json["name"].as_str()),
        (Some("bytenite"), Some("bytenite-hello"))
    );
    assert_eq!(app_json["status"]["state"], "deployed");
    assert_eq!(app_json["status"]["revision"], "2");

    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
    assert!(demo.wait().unwrap().success());
    assert!(!pushfs::fs::mount::is_mount_point(&mnt));
}
