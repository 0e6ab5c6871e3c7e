//! The deploy lifecycle on a real mount, against a scripted backend:
//! settle, snapshot, skip-if-unchanged, follow-ups, retries, cancel,
//! status files and persistence across remounts.

mod common;

use std::fs;
use std::io::ErrorKind;
use std::time::Duration;

use common::scripted::{scripted_set, Answer};
use common::{eventually, status, status_json, wait, write_tree, TestMount};
use pushfs::backend::{DeployError, DeployState};
use pushfs::deploy::snapshot::EntryKind;

fn spec(app: &std::path::Path) {
    fs::write(app.join("spec.json"), r#"{"guid":"g-1"}"#).unwrap();
}

#[test]
fn copied_tree_deploys_once_and_fills_every_status_file() {
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let src = t.scratch("myapp");
    write_tree(&src, 300);
    spec(&src);
    fs::write(src.join(".main.py.swp"), "vim swap").unwrap();
    fs::create_dir(src.join("ignored-by-backend")).unwrap();
    fs::write(src.join("ignored-by-backend/x"), "x").unwrap();
    common::run(
        std::process::Command::new("cp")
            .arg("-r")
            .arg(&src)
            .arg(t.mnt().join("cf")),
    );
    let app = t.app("cf", "myapp");

    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 1, "one deploy for the whole copy");
    let snap = backend.last();
    assert_eq!(
        snap.files().count(),
        301,
        "300 files + spec.json; droppings and backend ignores left out"
    );
    assert!(snap.find(".main.py.swp").is_none());
    assert!(snap.find("ignored-by-backend/x").is_none());
    assert_eq!(snap.read("d0/e0/f0.txt").unwrap().unwrap(), b"file 0\n");

    assert_eq!(status(&app, "state"), "deployed");
    assert_eq!(status(&app, "hash"), snap.digest);
    assert_eq!(status(&app, "id"), "id-myapp");
    assert_eq!(status(&app, "revision"), "1");
    assert_eq!(status(&app, "error"), "");
    assert_eq!(status(&app, "job"), "");
    let response: serde_json::Value = serde_json::from_str(&status(&app, "response.json")).unwrap();
    assert_eq!(response["deploy"], 1);
    let json = status_json(&app);
    assert_eq!(json["state"], "deployed");
    assert_eq!(json["backend"], "cf");
    assert_eq!(json["app"], "myapp");
    assert_eq!(json["digest"], snap.digest.as_str());
    assert_eq!(json["deployed_digest"], snap.digest.as_str());
    let log = status(&app, "log");
    for event in [
        "package: deploying 301 files",
        "upload: scripted upload",
        "result: deployed",
    ] {
        assert!(log.contains(event), "log lacks {event:?}:\n{log}");
    }
    // The sizes are right for tools that trust st_size (tail, less).
    let meta = fs::metadata(app.join(".pushfs/state")).unwrap();
    assert_eq!(meta.len(), "deployed\n".len() as u64);
    let tail = common::run(
        std::process::Command::new("tail")
            .arg("-n1")
            .arg(app.join(".pushfs/log")),
    );
    assert!(tail.contains("result: deployed"), "{tail}");
}

#[test]
fn without_a_spec_the_app_stays_idle_and_says_why() {
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "nospec");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("main.py"), "print(1)").unwrap();
    assert_eq!(wait(&app), "idle");
    assert!(status(&app, "error").contains("waiting for spec.json"));
    assert_eq!(backend.deploys(), 0);
    spec(&app);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 1);
    assert_eq!(status(&app, "error"), "");
}

#[test]
fn unchanged_content_is_not_uploaded_again_unless_forced() {
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "same");
    fs::create_dir(&app).unwrap();
    spec(&app);
    fs::write(app.join("a.txt"), "a").unwrap();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 1);

    // Same bytes written again, and a new mtime: the digest is unchanged.
    fs::write(app.join("a.txt"), "a").unwrap();
    common::run(std::process::Command::new("touch").arg(app.join("a.txt")));
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 1);
    assert!(status(&app, "log").contains("nothing uploaded"));

    fs::write(app.join(".pushfs/ctl"), "deploy\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 2);

    common::run(std::process::Command::new("touch").arg(app.join(".pushfs/ctl")));
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 3);

    // A chmod changes what is packaged.
    common::run(
        std::process::Command::new("chmod")
            .arg("755")
            .arg(app.join("a.txt")),
    );
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 4);
    assert_eq!(backend.last().find("a.txt").unwrap().mode, 0o755);
}

