//! Deploy progress on a real mount: a big app pushed to a ByteNite emulator
//! that reads slowly shows how far its upload got in `status.json`, in
//! `pushfs status --json` and in `pushfs status --watch`, and shows no
//! progress once it is deployed.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{run, status, status_json, wait, TestMount, WAIT_TIMEOUT};
use pushfs::emulator::FaultPlan;

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");
const MIB: u64 = 1 << 20;
/// Big enough that its upload is still under way while the test looks.
const APP_BYTES: u64 = 64 * MIB;

/// Incompressible bytes, fast to make: xorshift64.
fn write_noise(path: &Path, len: u64) {
    let mut out = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..len / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.write_all(&x.to_le_bytes()).unwrap();
    }
    out.flush().unwrap();
}

/// The `progress` of `status.json` when it says the upload is under way.
fn uploading(app: &Path) -> Option<(u64, u64)> {
    let json = status_json(app);
    let progress = &json["progress"];
    (progress["phase"] == "uploading").then(|| {
        (
            progress["bytes_done"].as_u64().unwrap(),
            progress["bytes_total"].as_u64().unwrap(),
        )
    })
}

#[test]
fn a_slow_upload_shows_its_progress_and_none_once_deployed() {
    let t = TestMount::with_emulators();
    let emulator = &t.emulators().bytenite;
    // A slow link while the test looks; lifted below, so the upload ends.
    emulator.faults.set(FaultPlan {
        body_bytes_per_sec: 2 * MIB,
        ..FaultPlan::default()
    });
    let source = t.scratch("big");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    run(Command::new("cp").arg("-rT").arg(&example).arg(&source));
    write_noise(&source.join("app/data.bin"), APP_BYTES);
    run(Command::new("cp")
        .arg("-r")
        .arg(&source)
        .arg(t.mnt().join("bytenite")));
    let app = t.app("bytenite", "big");

    // Sent bytes are counted as the client hands them on: some, not all.
    let mut seen = None;
    common::eventually("status.json to show the upload under way", || {
        seen = uploading(&app).filter(|(done, _)| *done > 0);
        seen.is_some()
    });
    let (done, total) = seen.unwrap();
    assert!(done <= total, "{done} of {total}");
    assert!(
        total > APP_BYTES,
        "the total is the body, base64 of the tar: {total}"
    );
    assert_eq!(status(&app, "state"), "uploading");
    assert_eq!(
        status_json(&app)["busy"],
        true,
        "`.pushfs/wait` would block"
    );

    let json = run(Command::new(BIN).args(["status", "--json"]).arg(t.mnt()));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let progress = &json[0]["apps"][0]["status"]["progress"];
    assert_eq!(progress["phase"], "uploading", "{json}");
    assert_eq!(progress["bytes_total"], total);

    // Not a terminal: plain text, with the progress on the app's line.
    let mut watch = Command::new(BIN)
        .args(["status", "--watch"])
        .arg(t.mnt())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut shown = String::new();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while !shown.contains("bytenite/big: uploading  ") {
        assert!(Instant::now() < deadline, "status --watch showed: {shown}");
        let line = lines.next().expect("status --watch goes on").unwrap();
        shown.push_str(&line);
        shown.push('\n');
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert!(shown.contains(" MiB of "), "{shown}");
    assert!(
        !shown.contains('\x1b'),
        "no escape codes in a pipe: {shown:?}"
    );

    emulator.faults.clear();
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    let json = status_json(&app);
    assert!(json["progress"].is_null(), "{json}");
    assert_eq!(json["busy"], false, "{json}");
    let tar = emulator.api.stats().last_tar_len.unwrap();
    assert_eq!(
        total,
        r#"{"data":""}"#.len() as u64 + tar.div_ceil(3) * 4,
        "the total was the whole body"
    );
}
