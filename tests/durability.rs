//! Durability of the metadata engine, with the real binary in its own
//! process so it can die: `kill -9` in the middle of a copy loses no closed
//! file, an fsynced file survives, SIGINT during a copy stops cleanly, an
//! unclean stop holds a half-copied app until the user releases it, and a
//! full state disk answers ENOSPC and gets its space back without a remount.
//!
//! A file counts as written once `close` returned 0: the copiers close
//! explicitly instead of dropping the `File`, which would hide a failing
//! close. Contents are derived from a (tag, index) pair, so every file can
//! be checked byte for byte after the restart without keeping copies.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::child::{in_mount_table, lazy_unmount, EmulatedSetup, Pushfs, EXIT_TIMEOUT};
use common::within;
use pushfs::emulator::cf::DEMO_SPACE_GUID;

/// Subdirectories the copiers spread their files over.
const SUBDIRS: usize = 5;
const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// A small, seedable generator: kill moments and file contents.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The seed of this run: `PUSHFS_CRASH_SEED` replays one, else the clock.
fn run_seed() -> u64 {
    if let Some(seed) = std::env::var("PUSHFS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return seed;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// The bytes of file `index` of copy `tag`, `len` long.
fn content(tag: u64, index: usize, len: usize) -> Vec<u8> {
    let mut rng = XorShift::new((tag << 32) ^ index as u64);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// 1 to 20 KiB, depending on the file.
fn small_len(tag: u64, index: usize) -> usize {
    let mut rng = XorShift::new((tag << 40) ^ (index as u64) ^ 0x5EED);
    KIB + (rng.next() % (19 * KIB as u64 + 1)) as usize
}

/// A file whose write and close succeeded, relative to the mount point.
#[derive(Debug, Clone)]
struct Closed {
    path: PathBuf,
    tag: u64,
    index: usize,
    len: usize,
}

impl Closed {
    fn expected(&self) -> Vec<u8> {
        content(self.tag, self.index, self.len)
    }
}

/// Closes `file` and reports what `close` said (dropping a `File` ignores it).
fn close(file: File) -> io::Result<()> {
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just taken from the `File`, so it is ours and closed once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Which step of writing a file failed, and how.
#[derive(Debug)]
struct WriteFailure {
    step: &'static str,
    error: io::Error,
}

/// Creates `path` (it must not exist), writes `bytes` and closes it.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), WriteFailure> {
    let fail = |step| move |error| WriteFailure { step, error };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail("create"))?;
    for chunk in bytes.chunks(256 * KIB) {
        file.write_all(chunk).map_err(fail("write"))?;
    }
    close(file).map_err(fail("close"))
}

/// Polls `cond` every 20 ms until it holds, failing the test after `limit`.
fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads every file back through the mount and compares it byte for byte.
fn check_files(mnt: &Path, files: &[Closed]) {
    let (mnt, files) = (mnt.to_path_buf(), files.to_vec());
    let count = files.len();
    let bad = within(
        "reading the closed files back",
        Duration::from_secs(60),
        move || {
            let mut bad = Vec::new();
            for file in &files {
                match fs::read(mnt.join(&file.path)) {
                    Ok(bytes) if bytes == file.expected() => {}
                    Ok(bytes) => bad.push(format!(
                        "{}: {} bytes differ from the {} written",
                        file.path.display(),
                        bytes.len(),
                        file.len
                    )),
                    Err(err) => bad.push(format!("{}: {err}", file.path.display())),
                }
            }
            bad
        },
    );
    assert!(
        bad.is_empty(),
        "{} of {count} closed files are not intact:\n{}",
        bad.len(),
        bad[..bad.len().min(10)].join("\n")
    );
}

fn free_bytes(path: &Path) -> u64 {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c_path.as_ptr(), &mut st) }, 0);
    st.f_bavail * st.f_frsize
}

fn read_status(app: &Path, file: &str) -> String {
    fs::read_to_string(app.join(".pushfs").join(file))
        .unwrap_or_else(|e| panic!("reading {}/.pushfs/{file}: {e}", app.display()))
        .trim()
        .to_string()
}

/// Unmounts a file system the test mounted (the tmpfs), lazily, on drop.
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        lazy_unmount(&self.0);
    }
}