#[test]
fn a_change_during_a_deploy_queues_one_follow_up_on_a_new_snapshot() {
    let (backend, all) = scripted_set();
    backend.push(Answer::SlowOk(Duration::from_millis(1500)));
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "busy");
    fs::create_dir(&app).unwrap();
    spec(&app);
    fs::write(app.join("v.txt"), "one").unwrap();
    eventually("the first deploy to start uploading", || {
        status(&app, "state") == "uploading"
    });
    fs::write(app.join("v.txt"), "two").unwrap();
    fs::write(app.join("w.txt"), "new").unwrap();
    assert_eq!(status_json(&app)["followup_queued"], true);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 2, "exactly one follow-up");
    let snaps = backend.received.lock().clone();
    assert_eq!(
        snaps[0].read("v.txt").unwrap().unwrap(),
        b"one",
        "the running deploy kept its snapshot"
    );
    assert!(snaps[0].find("w.txt").is_none());
    assert_eq!(snaps[1].read("v.txt").unwrap().unwrap(), b"two");
    assert!(snaps[1].find("w.txt").is_some());
}

#[test]
fn transient_failures_are_retried_and_final_ones_are_reported() {
    let (backend, all) = scripted_set();
    backend.push(Answer::Fail(DeployError::from_status(503, "busy")));
    backend.push(Answer::Fail(DeployError::Network(
        "connection reset".into(),
    )));
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "flaky");
    fs::create_dir(&app).unwrap();
    spec(&app);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 3);
    let log = status(&app, "log");
    assert!(log.contains("retrying in"), "{log}");
    assert!(log.contains("attempt 3 of 4"), "{log}");

    backend.push(Answer::Fail(DeployError::from_status(422, "name taken")));
    fs::write(app.join("x"), "x").unwrap();
    assert_eq!(wait(&app), "failed");
    assert_eq!(backend.deploys(), 4, "4xx is not retried");
    assert!(status(&app, "error").contains("name taken"));
    assert_eq!(
        fs::read_to_string(app.join("x")).unwrap(),
        "x",
        "files are kept"
    );
}

#[test]
fn cancel_stops_the_deploy_in_flight() {
    let (backend, all) = scripted_set();
    backend.push(Answer::SlowOk(Duration::from_secs(30)));
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "slow");
    fs::create_dir(&app).unwrap();
    spec(&app);
    eventually("the deploy to start", || {
        status(&app, "state") == "uploading"
    });
    fs::write(app.join(".pushfs/ctl"), "cancel").unwrap();
    assert_eq!(wait(&app), "failed");
    assert!(status(&app, "error").contains("cancelled"));
}

