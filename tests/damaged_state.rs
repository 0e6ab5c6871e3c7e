//! A damaged state directory never deletes data (issue 17, point 6), with
//! the real binary in its own process: a lost database is refused, a new
//! one sets the old blobs aside, a log that SQLite would cut short is
//! detected and its files come back through `pushfs fsck`, a corrupt
//! database is refused without spending the reserve, and a missing blob is
//! EIO with the log naming it.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::child::{lazy_unmount, EmulatedSetup, Pushfs};
use common::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");
const HOLD_DB: &str = "PUSHFS_TEST_HOLD_DB";

/// Regular files under `dir`'s two-level fan-out (`objects/`, `tmp/`).
fn fanned_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in fs::read_dir(dir).into_iter().flatten().flatten() {
        for file in fs::read_dir(sub.path()).into_iter().flatten().flatten() {
            if file.file_type().unwrap().is_file() {
                files.push(file.path());
            }
        }
    }
    files
}

/// The stored blobs' contents, by SHA-256.
fn blobs(state: &Path) -> BTreeMap<String, Vec<u8>> {
    fanned_files(&state.join("objects"))
        .into_iter()
        .map(|p| {
            let rest = p.file_name().unwrap().to_string_lossy().into_owned();
            let prefix = p
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (format!("{prefix}{rest}"), fs::read(&p).unwrap())
        })
        .collect()
}