/// Mounts a 64 MiB tmpfs on `state` (created), unmounted when the guard drops.
fn small_disk(state: &Path) -> UnmountOnDrop {
    fs::create_dir(state).unwrap();
    common::run(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
            .arg(state),
    );
    UnmountOnDrop(state.to_path_buf())
}

/// Waits until `disk` has about as much free space as `before` (within 4
/// MiB: the engine's database may grow a little), failing after 10 s.
fn until_space_comes_back(disk: &Path, before: u64) {
    let slack = 4 * MIB as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while free_bytes(disk) + slack < before {
        assert!(
            Instant::now() < deadline,
            "deleted files still hold their space while mounted: {} MiB free, {} MiB before they were written",
            free_bytes(disk) >> 20,
            before >> 20
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A temp dir with an empty `mnt/` and a `state/` path.
fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let state = dir.path().join("state");
    (dir, mnt, state)
}

/// A thread writing `count` small files into `app` (relative to the mount),
/// spread over [`SUBDIRS`] new subdirectories; it stops at its first error.
struct Copier {
    closed: Arc<Mutex<Vec<Closed>>>,
    done: mpsc::Receiver<Option<io::Error>>,
    /// How it ended, once [`Copier::running`] saw it end.
    ended: Option<Option<io::Error>>,
}

impl Copier {
    fn start(mnt: &Path, app: &Path, tag: u64, count: usize) -> Copier {
        let closed = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let (mnt, app, record) = (mnt.to_path_buf(), app.to_path_buf(), closed.clone());
        std::thread::spawn(move || {
            let copy = || -> io::Result<()> {
                for i in 0..count {
                    let dir = app.join(format!("r{tag}-d{}", i % SUBDIRS));
                    if i < SUBDIRS {
                        // Not create_dir_all: once the mount is gone this
                        // must fail, not write under the mount point.
                        fs::create_dir(mnt.join(&dir))?;
                    }
                    let path = dir.join(format!("f{i}.bin"));
                    let len = small_len(tag, i);
                    write_file(&mnt.join(&path), &content(tag, i, len)).map_err(|f| f.error)?;
                    record.lock().unwrap().push(Closed {
                        path,
                        tag,
                        index: i,
                        len,
                    });
                }
                Ok(())
            };
            let _ = tx.send(copy().err());
        });
        Copier {
            closed,
            done,
            ended: None,
        }
    }

    /// Whether the copier is still writing.
    fn running(&mut self) -> bool {
        if self.ended.is_none() {
            self.ended = self.done.try_recv().ok();
        }
        self.ended.is_none()
    }

    /// Waits for the copier to stop; returns the files it closed and its error.
    fn finish(mut self, limit: Duration) -> (Vec<Closed>, Option<io::Error>) {
        let ended = match self.ended.take() {
            Some(ended) => Ok(ended),
            None => self.done.recv_timeout(limit),
        };
        let error = match ended {
            Ok(error) => error,
            Err(RecvTimeoutError::Timeout) => panic!("the copier hung for {limit:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the copier panicked"),
        };
        let closed = std::mem::take(&mut *self.closed.lock().unwrap());
        (closed, error)
    }
}

#[test]
fn crash_test_every_closed_file_survives_kill_9() {
    let seed = run_seed();
    println!("seed {seed} (replay with PUSHFS_CRASH_SEED={seed})");
    let mut rng = XorShift::new(seed);
    let (_dir, mnt, state) = dirs();
    let app = Path::new("cf/crash");
    let mut survivors: Vec<Closed> = Vec::new();
    const COPIERS: u64 = 2;
    for round in 0..4u64 {
        let pushfs = Pushfs::start(&mnt, &state, 150, None);
        // What every earlier crash left must be there, whole.
        check_files(&mnt, &survivors);
        if round == 0 {
            fs::create_dir(mnt.join(app)).unwrap();
        }
        // Two copiers at once, so seals and creates race in the engine.
        let mut copiers: Vec<Copier> = (0..COPIERS)
            .map(|c| {
                let tag = seed.wrapping_add(round * COPIERS + c) & 0xFFFF_FFFF;
                Copier::start(&mnt, app, tag, 50_000)
            })
            .collect();
        let kill_after = Duration::from_millis(100 + rng.next() % 701);
        std::thread::sleep(kill_after);
        let still_copying = copiers.iter_mut().all(|c| c.running());
        pushfs.kill_9();
        let mut closed_now = 0;
        for copier in copiers {
            let (closed, error) = copier.finish(Duration::from_secs(20));
            println!(
                "round {round}: killed after {kill_after:?}; {} files closed, then {error:?}",
                closed.len()
            );
            closed_now += closed.len();
            survivors.extend(closed);
        }
        assert!(still_copying, "a copier finished before the kill");
        assert!(closed_now > 0, "round {round}: no file was closed");
    }
    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    check_files(&mnt, &survivors);
    pushfs.stop();
}

#[test]
fn fsync_close_then_kill_9() {
    let (_dir, mnt, state) = dirs();
    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    fs::create_dir_all(mnt.join("cf/synced/deep/er")).unwrap();
    let file = Closed {
        path: PathBuf::from("cf/synced/deep/er/data.bin"),
        tag: 7,
        index: 0,
        len: 3 * MIB + 17,
    };
    let mut f = File::create_new(mnt.join(&file.path)).unwrap();
    f.write_all(&file.expected()).unwrap();
    f.sync_all().unwrap();
    close(f).unwrap();
    pushfs.kill_9();

    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    check_files(&mnt, &[file]);
    pushfs.stop();
}

#[test]
fn sigint_during_a_copy_loses_no_closed_file() {
    let (_dir, mnt, state) = dirs();
    let mut pushfs = Pushfs::start(&mnt, &state, 150, None);
    let app = Path::new("cf/sigint");
    fs::create_dir(mnt.join(app)).unwrap();
    let mut copier = Copier::start(&mnt, app, 3, 3_000);
    std::thread::sleep(Duration::from_millis(300));
    assert!(copier.running(), "the copier finished before SIGINT");
    pushfs.signal(libc::SIGINT);
    let (closed, error) = copier.finish(Duration::from_secs(60));
    println!("{} files closed, copier stopped by {error:?}", closed.len());
    let status = pushfs.wait_exit(EXIT_TIMEOUT);
    let log = pushfs.log();
    assert!(status.success(), "pushfs exited with {status}:\n{log}");
    // Listing asks the file system itself; a stat may be answered from the
    // kernel's attribute cache even when the mount is dead.
    for answer in [
        fs::metadata(&mnt).map(|_| ()),
        fs::read_dir(&mnt).map(|_| ()),
    ] {
        if let Err(err) = answer {
            panic!("the mount point after exit: {err} (a dead mount left behind)\n{log}");
        }
    }
    assert!(!in_mount_table(&mnt), "the mount outlived pushfs:\n{log}");
    lazy_unmount(&mnt);
    let left: Vec<_> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "written under the mount point after pushfs exited: {left:?}"
    );
    drop(pushfs);

    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    check_files(&mnt, &closed);
    pushfs.stop();
}

#[test]
fn an_unclean_stop_holds_a_half_copied_app() {
    let setup = EmulatedSetup::new();
    let (mnt, emulators) = (&setup.mnt, &setup.emulators);

    let pushfs = setup.start(60_000);
    let app = mnt.join("cf/half");
    fs::create_dir_all(app.join("static")).unwrap();
    let files: Vec<Closed> = (0..4)
        .map(|i| Closed {
            path: PathBuf::from(format!("cf/half/static/part{i}.bin")),
            tag: 4,
            index: i,
            len: small_len(4, i),
        })
        .collect();
    for file in &files {
        write_file(&mnt.join(&file.path), &file.expected()).unwrap();
    }
    fs::write(app.join("index.html"), "<p>half</p>\n").unwrap();
    fs::write(
        app.join("spec.json"),
        format!(r#"{{"name":"half","space_guid":"{DEMO_SPACE_GUID}"}}"#),
    )
    .unwrap();
    assert_eq!(
        read_status(&app, "state"),
        "pending",
        "settling for a minute"
    );
    pushfs.kill_9();

    let settle = Duration::from_millis(150);
    let pushfs = setup.start(settle.as_millis() as u64);
    until("the app to come back held", Duration::from_secs(5), || {
        read_status(&app, "state") == "held"
    });
    let error = read_status(&app, "error");
    assert!(
        error.contains("recovered after an unclean stop"),
        "error: {error}"
    );
    let log = read_status(&app, "log");
    assert!(
        log.contains("recovered after an unclean stop"),
        "log:\n{log}"
    );
    assert_eq!(common::wait(&app), "held");
    // Well past the settle time, nothing moves.
    let quiet_until = Instant::now() + 3 * settle;
    while Instant::now() < quiet_until {
        assert_eq!(read_status(&app, "state"), "held");
        assert!(emulators.cf.api.uploads().is_empty(), "uploaded while held");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(common::wait(&app), "held");
    assert_eq!(read_status(&app, "hash"), "");
    assert!(emulators.cf.api.uploads().is_empty(), "uploaded while held");
    check_files(mnt, &files);
    assert_eq!(
        fs::read_to_string(app.join("index.html")).unwrap(),
        "<p>half</p>\n"
    );

    fs::write(app.join(".pushfs/ctl"), "deploy\n").unwrap();
    assert_eq!(
        common::wait(&app),
        "deployed",
        "{}",
        read_status(&app, "error")
    );
    assert_eq!(emulators.cf.api.uploads().len(), 1);
    assert_eq!(
        read_status(&app, "hash").len(),
        64,
        "hex SHA-256 of the zip"
    );
    assert_eq!(read_status(&app, "error"), "");
    pushfs.stop();
}

#[test]
fn enospc_on_a_small_state_disk() {
    let (_dir, mnt, state) = dirs();
    let _tmpfs = small_disk(&state);
    let mut pushfs = Pushfs::start(&mnt, &state, 150, None);

    // Kept to the end: two files written while the disk had room.
    fs::create_dir(mnt.join("cf/keep")).unwrap();
    let mut kept: Vec<Closed> = (0..2)
        .map(|i| Closed {
            path: PathBuf::from(format!("cf/keep/k{i}.bin")),
            tag: 50,
            index: i,
            len: MIB + i,
        })
        .collect();
    for file in &kept {
        write_file(&mnt.join(&file.path), &file.expected()).unwrap();
    }
    let free_at_start = free_bytes(&state);

    // Fill the disk: 4 MiB files until a step fails; 40 of them are 160 MiB.
    fs::create_dir(mnt.join("cf/full")).unwrap();
    let fill_mnt = mnt.clone();
    let (written, failure) = within(
        "filling the state disk",
        Duration::from_secs(60),
        move || {
            for i in 0..40 {
                let path = fill_mnt.join(format!("cf/full/f{i}.bin"));
                if let Err(failure) = write_file(&path, &content(51, i, 4 * MIB)) {
                    return (i, Some(failure));
                }
            }
            (40, None)
        },
    );
    let failure = failure.unwrap_or_else(|| {
        panic!("wrote {written} files of 4 MiB to a 64 MiB state disk without an error")
    });
    println!(
        "after {written} files: {} failed with {}",
        failure.step, failure.error
    );
    assert_eq!(
        failure.error.raw_os_error(),
        Some(libc::ENOSPC),
        "{} on a full state disk must fail with ENOSPC, not {}:\n{}",
        failure.step,
        failure.error,
        pushfs.log()
    );

    // Deleting gives the space back while mounted.
    let rm = Command::new("rm")
        .arg("-rf")
        .arg(mnt.join("cf/full"))
        .output()
        .unwrap();
    let rm_said = String::from_utf8_lossy(&rm.stderr);
    assert!(
        rm.status.success(),
        "rm -rf on the full state disk failed ({} lines), e.g. {}\npushfs:\n{}",
        rm_said.lines().count(),
        rm_said.lines().next().unwrap_or_default(),
        pushfs.log()
    );
    assert!(!mnt.join("cf/full").exists());
    until_space_comes_back(&state, free_at_start);

    // And the disk takes files again.
    fs::create_dir(mnt.join("cf/again")).unwrap();
    let again: Vec<Closed> = (0..4)
        .map(|i| Closed {
            path: PathBuf::from(format!("cf/again/a{i}.bin")),
            tag: 52,
            index: i,
            len: 2 * MIB + i,
        })
        .collect();
    for file in &again {
        write_file(&mnt.join(&file.path), &file.expected())
            .unwrap_or_else(|f| panic!("{} after freeing space: {}", f.step, f.error));
    }
    kept.extend(again);
    check_files(&mnt, &kept);

    pushfs.signal(libc::SIGTERM);
    let status = pushfs.wait_exit(EXIT_TIMEOUT);
    assert!(
        status.success(),
        "pushfs exited with {status}:\n{}",
        pushfs.log()
    );
    drop(pushfs);

    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    check_files(&mnt, &kept);
    assert!(!mnt.join("cf/full").exists(), "the deleted app came back");
    pushfs.stop();
}

#[test]
fn removing_files_right_after_close_frees_their_space_while_mounted() {
    let (_dir, mnt, state) = dirs();
    let _tmpfs = small_disk(&state);
    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    let free_at_start = free_bytes(&state);
    // 40 MiB: most of them still wait for their seal when rm comes.
    fs::create_dir(mnt.join("cf/brief")).unwrap();
    for i in 0..10 {
        let path = mnt.join(format!("cf/brief/f{i}.bin"));
        write_file(&path, &content(60, i, 4 * MIB))
            .unwrap_or_else(|f| panic!("{} of f{i}: {}", f.step, f.error));
    }
    common::run(Command::new("rm").arg("-rf").arg(mnt.join("cf/brief")));
    until_space_comes_back(&state, free_at_start);
    pushfs.stop();
}

/// Ctrl-C while `cp -r` runs: pushfs waits until the copy has been quiet
/// for the settle time, so the copy ends whole and nothing of it lands
/// beneath the mount point once the mount is gone.
#[test]
fn sigint_during_cp_r_waits_for_the_copy_and_nothing_lands_beneath() {
    let (dir, mnt, state) = dirs();
    let mut pushfs = Pushfs::start(&mnt, &state, 300, None);
    let src = dir.path().join("src");
    common::write_tree(&src, 4000);
    fs::create_dir(mnt.join("cf/copied")).unwrap();
    let mut cp = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(mnt.join("cf/copied"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mnt.join("cf/copied/d0").exists() {
        assert!(Instant::now() < deadline, "the copy never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    pushfs.signal(libc::SIGINT);
    let copied = cp.wait().unwrap();
    let status = pushfs.wait_exit(EXIT_TIMEOUT);
    let log = pushfs.log();
    assert!(
        copied.success(),
        "cp failed: the mount went away under it\n{log}"
    );
    assert!(status.success(), "pushfs exited with {status}:\n{log}");
    assert!(
        log.contains("waiting until no file is open"),
        "the wait is said on stderr:\n{log}"
    );
    assert!(!in_mount_table(&mnt), "the mount outlived pushfs:\n{log}");
    lazy_unmount(&mnt);
    let left: Vec<_> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "written beneath the mount point: {left:?}");
    drop(pushfs);

    let pushfs = Pushfs::start(&mnt, &state, 300, None);
    common::run(
        Command::new("diff")
            .arg("-r")
            .arg(&src)
            .arg(mnt.join("cf/copied")),
    );
    pushfs.stop();
}

/// An overwrite of a deployed-then-remounted app, killed midway: the first
/// change of the run (a rewrite in place, O_TRUNC) recorded the mark, so
/// the app comes back held instead of deploying a mix of old and new.
#[test]
fn an_overwrite_killed_midway_comes_back_held() {
    let (_dir, mnt, state) = dirs();
    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    let app = mnt.join("cf/overwritten");
    fs::create_dir_all(&app).unwrap();
    for i in 0..20 {
        fs::write(app.join(format!("f{i}.txt")), "v1").unwrap();
    }
    pushfs.stop();

    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    let state_of = |app: &Path| fs::read_to_string(app.join(".pushfs/state")).unwrap();
    assert_ne!(state_of(&app).trim(), "held", "a clean stop holds nothing");
    for i in 0..5 {
        fs::write(app.join(format!("f{i}.txt")), "v2").unwrap();
    }
    pushfs.kill_9();

    let pushfs = Pushfs::start(&mnt, &state, 150, None);
    assert_eq!(state_of(&app).trim(), "held");
    let error = fs::read_to_string(app.join(".pushfs/error")).unwrap();
    assert!(error.contains("unclean stop"), "{error}");
    pushfs.stop();
}
