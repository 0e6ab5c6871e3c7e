//! Sparse files on a real mount: holes take no blocks in the state
//! directory, `st_blocks` and `SEEK_DATA`/`SEEK_HOLE` tell the truth while
//! the file is written, once it is sealed and after a remount, a terabyte
//! of holes seals, a rewrite keeps the holes, and a deploy carries the
//! real content.

mod common;

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use common::scripted::scripted_set;
use common::{eventually, run, wait, TestMount};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// `lseek(2)`; `None` for `ENXIO` (no data past the offset).
fn seek(file: &File, offset: u64, whence: i32) -> Option<u64> {
    // SAFETY: a plain call on a descriptor `file` owns.
    let at = unsafe { libc::lseek(file.as_raw_fd(), offset as libc::off_t, whence) };
    if at < 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::ENXIO), "lseek: {err}");
        return None;
    }
    Some(at as u64)
}

/// Every blob in the state directory stored in its sparse form.
fn sparse_blobs(state: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![state.join("objects")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(".sparse") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Waits until the sealer has stored a sparse blob other than `known`'s.
fn wait_for_new_sparse_blob(state: &Path, known: &[PathBuf]) -> PathBuf {
    let mut new = None;
    eventually("a sparse blob is sealed", || {
        new = sparse_blobs(state).into_iter().find(|b| !known.contains(b));
        new.is_some()
    });
    new.unwrap()
}

/// Disk usage of a directory in KiB, as `du` counts it (allocated blocks).
fn du_kib(dir: &Path) -> u64 {
    let out = run(Command::new("du").arg("-sk").arg(dir));
    out.split_whitespace().next().unwrap().parse().unwrap()
}

/// One 4 KiB block of data at `at` in a file of `size` bytes: blocks,
/// data and holes where they belong.
fn assert_one_block_at(path: &Path, size: u64, at: u64, when: &str) {
    let file = File::open(path).unwrap();
    let meta = file.metadata().unwrap();
    assert_eq!(meta.len(), size, "{when}: size");
    assert!(
        meta.blocks() <= 64,
        "{when}: {} blocks for one written 4 KiB block (dense would be {})",
        meta.blocks(),
        size / 512
    );
    assert_eq!(
        seek(&file, 0, libc::SEEK_DATA),
        Some(at),
        "{when}: SEEK_DATA"
    );
    assert_eq!(
        seek(&file, 0, libc::SEEK_HOLE),
        Some(0),
        "{when}: SEEK_HOLE"
    );
    assert_eq!(
        seek(&file, at, libc::SEEK_HOLE),
        Some(at + 4 * KIB),
        "{when}: the hole after the data"
    );
    assert_eq!(
        seek(&file, at + 4 * KIB, libc::SEEK_DATA),
        None,
        "{when}: no data after the block"
    );
    let mut block = vec![0u8; 4 * KIB as usize];
    file.read_exact_at(&mut block, at).unwrap();
    assert_eq!(block, pattern(4 * KIB as usize), "{when}: the data");
    for sample in [0, at - 1, at + 4 * KIB, size / 3, size - 1] {
        let mut byte = [1u8];
        file.read_exact_at(&mut byte, sample).unwrap();
        assert_eq!(byte, [0], "{when}: a hole at {sample} reads as zero");
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// Creates `path` with `size` bytes of holes and one 4 KiB block at `at`.
fn write_sparse(path: &Path, size: u64, at: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    file.write_all_at(&pattern(4 * KIB as usize), at).unwrap();
}

fn one_gib_file_stays_sparse(passthrough: bool) {
    let mut t = TestMount::with_backends_and(scripted_set().1, |config| {
        config.passthrough = passthrough;
    });
    let state = t.config.state_dir.clone();
    let app = t.app("cf", "holes");
    fs::create_dir(&app).unwrap();
    let before = du_kib(&state);
    let path = app.join("big.img");
    let at = 512 * MIB;

    // While it is open for writing (its temp file answers).
    let file = File::create(&path).unwrap();
    file.set_len(GIB).unwrap();
    file.write_all_at(&pattern(4 * KIB as usize), at).unwrap();
    assert_one_block_at(&path, GIB, at, "open");
    drop(file);

    wait_for_new_sparse_blob(&state, &[]);
    assert_one_block_at(&path, GIB, at, "sealed");
    let grown = du_kib(&state).saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "the state directory grew by {grown} KiB for 4 KiB of data"
    );

    t.remount();
    assert_one_block_at(&path, GIB, at, "after a remount");
}

#[test]
fn a_one_gib_file_with_one_block_stays_sparse_with_passthrough() {
    one_gib_file_stays_sparse(true);
}

#[test]
fn a_one_gib_file_with_one_block_stays_sparse_through_the_daemon() {
    one_gib_file_stays_sparse(false);
}

#[test]
fn a_terabyte_of_holes_seals_reads_back_and_stays_sparse_when_rewritten() {
    let t = TestMount::with_backends(scripted_set().1);
    let state = t.config.state_dir.clone();
    let app = t.app("cf", "tera");
    fs::create_dir(&app).unwrap();
    let path = app.join("tera.img");
    let size = 1 << 40;
    let at = 700 * GIB;
    let before = du_kib(&state);

    write_sparse(&path, size, at);
    let closed = Instant::now();
    let first = wait_for_new_sparse_blob(&state, &[]);
    // Measured, not asserted: scripts/bench.sh records it.
    eprintln!("1 TB sparse file sealed {:?} after close", closed.elapsed());
    assert_one_block_at(&path, size, at, "sealed");

    // A rewrite of one byte copies the blob hole for hole.
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    file.write_all_at(b"!", 3 * GIB).unwrap();
    let open_meta = file.metadata().unwrap();
    assert!(
        open_meta.blocks() <= 128,
        "{} blocks while rewritten",
        open_meta.blocks()
    );
    drop(file);
    let second = wait_for_new_sparse_blob(&state, std::slice::from_ref(&first));
    assert_ne!(first, second);
    let file = File::open(&path).unwrap();
    assert_eq!(file.metadata().unwrap().len(), size);
    assert!(file.metadata().unwrap().blocks() <= 128);
    assert_eq!(seek(&file, 0, libc::SEEK_DATA), Some(3 * GIB / 4096 * 4096));
    assert_eq!(seek(&file, 3 * GIB + 1, libc::SEEK_DATA), Some(3 * GIB + 1));
    assert_eq!(
        seek(&file, 3 * GIB + 1, libc::SEEK_HOLE),
        Some(3 * GIB + 4 * KIB)
    );
    assert_eq!(seek(&file, 3 * GIB + 4 * KIB, libc::SEEK_DATA), Some(at));
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, 3 * GIB).unwrap();
    assert_eq!(&byte, b"!");
    let mut block = vec![0u8; 4 * KIB as usize];
    file.read_exact_at(&mut block, at).unwrap();
    assert_eq!(block, pattern(4 * KIB as usize));
    let grown = du_kib(&state).saturating_sub(before);
    assert!(grown < 16 * 1024, "the state directory grew by {grown} KiB");
}

#[test]
fn a_punched_hole_is_a_hole_after_the_seal() {
    let t = TestMount::with_backends(scripted_set().1);
    let state = t.config.state_dir.clone();
    let app = t.app("cf", "punched");
    fs::create_dir(&app).unwrap();
    let path = app.join("f");
    fs::write(&path, vec![9u8; 4 * MIB as usize]).unwrap();
    eventually("the dense file is sealed", || {
        fs::metadata(&path).unwrap().blocks() == 4 * MIB / 512
    });
    run(Command::new("fallocate")
        .args(["-p", "-o", "1M", "-l", "2M"])
        .arg(&path));
    wait_for_new_sparse_blob(&state, &[]);
    let file = File::open(&path).unwrap();
    assert_eq!(file.metadata().unwrap().len(), 4 * MIB);
    assert!(file.metadata().unwrap().blocks() * 512 <= 2 * MIB + 64 * KIB);
    assert_eq!(seek(&file, 0, libc::SEEK_HOLE), Some(MIB));
    assert_eq!(seek(&file, MIB, libc::SEEK_DATA), Some(3 * MIB));
    let mut all = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut all).unwrap();
    let mut expected = vec![9u8; 4 * MIB as usize];
    expected[MIB as usize..3 * MIB as usize].fill(0);
    assert!(all == expected, "the content around the hole");
}

#[test]
fn a_sparse_file_deploys_byte_for_byte_to_bytenite() {
    let t = TestMount::with_emulators();
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");
    let size = 96 * MIB + 123;
    let path = app.join("app/disk.img");
    let file = File::create(&path).unwrap();
    file.set_len(size).unwrap();
    let writes: [(u64, &[u8]); 3] = [(5, b"start"), (40 * MIB + 7, b"middle"), (size - 3, b"end")];
    for (at, bytes) in writes {
        file.write_all_at(bytes, at).unwrap();
    }
    drop(file);
    assert_eq!(wait(&app), "deployed");

    // What the file holds, hashed without making it in memory whole.
    let mut expected = Sha256::new();
    let mut at = 0;
    for (offset, bytes) in writes {
        expected.update(vec![0u8; (offset - at) as usize]);
        expected.update(bytes);
        at = offset + bytes.len() as u64;
    }
    expected.update(vec![0u8; (size - at) as usize]);

    let api = &t.emulators().bytenite.api;
    let record = api.apps().pop().unwrap();
    let tar = api.tar_of(&record.id).expect("the server kept the tar");
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut found = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "app/disk.img" {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; MIB as usize];
            let mut len = 0u64;
            loop {
                let n = entry.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            found = Some((len, hasher.finalize()));
        }
    }
    let (len, digest) = found.expect("the archive has the sparse file");
    assert_eq!(len, size);
    assert_eq!(digest, expected.finalize(), "the archived file's bytes");
}

#[test]
fn touching_or_reopening_a_sparse_file_deploys_nothing() {
    let t = TestMount::with_emulators();
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");
    write_sparse(&app.join("app/disk.img"), 8 * MIB, 2 * MIB);
    assert_eq!(wait(&app), "deployed");
    let api = &t.emulators().bytenite.api;
    let uploads = api.stats().upload_requests;
    assert!(uploads >= 2);

    run(Command::new("touch").arg(app.join("app/disk.img")));
    // Opened for writing and closed unchanged: a hole-keeping copy,
    // sealed again under the same address.
    drop(
        fs::OpenOptions::new()
            .write(true)
            .open(app.join("app/disk.img"))
            .unwrap(),
    );
    assert_eq!(wait(&app), "deployed");
    assert_eq!(api.stats().upload_requests, uploads, "content decides");

    // A real change still deploys.
    let file = fs::OpenOptions::new()
        .write(true)
        .open(app.join("app/disk.img"))
        .unwrap();
    file.write_all_at(b"changed", 5 * MIB).unwrap();
    drop(file);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(api.stats().upload_requests, uploads + 1);
}
