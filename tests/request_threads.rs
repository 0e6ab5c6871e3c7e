//! How requests share the mount's threads, on a real mount. One thread at a
//! time reads the next request and serves the quick ones itself; a request
//! that may take long hands reading on first, and so does a thread about to
//! send the kernel an invalidation. These tests hold both hand-overs: a
//! slow request must not hold up a quick one, and an invalidation must not
//! wait forever for a request nobody reads.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, wait, within, TestMount};

/// Writers that close beside an open reader.
const ROUNDS: u32 = 300;

/// Long enough for a hang to be a hang, however slow the machine.
const HANG: Duration = Duration::from_secs(120);

/// Files in the state dir's temp area with some bytes in them.
fn temp_bytes(state: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![state.join("tmp")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// A sealed file of `mib` MiB of non-zero bytes (zeros would be kept as holes).
fn sealed_file(app: &Path, name: &str, mib: usize) -> PathBuf {
    let path = app.join(name);
    let mut file = fs::File::create(&path).unwrap();
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251 + 1) as u8).collect();
    for _ in 0..mib {
        file.write_all(&block).unwrap();
    }
    drop(file);
    wait(app);
    path
}

#[test]
fn a_stat_is_answered_while_an_open_for_writing_copies_a_big_file() {
    let t = TestMount::with_emulators();
    let app = t.app("bytenite", "threads");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("small.txt"), "small\n").unwrap();
    let big = sealed_file(&app, "big.bin", 256);
    let state = t.config.state_dir.clone();
    assert_eq!(temp_bytes(&state), 0, "a temp file is left before the open");

    // Opening a sealed file for writing (no O_TRUNC) copies its content
    // into a new temp file before the open returns.
    let opened = Arc::new(AtomicBool::new(false));
    let opener = {
        let opened = opened.clone();
        std::thread::spawn(move || {
            let file = fs::OpenOptions::new().write(true).open(&big).unwrap();
            opened.store(true, Ordering::SeqCst);
            file
        })
    };
    eventually("the copy of the open for writing starts", || {
        temp_bytes(&state) > 0 || opened.load(Ordering::SeqCst)
    });
    let small = app.join("small.txt");
    let stat_done_before_open = within(
        "a stat during the copy: the mount stopped serving",
        HANG,
        move || {
            let meta = fs::metadata(&small).unwrap();
            assert_eq!(meta.len(), 6);
            !opened.load(Ordering::SeqCst)
        },
    );
    let file = opener.join().unwrap();
    drop(file);
    assert!(
        stat_done_before_open,
        "the stat waited for the whole copy: a slow request held up a quick one"
    );
}

#[test]
fn invalidations_while_another_handle_reads_through_the_kernel_cache_never_hang() {
    let t = TestMount::with_emulators_and(|config, _| config.passthrough = false);
    let app = t.app("bytenite", "invalidate");
    fs::create_dir(&app).unwrap();
    let path = sealed_file(&app, "shared.bin", 4);

    // One handle stays open and keeps reading through the page cache; each
    // close of a writer tells the kernel to drop that cache (an
    // invalidation sent while the release is served), often while a read
    // of the open handle waits in the kernel for its answer.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, path) = (stop.clone(), reads.clone(), path.clone());
        std::thread::spawn(move || {
            let file = fs::File::open(&path).unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut offset = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let n = file.read_at(&mut buf, offset).unwrap();
                offset = if n == 0 { 0 } else { offset + n as u64 };
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let writes = {
        let path = path.clone();
        within(
            "writers closing beside an open reader: the mount stopped serving",
            HANG,
            move || {
                for round in 0..ROUNDS {
                    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
                    file.write_at(&round.to_le_bytes(), 4096 * u64::from(round % 64))
                        .unwrap();
                }
                ROUNDS
            },
        )
    };
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    assert_eq!(writes, ROUNDS);
    assert!(reads.load(Ordering::SeqCst) > 0, "the reader never read");
    // The last writer's bytes are what a new reader sees.
    let mut content = Vec::new();
    fs::File::open(&path)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content.len(), 4 * 1024 * 1024);
    let last = ROUNDS - 1;
    let at = 4096 * (last as usize % 64);
    assert_eq!(&content[at..at + 4], &last.to_le_bytes());
}
