//! `.pushfs/history` and `rollback` on a real mount: every deploy leaves a
//! line, and writing `rollback <digest>` to ctl puts the folder back to
//! that tree and deploys it, in a way that can itself be undone.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{status, status_json, wait, TestMount};

/// The history's lines, split into their words: time, outcome, digest,
/// server, kept.
fn history(app: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(app.join(".pushfs/history"))
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// `echo LINE > .pushfs/ctl` through a shell, as a user types it; true if
/// the write succeeded.
fn ctl(app: &Path, line: &str) -> bool {
    Command::new("bash")
        .arg("-c")
        .arg(format!(
            "echo '{line}' > '{}'",
            app.join(".pushfs/ctl").display()
        ))
        .status()
        .unwrap()
        .success()
}

/// The CF example, copied in with `cp -r` and deployed.
fn deployed_example(t: &TestMount) -> PathBuf {
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed");
    app
}

#[test]
fn rollback_restores_a_deployed_tree_deploys_it_and_can_be_undone() {
    let mut t = TestMount::with_emulators();
    let app = deployed_example(&t);
    let first_hash = status(&app, "hash");
    let first = status_json(&app)["digest"].as_str().unwrap().to_string();
    let original = fs::read_to_string(app.join("index.html")).unwrap();

    fs::write(app.join("index.html"), "<h1>version two</h1>\n").unwrap();
    fs::create_dir(app.join("extra")).unwrap();
    fs::write(app.join("extra/notes.txt"), "only in version two\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    let second = status_json(&app)["digest"].as_str().unwrap().to_string();
    assert_ne!(first, second);

    let lines = history(&app);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, digest) in lines.iter().zip([&first, &second]) {
        assert_eq!(line[1], "deployed", "{lines:?}");
        assert_eq!(&line[2], digest, "{lines:?}");
        assert!(line[3].contains("id="), "the server's id: {lines:?}");
        assert_eq!(line[4], "kept", "{lines:?}");
    }

    // Looked up just before, so the kernel caches these names.
    assert!(fs::read_to_string(app.join("index.html"))
        .unwrap()
        .contains("two"));
    assert!(app.join("extra/notes.txt").exists());
    assert!(ctl(&app, &format!("rollback {}", &first[..8])));
    // At once, before the deploy ends: the files you see are the old tree.
    assert_eq!(
        fs::read_to_string(app.join("index.html")).unwrap(),
        original
    );
    assert!(!app.join("extra").exists());
    assert_eq!(wait(&app), "deployed");
    assert_eq!(status_json(&app)["digest"], first.as_str());
    assert_eq!(
        status(&app, "hash"),
        first_hash,
        "what runs is the first tree, byte for byte"
    );
    let lines = history(&app);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!((lines[2][1].as_str(), &lines[2][2]), ("replaced", &second));
    assert_eq!((lines[3][1].as_str(), &lines[3][2]), ("deployed", &first));
    let log = status(&app, "log");
    assert!(log.contains("rolled back to"), "{log}");

    // The history outlives the mount, and the rollback can be undone.
    t.remount();
    assert_eq!(history(&app).len(), 4);
    assert!(ctl(&app, &format!("rollback {}", &second[..10])));
    assert_eq!(
        fs::read_to_string(app.join("extra/notes.txt")).unwrap(),
        "only in version two\n"
    );
    assert_eq!(wait(&app), "deployed");
    assert_eq!(status_json(&app)["digest"], second.as_str());
}

#[test]
fn a_rollback_to_nothing_kept_fails_the_write_and_says_why() {
    let t = TestMount::with_emulators();
    let app = deployed_example(&t);
    let digest = status_json(&app)["digest"].as_str().unwrap().to_string();
    let unknown = if digest.starts_with("0000") {
        "1111"
    } else {
        "0000"
    };
    assert!(
        !ctl(&app, &format!("rollback {unknown}")),
        "the write fails"
    );
    assert!(!ctl(&app, "rollback xyz!"), "not a digest");
    let log = status(&app, "log");
    assert!(
        log.contains(&format!(
            "no kept tree in .pushfs/history has a digest starting with {unknown}"
        )),
        "{log}"
    );
    assert!(log.contains("at least 4 hex digits"), "{log}");
    assert_eq!(status(&app, "state"), "deployed", "nothing changed");
    assert_eq!(history(&app).len(), 1);
}