#[test]
fn status_files_are_read_only_but_ctl() {
    let (_backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "ro");
    fs::create_dir(&app).unwrap();
    let denied = |r: std::io::Result<()>| r.unwrap_err().kind() == ErrorKind::PermissionDenied;
    assert!(denied(fs::write(app.join(".pushfs/state"), "deployed")));
    assert!(denied(fs::remove_file(app.join(".pushfs/hash"))));
    assert!(denied(fs::write(app.join(".pushfs/new"), "x")));
    assert!(denied(fs::rename(app.join(".pushfs/log"), app.join("log"))));
    let err = fs::write(app.join(".pushfs/ctl"), "reboot").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    // Not listed, so `rm -r`, `cp -r` and `rsync --delete` leave it alone...
    let names: Vec<_> = fs::read_dir(&app)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // ...but there by name.
    let listed: Vec<_> = fs::read_dir(app.join(".pushfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(listed.len(), 15);
    assert!(listed.contains(&"url".to_string()));
    assert!(listed.contains(&"wait".to_string()));
    assert!(listed.contains(&"history".to_string()));
    assert!(listed.contains(&"payment".to_string()));
    assert!(listed.contains(&"payment.png".to_string()));
}

#[test]
fn files_and_deploy_states_survive_a_remount() {
    let (backend, all) = scripted_set();
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "keep");
    let src = t.scratch("keep");
    write_tree(&src, 40);
    spec(&src);
    common::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(t.mnt().join("cf")),
    );
    assert_eq!(wait(&app), "deployed");
    let hash = status(&app, "hash");
    t.remount();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(status(&app, "hash"), hash);
    assert_eq!(
        backend.deploys(),
        1,
        "nothing changed, nothing uploaded after the remount"
    );
    common::run(
        std::process::Command::new("diff")
            .arg("-r")
            .arg(&src)
            .arg(&app),
    );

    // A change made right before unmounting is deployed after the remount.
    fs::write(app.join("late.txt"), "late").unwrap();
    t.remount();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 2);
    assert!(backend.last().find("late.txt").is_some());
    assert_eq!(
        backend.previous.lock().last().unwrap().id.as_deref(),
        Some("id-keep")
    );
}

#[test]
fn modes_and_symlinks_reach_the_snapshot() {
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "modes");
    fs::create_dir(&app).unwrap();
    spec(&app);
    fs::write(app.join("run.sh"), "#!/bin/sh\n").unwrap();
    common::run(
        std::process::Command::new("chmod")
            .arg("750")
            .arg(app.join("run.sh")),
    );
    std::os::unix::fs::symlink("run.sh", app.join("start")).unwrap();
    assert_eq!(wait(&app), "deployed");
    let snap = backend.last();
    assert_eq!(snap.find("run.sh").unwrap().mode, 0o750);
    assert_eq!(
        snap.find("start").unwrap().kind,
        EntryKind::Symlink {
            target: "run.sh".into()
        }
    );
    assert_eq!(DeployState::Deployed.as_str(), status(&app, "state"));
}

#[test]
fn a_deploy_interrupted_by_unmount_resumes_on_the_next_mount() {
    let (backend, all) = scripted_set();
    backend.push(Answer::SlowOk(Duration::from_secs(30)));
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "resume");
    fs::create_dir(&app).unwrap();
    spec(&app);
    eventually("the deploy to start", || {
        status(&app, "state") == "uploading"
    });
    t.remount();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), 2, "the interrupted deploy ran again");
    let log = status(&app, "log");
    assert!(log.contains("interrupted by shutdown"), "{log}");
    assert!(log.contains("resuming the deploy interrupted"), "{log}");
}

#[test]
fn an_open_swap_file_never_holds_a_deploy_back_and_an_open_packaged_file_is_named() {
    use std::io::Write;
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "edited");
    fs::create_dir_all(app.join("ignored-by-backend")).unwrap();
    spec(&app);
    fs::write(app.join("main.py"), "v1").unwrap();
    assert_eq!(wait(&app), "deployed");

    // vim keeps its swap file open for writing as long as it runs; any
    // other ignored file held open is the same.
    let mut swap = fs::File::create(app.join(".main.py.swp")).unwrap();
    swap.write_all(b"swap").unwrap();
    let mut ignored = fs::File::create(app.join("ignored-by-backend/held")).unwrap();
    ignored.write_all(b"held").unwrap();
    fs::write(app.join("main.py"), "v2").unwrap();
    assert_eq!(
        common::wait_within(&app, Duration::from_secs(20)),
        "deployed"
    );
    assert_eq!(backend.last().read("main.py").unwrap().unwrap(), b"v2");
    assert_eq!(status_json(&app)["waiting_for"], serde_json::json!([]));

    // A file the package carries, held open, holds the deploy and is named.
    let mut data = fs::File::create(app.join("data.bin")).unwrap();
    data.write_all(b"partial").unwrap();
    eventually("data.bin named in waiting_for", || {
        status_json(&app)["waiting_for"] == serde_json::json!(["data.bin"])
    });
    let deploys = backend.deploys();
    assert_eq!(status_json(&app)["busy"], true);
    data.write_all(b", whole").unwrap();
    drop(data);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), deploys + 1);
    assert_eq!(
        backend.last().read("data.bin").unwrap().unwrap(),
        b"partial, whole"
    );
    assert_eq!(status_json(&app)["waiting_for"], serde_json::json!([]));
    drop((swap, ignored));
}

