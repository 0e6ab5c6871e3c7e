//! Memory over a long run: a mount that deployed a big app goes back to a
//! small size instead of keeping what the deploy's file lists took.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::child::{proc_kib, EmulatedSetup};
use common::{status, wait, wait_within};

/// Files in the big app: its lists (snapshot, kept tree, tar entries) take
/// tens of MiB while it deploys.
const FILES: usize = 20_000;

#[test]
fn a_mount_gives_back_the_memory_a_big_deploy_took() {
    let setup = EmulatedSetup::new();
    let (mnt, pushfs) = (&setup.mnt, setup.start(150));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    let manifest = fs::read_to_string(example.join("manifest.json")).unwrap();

    // A first deploy warms up what every deploy uses (threads, clients).
    let warm = mnt.join("bytenite/warm");
    fs::create_dir_all(warm.join("app")).unwrap();
    fs::copy(example.join("app/main.py"), warm.join("app/main.py")).unwrap();
    fs::write(
        warm.join("manifest.json"),
        manifest.replace("bytenite-hello", "warm"),
    )
    .unwrap();
    assert_eq!(wait(&warm), "deployed", "{}", status(&warm, "error"));

    let app = mnt.join("bytenite/big");
    fs::create_dir_all(app.join("app")).unwrap();
    fs::copy(example.join("app/main.py"), app.join("app/main.py")).unwrap();
    for d in 0..FILES / 200 {
        let sub = app.join(format!("app/d{d}"));
        fs::create_dir(&sub).unwrap();
        for f in 0..200 {
            fs::write(sub.join(format!("f{f}")), format!("{d} {f}\n")).unwrap();
        }
    }
    let pid = pushfs.pid();
    // Measured once the files are in: their own cost (the engine's page
    // cache, the sealer's batches) is not what this test is about.
    let before = proc_kib(pid, "VmRSS");
    fs::write(
        app.join("manifest.json"),
        manifest.replace("bytenite-hello", "big"),
    )
    .unwrap();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let after = proc_kib(pid, "VmRSS");
    eprintln!("VmRSS {before} kB before the deploy, {after} kB after");
    assert!(
        after < before + 16 * 1024,
        "VmRSS went from {before} kB to {after} kB after deploying {FILES} files"
    );
}

/// Files in the huge app: enough that per-file lists dominate the mount's
/// memory, few enough to copy in within a test.
const HUGE_FILES: usize = 100_000;

/// The peak of a 100,000-file deploy above the mount's resident size
/// before it. When a deploy held several lists of the files at once (rows,
/// entries, a filtered clone, hex pins, tar items, the kept tree), this
/// took about 160 MiB (a release build: 22 MiB resting, 180 MiB peak); one
/// compact shared list takes about 28 MiB (a debug build: 38 MiB resting,
/// 66 MiB peak). The bound sits between, with room for allocator slack.
const HUGE_PEAK_MIB: u64 = 64;

#[test]
fn a_huge_deploy_holds_one_compact_list_of_its_files() {
    let setup = EmulatedSetup::new();
    let (mnt, pushfs) = (&setup.mnt, setup.start(150));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    let manifest = fs::read_to_string(example.join("manifest.json")).unwrap();

    let app = mnt.join("bytenite/huge");
    fs::create_dir_all(app.join("app")).unwrap();
    fs::copy(example.join("app/main.py"), app.join("app/main.py")).unwrap();
    for d in 0..HUGE_FILES / 1000 {
        let sub = app.join(format!("app/d{d:03}"));
        fs::create_dir(&sub).unwrap();
        for f in 0..1000 {
            // Few distinct contents: the lists cost, not the blobs.
            fs::write(sub.join(format!("f{f:03}")), format!("{}\n", f % 7)).unwrap();
        }
    }
    let pid = pushfs.pid();
    let resting = proc_kib(pid, "VmRSS");
    // The peak from here on: "5" resets VmHWM to the current RSS.
    fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    fs::write(
        app.join("manifest.json"),
        manifest.replace("bytenite-hello", "huge"),
    )
    .unwrap();
    // Packing and uploading 100,000 entries takes a while in a debug build.
    let state = wait_within(&app, Duration::from_secs(600));
    assert_eq!(state, "deployed", "{}", status(&app, "error"));
    let peak = proc_kib(pid, "VmHWM");
    eprintln!("VmRSS {resting} kB before the deploy, VmHWM {peak} kB during it");
    assert!(
        peak < resting + HUGE_PEAK_MIB * 1024,
        "deploying {HUGE_FILES} files took VmHWM to {peak} kB from {resting} kB"
    );
}