/// lost+found's content files, by name.
fn lost_found(state: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(state.join("lost+found"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Waits until every file written so far is sealed: no temp file is left.
fn all_sealed(state: &Path, blobs_at_least: usize) {
    eventually("every file sealed into a blob", || {
        fanned_files(&state.join("tmp")).is_empty() && blobs(state).len() >= blobs_at_least
    });
}

/// `pushfs mount` that must fail: its exit status and stderr. A mount that
/// comes up after all is stopped and fails the test.
fn mount_refused(setup: &EmulatedSetup, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let stderr = setup.dir.path().join("refused.stderr");
    let mut child = Command::new(BIN)
        .arg("mount")
        .arg(&setup.mnt)
        .arg("--state-dir")
        .arg(&setup.state)
        .arg("--config")
        .arg(&setup.config)
        .args(extra)
        .env("HOME", setup.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            lazy_unmount(&setup.mnt);
            panic!("pushfs mounted: {}", fs::read_to_string(&stderr).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, fs::read_to_string(&stderr).unwrap())
}

fn fsck(state: &Path, extra: &[&str]) -> (i32, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .arg("fsck")
        .arg(state)
        .args(extra)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    (status.code().expect("fsck exits"), text)
}

fn remove_database(state: &Path) {
    for name in ["meta.db", "meta.db-wal", "meta.db-shm"] {
        let _ = fs::remove_file(state.join(name));
    }
}

fn write_files(app: &Path, dir: &str, tag: &str, count: usize) -> Vec<(String, Vec<u8>)> {
    fs::create_dir_all(app.join(dir)).unwrap();
    (0..count)
        .map(|i| {
            let rel = format!("{dir}/f{i}.txt");
            let bytes = format!("{tag} file {i}\n").repeat(i + 3).into_bytes();
            fs::write(app.join(&rel), &bytes).unwrap();
            (rel, bytes)
        })
        .collect()
}

#[test]
fn a_lost_database_is_refused_and_a_new_state_sets_the_blobs_aside() {
    let setup = EmulatedSetup::new();
    let pushfs = setup.start(300);
    let app = setup.mnt.join("cf/shop");
    let written = write_files(&app, "src", "old", 12);
    all_sealed(&setup.state, written.len());
    let (code, text) = fsck(&setup.state, &[]);
    assert_eq!(code, 8, "fsck of a mounted state dir: {text}");
    assert!(text.contains("in use by a running pushfs"), "{text}");
    pushfs.stop();
    let before = blobs(&setup.state);
    assert!(before.len() >= written.len());

    remove_database(&setup.state);
    let (status, stderr) = mount_refused(&setup, &[]);
    assert!(!status.success());
    assert!(
        stderr.contains("no metadata database") && stderr.contains("--new-state"),
        "{stderr}"
    );
    assert_eq!(
        blobs(&setup.state),
        before,
        "a refused mount touches no blob"
    );

    fs::write(setup.state.join("meta.db"), b"").unwrap();
    let (status, stderr) = mount_refused(&setup, &[]);
    assert!(
        !status.success(),
        "an empty meta.db is no database: {stderr}"
    );
    assert_eq!(blobs(&setup.state), before);

    let pushfs = Pushfs::start_with(
        &setup.mnt,
        &setup.state,
        300,
        Some(&setup.config),
        &["--new-state"],
    );
    assert!(!app.exists(), "a new state starts empty");
    let log = pushfs.log();
    assert!(log.contains("WARN") && log.contains("lost+found"), "{log}");
    assert_eq!(
        lost_found(&setup.state),
        before,
        "every old blob is in lost+found, byte for byte"
    );
    pushfs.stop();

    let (code, text) = fsck(&setup.state, &[]);
    assert_eq!(code, 4, "{text}");
    for sha in before.keys() {
        assert!(text.contains(sha.as_str()), "fsck lists {sha}: {text}");
    }
    assert_eq!(
        lost_found(&setup.state),
        before,
        "fsck without options changes nothing"
    );
    let (code, text) = fsck(&setup.state, &["--purge"]);
    assert_eq!(code, 1, "{text}");
    assert!(lost_found(&setup.state).is_empty());
    let (code, text) = fsck(&setup.state, &[]);
    assert_eq!(code, 0, "{text}");

    let (status, stderr) = mount_refused(&setup, &["--new-state"]);
    assert!(!status.success());
    assert!(
        stderr.contains("has a metadata database already"),
        "{stderr}"
    );
}

/// Not a test on its own: `a_garbled_log_...` runs it in a process of its
/// own to hold a read snapshot of the database, which keeps the
/// checkpointer from folding later commits in, until it is killed.
#[test]
#[ignore = "a helper process of a_garbled_log_after_kill_9_loses_no_file"]
fn hold_a_read_snapshot() {
    let db = std::env::var(HOLD_DB).expect("run by the garbled-log test");
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    let inodes: i64 = conn
        .query_row("SELECT count(*) FROM inode", [], |r| r.get(0))
        .unwrap();
    assert!(inodes > 0);
    println!("holding");
    std::io::stdout().flush().unwrap();
    // Until the test kills this process.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

#[test]
fn a_garbled_log_after_kill_9_loses_no_file() {
    let setup = EmulatedSetup::new();
    let pushfs = setup.start(300);
    let app = setup.mnt.join("cf/shop");
    let first = write_files(&app, "a", "first", 10);
    all_sealed(&setup.state, first.len());

    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "hold_a_read_snapshot",
            "--nocapture",
        ])
        .env(HOLD_DB, setup.state.join("meta.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("holding"))),
        "the snapshot holder did not start"
    );
    // Acknowledged (closed) after the snapshot: only in the log.
    let second = write_files(&app, "b", "second", 20);
    all_sealed(&setup.state, first.len() + second.len());
    pushfs.kill_9();
    holder.kill().unwrap();
    holder.wait().unwrap();

    // Garble the stored checksum of the log's first frame: SQLite replays
    // nothing of it, silently.
    let wal = setup.state.join("meta.db-wal");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&wal)
        .unwrap();
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(32 + 16)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(32 + 16)).unwrap();
    file.write_all(&[byte[0] ^ 0xff]).unwrap();
    drop(file);

    let pushfs = setup.start(300);
    let log = pushfs.log();
    assert!(log.contains("WARN") && log.contains("is damaged"), "{log}");
    assert!(log.contains("lost+found"), "{log}");
    let found = lost_found(&setup.state);
    for (rel, bytes) in first.iter().chain(&second) {
        let in_tree = fs::read(app.join(rel)).ok().as_ref() == Some(bytes);
        let set_aside = found.values().any(|b| b == bytes);
        assert!(
            in_tree || set_aside,
            "{rel} is neither in the tree nor in lost+found"
        );
    }
    for (rel, bytes) in &second {
        assert!(
            !app.join(rel).exists(),
            "{rel} came back though its log frames were dropped"
        );
        assert!(
            found.values().any(|b| b == bytes),
            "{rel}'s bytes are in lost+found"
        );
    }
    pushfs.stop();

    let (code, text) = fsck(&setup.state, &[]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("damaged database kept at"), "{text}");
    for (rel, _) in &second {
        assert!(
            text.contains(&format!("cf/shop/{rel}")),
            "fsck names {rel}: {text}"
        );
    }
    let out = setup.dir.path().join("restored");
    let (code, text) = fsck(&setup.state, &["--restore-to", out.to_str().unwrap()]);
    assert_eq!(code, 4, "lost+found still holds them: {text}");
    for (rel, bytes) in &second {
        let restored = fs::read(out.join("cf/shop").join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}\n{text}"));
        assert_eq!(&restored, bytes, "{rel}");
    }
    let (code, text) = fsck(&setup.state, &["--purge"]);
    assert_eq!(code, 1, "{text}");
    assert!(lost_found(&setup.state).is_empty());
    assert!(
        !setup
            .state
            .join("lost+found")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "the damaged copy went too"
    );
}

#[test]
fn a_corrupt_database_is_refused_without_spending_the_reserve() {
    let setup = EmulatedSetup::new();
    let pushfs = setup.start(300);
    let written = write_files(&setup.mnt.join("cf/shop"), "src", "kept", 5);
    all_sealed(&setup.state, written.len());
    pushfs.stop();
    let before = blobs(&setup.state);
    let reserve = setup.state.join("meta.reserve");
    let reserve_len = fs::metadata(&reserve).unwrap().len();
    assert!(reserve_len > 0);

    let db = setup.state.join("meta.db");
    let len = fs::metadata(&db).unwrap().len() as usize;
    let junk: Vec<u8> = (0..len).map(|i| (i * 7 + 13) as u8).collect();
    remove_database(&setup.state);
    fs::write(&db, junk).unwrap();

    let (status, stderr) = mount_refused(&setup, &[]);
    assert!(!status.success());
    assert!(
        stderr.contains("is damaged") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("disk is full"), "{stderr}");
    assert_eq!(
        fs::metadata(&reserve).unwrap().len(),
        reserve_len,
        "meta.reserve is intact"
    );
    assert_eq!(blobs(&setup.state), before);
    assert!(lost_found(&setup.state).is_empty(), "nothing was swept");
}

#[test]
fn a_missing_blob_is_eio_named_in_the_log_and_fsck_restores_it() {
    let setup = EmulatedSetup::new();
    let pushfs = setup.start(300);
    let app = setup.mnt.join("cf/shop");
    let written = write_files(&app, "src", "precious", 1);
    all_sealed(&setup.state, 1);
    let (rel, bytes) = &written[0];
    let sha = blobs(&setup.state)
        .into_iter()
        .find(|(_, b)| b == bytes)
        .map(|(sha, _)| sha)
        .expect("the file's blob");
    let blob_path = setup.state.join("objects").join(&sha[..2]).join(&sha[2..]);
    let aside = setup.dir.path().join("aside");
    fs::rename(&blob_path, &aside).unwrap();

    let err = fs::read(app.join(rel)).expect_err("the blob is gone");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    let log = pushfs.log();
    assert!(
        log.contains("ERROR") && log.contains(&format!("cf/shop/{rel}")) && log.contains(&sha),
        "{log}"
    );
    pushfs.stop();

    let (code, text) = fsck(&setup.state, &[]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("missing: cf/shop/src/f0.txt"), "{text}");
    fs::create_dir_all(setup.state.join("lost+found")).unwrap();
    fs::rename(&aside, setup.state.join("lost+found").join(&sha)).unwrap();
    let (code, text) = fsck(&setup.state, &[]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("restorable: the database names it"), "{text}");
    let (code, text) = fsck(&setup.state, &["--restore"]);
    assert_eq!(code, 1, "{text}");
    let pushfs = setup.start(300);
    assert_eq!(&fs::read(app.join(rel)).unwrap(), bytes);
    pushfs.stop();
}
