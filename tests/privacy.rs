//! Privacy as a second local user sees it: the state directory and all it
//! holds are the mounting user's alone, the mount refuses others unless
//! `--allow-other` (and then the files' own modes decide), and a config file
//! holding secrets that others can read is worth a warning.
//!
//! The tests run as root and act as an unprivileged user created for them.
//! Every refusal is paired with a control that the same user can read a
//! world-readable file on the same path, so a refusal cannot come from an
//! unreachable temp dir or a broken user switch. The whole binary runs with
//! umask 0: privacy must come from the modes pushfs asks for, not the umask.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{eventually, other_user, MountGuard, TestMount, OTHER_USER};

const BIN: &str = env!("CARGO_BIN_EXE_pushfs");

/// Sets umask 0 for the whole test binary (it is process-wide).
fn open_umask() {
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0) };
}

/// Runs `program args` as the second user, with no supplementary groups.
fn as_other(program: &str, args: &[&Path]) -> Output {
    let (uid, gid) = other_user();
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(program)
        .args(args)
        .output()
        .expect("setpriv runs")
}

/// The second user can `cat path`; returns what it read.
fn other_reads(path: &Path) -> String {
    let out = as_other("cat", &[path]);
    assert!(
        out.status.success(),
        "{OTHER_USER} should read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `program path` as the second user fails with EACCES.
fn other_is_refused(program: &str, path: &Path) {
    let out = as_other(program, &[path]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Permission denied"),
        "{OTHER_USER}: {program} {} should fail with EACCES; status {}, stdout {:?}, stderr {stderr:?}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
    );
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A 0644 file the second user can read, next to `dir`'s contents: proves
/// the path to `dir` is open to it, so a refusal there is `dir`'s own doing.
fn control_file(dir: &Path) -> PathBuf {
    let path = dir.join("control.txt");
    fs::write(&path, "anyone may read this\n").unwrap();
    set_mode(&path, 0o644);
    assert_eq!(other_reads(&path), "anyone may read this\n");
    path
}

/// Opens the temp dir TestMount made (0700) to everyone, so the checks
/// below test the state directory's own modes.
fn open_parents(t: &TestMount) {
    set_mode(t.dir.path(), 0o755);
    control_file(t.dir.path());
}

/// Every directory and file under `root`, itself included (no symlinks followed).
fn walk(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut dirs, mut files) = (vec![root.to_path_buf()], Vec::new());
    let mut i = 0;
    while i < dirs.len() {
        for entry in fs::read_dir(&dirs[i]).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
        i += 1;
    }
    (dirs, files)
}

/// An app with a secret in it, deployed to the ByteNite emulator.
fn deploy_app_with_a_secret(t: &TestMount) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    common::run(
        Command::new("cp")
            .arg("-r")
            .arg(example)
            .arg(t.mnt().join("bytenite")),
    );
    let app = t.app("bytenite", "bytenite-hello");
    fs::write(app.join("app/.env"), "API_KEY=hunter2\n").unwrap();
    assert_eq!(common::wait(&app), "deployed");
    app
}

#[test]
fn the_state_directory_and_all_it_holds_are_the_owners_alone() {
    open_umask();
    let t = TestMount::with_emulators();
    open_parents(&t);
    let app = deploy_app_with_a_secret(&t);
    // A file being written lives in a temp file in the state directory.
    let mut writing = fs::File::create(app.join("draft.txt")).unwrap();
    writing.write_all(b"not yet sealed").unwrap();
    writing.flush().unwrap();

    let state = &t.config.state_dir;
    let has = |what: &str, pred: &dyn Fn(&Path) -> bool| {
        eventually(what, || walk(state).1.iter().any(|p| pred(p)));
    };
    let named = |name: &'static str| move |p: &Path| p.file_name().unwrap() == name;
    has("the metadata database", &named("meta.db"));
    has("its write-ahead log", &named("meta.db-wal"));
    has("a status record", &named("status.json"));
    has("a log", &named("log"));
    has("a blob", &|p| p.starts_with(state.join("objects")));
    has("a temp file", &|p| p.starts_with(state.join("tmp")));
    let (dirs, files) = walk(state);
    for dir in &dirs {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let secret = fs::read_dir(state.join("objects"))
        .unwrap()
        .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
        .map(|b| b.unwrap().path())
        .find(|b| fs::read(b).unwrap() == b"API_KEY=hunter2\n")
        .expect("the .env file's blob");

    // As the other user: the state directory cannot be listed or entered.
    other_is_refused("ls", state);
    for file in files.iter().chain([&secret]) {
        other_is_refused("cat", file);
    }

    // Even with every directory opened for traversal, each file refuses on
    // its own mode (meta.db and its -wal/-shm included).
    for dir in &dirs {
        set_mode(dir, 0o711);
    }
    let control = control_file(&dirs[dirs.len() - 1]);
    fs::remove_file(control).unwrap();
    for file in files.iter().filter(|f| f.exists()) {
        other_is_refused("cat", file);
    }
    drop(writing);
}

#[test]
fn an_open_state_directory_is_tightened_at_mount() {
    open_umask();
    let mut t = TestMount::with_emulators();
    open_parents(&t);
    deploy_app_with_a_secret(&t);
    t.unmount();
    // What an older pushfs left: everything readable by everyone.
    let state = t.config.state_dir.clone();
    let (dirs, files) = walk(&state);
    for dir in &dirs {
        set_mode(dir, 0o755);
    }
    for file in &files {
        set_mode(file, 0o644);
    }
    let blob = files
        .iter()
        .find(|f| f.starts_with(state.join("objects")))
        .unwrap();
    assert_eq!(
        other_reads(blob).len() as u64,
        fs::metadata(blob).unwrap().len()
    );

    t.mount();
    // tmp/ is emptied at mount, so some of its directories are gone.
    for dir in dirs.iter().filter(|d| d.exists()) {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    for file in files.iter().filter(|f| f.exists()) {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    other_is_refused("ls", &state);
    other_is_refused("cat", blob);
}

#[test]
fn without_allow_other_the_mount_refuses_other_users() {
    open_umask();
    let t = TestMount::with_emulators();
    open_parents(&t);
    let app = t.app("cf", "public");
    fs::create_dir(&app).unwrap();
    set_mode(&app, 0o755);
    fs::write(app.join("index.html"), "<p>hi</p>\n").unwrap();
    set_mode(&app.join("index.html"), 0o644);

    other_is_refused("ls", &t.mnt());
    other_is_refused("cat", &app.join("index.html"));
}

#[test]
fn with_allow_other_the_files_own_modes_decide() {
    open_umask();
    let t = TestMount::with_emulators_and(|config, _| config.allow_other = true);
    open_parents(&t);
    let app = t.app("cf", "shared");
    fs::create_dir(&app).unwrap();
    set_mode(&app, 0o755);
    fs::write(app.join("public.txt"), "for everyone\n").unwrap();
    set_mode(&app.join("public.txt"), 0o644);
    fs::write(app.join("secret.txt"), "API_KEY=hunter2\n").unwrap();
    set_mode(&app.join("secret.txt"), 0o600);

    assert_eq!(other_reads(&app.join("public.txt")), "for everyone\n");
    other_is_refused("cat", &app.join("secret.txt"));
    // The state directory stays private even so.
    assert_eq!(mode(&t.config.state_dir), 0o700);
    other_is_refused("ls", &t.config.state_dir);
}

/// Set-user-ID and set-group-ID go where the kernel takes them off on any
/// Linux file system: when another user writes, truncates or opens the file
/// truncating, and on chown even by root. Writes through passthrough never
/// reach pushfs, so this holds only while the kernel keeps doing it itself
/// (FUSE_HANDLE_KILLPRIV and _V2 would hand it to pushfs, which cannot).
#[test]
fn writes_by_another_user_and_chown_take_set_id_bits_off() {
    open_umask();
    let mut t = TestMount::with_emulators_and(|config, _| config.allow_other = true);
    open_parents(&t);
    let app = t.app("cf", "setid");
    fs::create_dir(&app).unwrap();
    set_mode(&app, 0o777);
    let write = |name: &str, how: &str| {
        let path = app.join(name);
        fs::write(&path, "#!/bin/sh\necho hello\n").unwrap();
        set_mode(&path, 0o6777);
        common::wait(&app);
        assert_eq!(mode(&path), 0o6777, "{name}: chmod 6777");
        let (uid, gid) = other_user();
        let out = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(["sh", "-c", how])
            .arg(&path)
            .output()
            .expect("setpriv runs");
        assert!(
            out.status.success(),
            "{OTHER_USER}: {how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&path), 0o777, "{name}: {how} as {OTHER_USER}");
    };
    write("appended", "echo more >> \"$0\"");
    write("truncated", "truncate -s 2 \"$0\"");
    write("rewritten", "echo new > \"$0\"");

    let chowned = app.join("chowned");
    fs::write(&chowned, "x").unwrap();
    set_mode(&chowned, 0o6755);
    let (uid, gid) = other_user();
    std::os::unix::fs::chown(&chowned, Some(uid), Some(gid)).unwrap();
    assert_eq!(mode(&chowned), 0o755, "chown by root");
    // What the engine kept, not only what the kernel cached.
    common::wait(&app);
    t.remount();
    for (name, want) in [
        ("appended", 0o777),
        ("truncated", 0o777),
        ("rewritten", 0o777),
        ("chowned", 0o755),
    ] {
        assert_eq!(mode(&app.join(name)), want, "{name} after a remount");
    }
}

/// `pushfs mount`, stopped with SIGTERM once mounted; returns its stderr.
fn mount_and_stop(dir: &Path, extra: &[&Path]) -> String {
    let mnt = dir.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let _guard = MountGuard::new(&mnt);
    let child: Child = Command::new(BIN)
        .arg("mount")
        .arg(&mnt)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(extra)
        .env("HOME", dir)
        .env_remove("PUSHFS_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pushfs starts");
    eventually("the mount", || mnt.join("cf").is_dir());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_config_with_a_token_open_to_others_is_warned_about() {
    open_umask();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    fs::write(&config, "[cf]\ntoken = \"bearer s3cret-token\"\n").unwrap();
    set_mode(&config, 0o644);
    let stderr = mount_and_stop(dir.path(), &[Path::new("--config"), &config]);
    assert!(
        stderr.contains("[cf] token")
            && stderr.contains("(mode 0644)")
            && stderr.contains(&format!("chmod 600 {}", config.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-token"), "{stderr}");

    set_mode(&config, 0o600);
    let stderr = mount_and_stop(dir.path(), &[Path::new("--config"), &config]);
    assert!(!stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn tightening_an_open_state_directory_is_logged_once() {
    open_umask();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    fs::create_dir_all(state.join("apps/a1")).unwrap();
    fs::write(state.join("apps/a1/log"), "old log\n").unwrap();
    set_mode(&state, 0o755);
    set_mode(&state.join("apps"), 0o755);
    set_mode(&state.join("apps/a1"), 0o755);
    set_mode(&state.join("apps/a1/log"), 0o644);
    let stderr = mount_and_stop(dir.path(), &[]);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("open to other users"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("made 4 entries private"), "{stderr}");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("apps/a1/log")), 0o600);

    let stderr = mount_and_stop(dir.path(), &[]);
    assert!(!stderr.contains("open to other users"), "{stderr}");
}

#[test]
fn pushfs_status_skips_a_mount_the_caller_cannot_read() {
    open_umask();
    let private = TestMount::with_emulators();
    open_parents(&private);
    let shared = TestMount::with_emulators_and(|config, _| config.allow_other = true);
    open_parents(&shared);
    fs::create_dir(shared.app("cf", "site")).unwrap();

    let out = as_other(BIN, &[Path::new("status")]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{}\n  cf/site: ", shared.mnt().display())),
        "{stdout}"
    );
    assert!(!stdout.contains(&private.mnt().display().to_string()));
    let note = format!(
        "pushfs status: skipped {}: permission denied",
        private.mnt().display()
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with(&note)).count(),
        1,
        "{stderr}"
    );

    // Named, an unreadable mount is still the error it was.
    let out = as_other(BIN, &[Path::new("status"), &private.mnt()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
