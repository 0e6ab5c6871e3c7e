//! FUSE over io_uring on real mounts: with the kernel allowing it, every kind
//! of request pushfs serves arrives over the ring, replies parked for later
//! still get out, and an unmount with files open ends cleanly.
//!
//! These tests turn on `/sys/module/fuse/parameters/enable_uring` (root).
//! It is global, so no test ever turns it back off: /dev/fuse is tested with
//! the `io_uring = off` setting instead.

mod common;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use common::*;
use pushfs::config::IoUringMode;

const ENABLE_URING: &str = "/sys/module/fuse/parameters/enable_uring";

/// Lets the kernel offer io_uring; false on a kernel without it.
fn enable_uring() -> bool {
    if !Path::new(ENABLE_URING).exists() {
        eprintln!("SKIPPED: this kernel has no FUSE over io_uring ({ENABLE_URING} missing)");
        return false;
    }
    fs::write(ENABLE_URING, "1").expect("root may enable FUSE over io_uring");
    true
}

fn run(cmd: &mut Command) {
    let status = cmd.status().unwrap();
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let (p, n) = (
        CString::new(path.as_os_str().as_encoded_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    // SAFETY: valid C strings and a value pointer with its length.
    let rc = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

fn get_xattr(path: &Path, name: &str) -> Vec<u8> {
    let (p, n) = (
        CString::new(path.as_os_str().as_encoded_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer with its length.
    let rc = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(rc >= 0, "getxattr: {}", std::io::Error::last_os_error());
    buf.truncate(rc as usize);
    buf
}

/// A small tree of files of assorted sizes, outside the mount.
fn make_tree(root: &Path, files: usize) {
    for i in 0..files {
        let dir = root.join(format!("d{}", i % 7));
        fs::create_dir_all(&dir).unwrap();
        let len = 1 + (i * 997) % 20_000;
        let body: Vec<u8> = (0..len).map(|j| ((i + j) % 251) as u8).collect();
        fs::write(dir.join(format!("f{i}.bin")), body).unwrap();
    }
}

#[test]
fn every_kind_of_request_is_served_over_io_uring() {
    if !enable_uring() {
        return;
    }
    let mut t = TestMount::with_emulators_and(|config, _| config.io_uring = IoUringMode::Auto);
    let transport = t.mounted.as_ref().unwrap().transport().clone();
    assert!(
        matches!(transport, fuser::Transport::IoUring { .. }),
        "expected io_uring, got {transport}"
    );

    // cp -r, and `.pushfs/wait` answered later from the deploy's thread.
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");

    // tar x of a tree.
    let src = t.scratch("tree");
    make_tree(&src, 300);
    let tarball = t.scratch("tar").join("tree.tar");
    run(Command::new("tar")
        .arg("cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("."));
    let unpacked = app.join("app/tree");
    fs::create_dir(&unpacked).unwrap();
    run(Command::new("tar")
        .arg("xf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked));
    run(Command::new("diff").arg("-r").arg(&src).arg(&unpacked));

    // mkdir, rename, unlink, xattrs.
    fs::create_dir(app.join("app/made")).unwrap();
    fs::rename(unpacked.join("d0/f0.bin"), app.join("app/made/moved.bin")).unwrap();
    fs::remove_file(unpacked.join("d1/f1.bin")).unwrap();
    assert!(!unpacked.join("d1/f1.bin").exists());
    set_xattr(&app.join("app/made/moved.bin"), "user.origin", b"ring");
    assert_eq!(
        get_xattr(&app.join("app/made/moved.bin"), "user.origin"),
        b"ring"
    );

    // A large file: written through passthrough, read back through pushfs
    // once sealed.
    let big: Vec<u8> = (0..24 << 20).map(|i: u32| (i % 253) as u8).collect();
    fs::write(app.join("app/big.bin"), &big).unwrap();
    assert_eq!(wait(&app), "deployed");
    let mut back = Vec::new();
    fs::File::open(app.join("app/big.bin"))
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == big, "the large file read back differs");

    // The deploy carried the change.
    let records = t.emulators().bytenite.api.apps();
    assert_eq!(records.len(), 1);
    assert_eq!(status(&app, "state"), "deployed");

    // A clean unmount with files still open.
    let mut open_writer = fs::OpenOptions::new()
        .append(true)
        .open(app.join("app/main.py"))
        .unwrap();
    open_writer.write_all(b"# open\n").unwrap();
    let open_reader = fs::File::open(app.join("app/made/moved.bin")).unwrap();
    let mnt = t.mnt();
    t.unmount();
    assert!(!common::child::in_mount_table(&mnt), "the mount is gone");
    drop((open_writer, open_reader));
}

#[test]
fn io_uring_off_keeps_requests_on_dev_fuse() {
    enable_uring();
    let t = TestMount::with_emulators_and(|config, _| config.io_uring = IoUringMode::Off);
    let transport = t.mounted.as_ref().unwrap().transport().clone();
    assert_eq!(transport, fuser::Transport::DevFuse);
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");
}

#[test]
fn io_uring_on_mounts_over_io_uring() {
    if !enable_uring() {
        return;
    }
    let t = TestMount::with_emulators_and(|config, _| config.io_uring = IoUringMode::On);
    let transport = t.mounted.as_ref().unwrap().transport().clone();
    assert!(
        matches!(transport, fuser::Transport::IoUring { .. }),
        "{transport}"
    );
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");
}