/// The kernel sends RELEASE after `close` returns and drops what it still
/// has queued at unmount: a stop right after a write must still be clean,
/// or the next mount holds the app as after a crash.
#[test]
fn a_file_closed_right_before_an_unmount_leaves_a_clean_stop() {
    let (_backend, all) = scripted_set();
    let mut t = TestMount::with_backends(all);
    let app = t.app("cf", "late");
    fs::create_dir(&app).unwrap();
    spec(&app);
    assert_eq!(wait(&app), "deployed");
    for round in 0..20 {
        // A separate process, as a user's copy is: its files close at exit.
        common::run(
            std::process::Command::new("cp")
                .arg("/etc/hostname")
                .arg(app.join(format!("late-{round}.txt"))),
        );
        t.remount();
        let state = wait(&app);
        assert_eq!(
            state,
            "deployed",
            "round {round}: {}",
            status(&app, "error")
        );
    }
}

/// A reader that opened a file while it was being written shares the
/// writer's temp file (the kernel reads it directly): it sees a later
/// writer's bytes too, and the file counts as being written, named in
/// `waiting_for`, until the reader closes.
#[test]
fn a_reader_opened_during_a_write_sees_later_writers_and_is_named_while_open() {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "follow");
    fs::create_dir(&app).unwrap();
    spec(&app);
    assert_eq!(wait(&app), "deployed");
    let deploys = backend.deploys();

    let path = app.join("server.log");
    let mut writer = fs::File::create(&path).unwrap();
    writer.write_all(b"one\n").unwrap();
    let reader = fs::File::open(&path).unwrap();
    writer.write_all(b"two\n").unwrap();
    drop(writer);
    let mut again = fs::OpenOptions::new().append(true).open(&path).unwrap();
    again.write_all(b"three\n").unwrap();
    drop(again);
    let mut seen = vec![0u8; 14];
    reader.read_exact_at(&mut seen, 0).unwrap();
    assert_eq!(seen, b"one\ntwo\nthree\n");
    assert_eq!(reader.metadata().unwrap().len(), 14, "fstat and read agree");

    eventually("server.log named in waiting_for", || {
        status_json(&app)["waiting_for"] == serde_json::json!(["server.log"])
    });
    assert_eq!(
        backend.deploys(),
        deploys,
        "nothing deploys while it is open"
    );
    drop(reader);
    assert_eq!(wait(&app), "deployed");
    assert_eq!(backend.deploys(), deploys + 1);
    assert_eq!(
        backend.last().read("server.log").unwrap().as_deref(),
        Some(&b"one\ntwo\nthree\n"[..])
    );
}

/// Writes through passthrough reach the temp file without pushfs, and the
/// kernel tells it of the close only afterwards: `.pushfs/wait` read right
/// after an append must still answer for the appended content.
#[test]
fn wait_right_after_an_append_answers_for_the_append() {
    use std::io::Write;
    let (backend, all) = scripted_set();
    let t = TestMount::with_backends(all);
    let app = t.app("cf", "append");
    fs::create_dir(&app).unwrap();
    spec(&app);
    fs::write(app.join("log.txt"), "").unwrap();
    assert_eq!(wait(&app), "deployed");
    let mut expected = String::new();
    for round in 0..15 {
        let line = format!("line {round}\n");
        let mut log = fs::OpenOptions::new()
            .append(true)
            .open(app.join("log.txt"))
            .unwrap();
        log.write_all(line.as_bytes()).unwrap();
        drop(log);
        expected.push_str(&line);
        assert_eq!(wait(&app), "deployed");
        assert_eq!(
            backend.last().read("log.txt").unwrap().as_deref(),
            Some(expected.as_bytes()),
            "round {round}"
        );
    }
}
