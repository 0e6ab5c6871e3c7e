//! What the kernel may remember between requests, on a real mount. pushfs
//! answers a missing name with a negative entry the kernel keeps for a
//! second, so `cp`, `tar x` and `rsync` ask once per new file instead of
//! twice; these tests hold it to seeing every name that appears anyway.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

use common::{run, status_json, wait, TestMount};

/// Looks `path` up and expects it to be absent: the kernel now holds a
/// negative entry for it.
fn absent(path: &Path) {
    let err = fs::symlink_metadata(path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{}", path.display());
}

/// `echo LINE > .pushfs/ctl`, as a user types it.
fn ctl(app: &Path, line: &str) {
    run(Command::new("bash").arg("-c").arg(format!(
        "echo '{line}' > '{}'",
        app.join(".pushfs/ctl").display()
    )));
}

#[test]
fn a_name_seen_absent_is_there_once_another_process_makes_it() {
    let t = TestMount::with_emulators();
    let app = t.copy_example("bytenite");
    let new = app.join("app/new.txt");
    absent(&new);
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("echo hi > '{}'", new.display())));
    assert_eq!(fs::read_to_string(&new).unwrap(), "hi\n");
    fs::remove_file(&new).unwrap();
    absent(&new);
    fs::create_dir(&new).unwrap();
    assert!(new.is_dir());
}

#[test]
fn a_name_seen_absent_is_there_at_once_after_a_rollback_brings_it_back() {
    let t = TestMount::with_emulators();
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed");
    let first = status_json(&app)["digest"].as_str().unwrap().to_string();
    fs::create_dir(app.join("extra")).unwrap();
    fs::write(app.join("extra/notes.txt"), "only in version two\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    let second = status_json(&app)["digest"].as_str().unwrap().to_string();

    ctl(&app, &format!("rollback {}", &first[..10]));
    absent(&app.join("extra"));
    // The rollback puts `extra` back behind the kernel's back: it must
    // drop the negative entry it just made, not serve it for a second.
    ctl(&app, &format!("rollback {}", &second[..10]));
    assert_eq!(
        fs::read_to_string(app.join("extra/notes.txt")).unwrap(),
        "only in version two\n"
    );
    assert_eq!(wait(&app), "deployed");
}
