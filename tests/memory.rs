//! Memory over a long run: a mount that deployed a big app goes back to a
//! small size instead of keeping what the deploy's file lists took.

mod common;

use std::fs;
use std::path::Path;

use common::child::{proc_kib, EmulatedSetup};
use common::{status, wait};

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
