//! `fallocate` on a real mount, in each mode util-linux's tool offers:
//! preallocating (growing the file), beyond the end (`-n`), punching a
//! hole (`-p`), a refused mode, and ENOSPC reported up front.

mod common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::scripted::scripted_set;
use common::{run, wait, TestMount};

const MIB: u64 = 1 << 20;

fn fallocate(args: &[&str], file: &Path) -> std::process::Output {
    Command::new("fallocate")
        .args(args)
        .arg(file)
        .output()
        .expect("fallocate runs")
}

#[test]
fn fallocate_grows_keeps_size_and_punches_holes() {
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "alloc");
    fs::create_dir(&app).unwrap();
    let f = app.join("f");

    run(Command::new("fallocate").args(["-l", "10M"]).arg(&f));
    assert_eq!(fs::metadata(&f).unwrap().len(), 10 * MIB);
    assert!(fs::read(&f).unwrap().iter().all(|b| *b == 0));

    // Beyond the end with KEEP_SIZE: allocated, the size stays.
    run(Command::new("fallocate")
        .args(["--keep-size", "-o", "10M", "-l", "2M"])
        .arg(&f));
    assert_eq!(fs::metadata(&f).unwrap().len(), 10 * MIB);

    // A sealed file written again, then a hole punched in it.
    fs::write(&f, vec![7u8; 3 * 4096]).unwrap();
    run(Command::new("fallocate")
        .args(["-p", "-o", "4096", "-l", "4096"])
        .arg(&f));
    let bytes = fs::read(&f).unwrap();
    assert_eq!(bytes.len(), 3 * 4096, "a punched hole keeps the size");
    assert_eq!(&bytes[..4096], &[7u8; 4096][..]);
    assert_eq!(&bytes[4096..8192], &[0u8; 4096][..]);
    assert_eq!(&bytes[8192..], &[7u8; 4096][..]);

    // ZERO_RANGE (and every mode not listed) is refused.
    let out = fallocate(&["-z", "-o", "0", "-l", "4096"], &f);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Operation not supported"),
        "{stderr}"
    );

    // What deploys is what was allocated and punched.
    let g = app.join("g");
    // (A deploy's files are read back here whole, so a small one.)
    run(Command::new("fallocate").args(["-l", "512K"]).arg(&g));
    let open = fs::OpenOptions::new().write(true).open(&g).unwrap();
    open.write_all_at(b"end", 512 * 1024 - 3).unwrap();
    drop(open);
    fs::write(app.join("spec.json"), "{}").unwrap();
    assert_eq!(wait(&app), "deployed");
    let deployed = backend.last();
    let g_bytes = deployed.read("g").unwrap().unwrap();
    assert_eq!(g_bytes.len(), 512 * 1024);
    assert_eq!(&g_bytes[g_bytes.len() - 3..], b"end");
    assert_eq!(deployed.read("f").unwrap().unwrap(), bytes);
}

/// A small tmpfs for the state directory, unmounted after the mount on it.
struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn no_room_is_enospc_at_fallocate_and_leaves_the_file_as_it_was() {
    let disk_dir = tempfile::tempdir().unwrap();
    run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(disk_dir.path()));
    let disk = SmallDisk(disk_dir.path().to_path_buf());
    let state = disk.0.join("state");
    let t = TestMount::with_backends_and(scripted_set().1, |config| {
        config.state_dir = state.clone();
    });
    let app = t.app("cf", "full");
    fs::create_dir(&app).unwrap();
    let f = app.join("f");
    fs::write(&f, "kept").unwrap();

    let out = fallocate(&["-l", "100M"], &f);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("No space left on device"),
        "{stderr}"
    );
    assert_eq!(fs::read(&f).unwrap(), b"kept", "nothing was half done");
    // What fits still fits.
    run(Command::new("fallocate")
        .args(["-l", "8M"])
        .arg(app.join("g")));
    assert_eq!(fs::metadata(app.join("g")).unwrap().len(), 8 * MIB);
    drop(t);
    drop(disk);
}
