//! ByteNite end to end on a real mount: copy the example in, read what the
//! emulator returned from the status files.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use common::{run, status, status_json, wait, TestMount};
use pushfs::emulator::bytenite::DEMO_API_KEY;
use pushfs::emulator::FaultPlan;
use sha2::{Digest, Sha256};

fn copy_example(t: &TestMount) -> std::path::PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    run(Command::new("cp")
        .arg("-r")
        .arg(example)
        .arg(t.mnt().join("bytenite")));
    t.app("bytenite", "bytenite-hello")
}

#[test]
fn the_example_deploys_and_every_status_file_says_what_the_server_returned() {
    let t = TestMount::with_emulators();
    let app = copy_example(&t);
    assert_eq!(wait(&app), "deployed");

    let records = t.emulators().bytenite.api.apps();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    let tar = t
        .emulators()
        .bytenite
        .api
        .tar_of(&record.id)
        .expect("the server kept the tar");
    let expected_hash =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(tar.as_slice()));
    assert_eq!(
        status(&app, "hash"),
        expected_hash,
        "hash = base64(SHA-256 of the tar received)"
    );
    assert_eq!(record.hash, expected_hash);
    assert_eq!(status(&app, "id"), record.id);
    assert_eq!(status(&app, "revision"), "1");
    assert_eq!(status(&app, "state"), "deployed");
    assert_eq!(status(&app, "error"), "");
    assert_eq!(status(&app, "job"), "");
    let response: serde_json::Value = serde_json::from_str(&status(&app, "response.json")).unwrap();
    assert_eq!(response["name"], "bytenite-hello");
    assert_eq!(response["revision"], "1");
    let json = status_json(&app);
    assert_eq!(json["hash"], expected_hash.as_str());
    assert_eq!(json["id"], record.id.as_str());
    assert_eq!(json["backend"], "bytenite");
    let log = status(&app, "log");
    assert!(log.contains("package: deploying"), "{log}");
    assert!(log.contains("result: deployed"), "{log}");

    // Same name and version again: the same record, one revision up.
    fs::write(app.join("app/main.py"), "print('v2')\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(status(&app, "revision"), "2");
    assert_eq!(status(&app, "id"), record.id);
    assert_ne!(status(&app, "hash"), expected_hash);
    assert_eq!(t.emulators().bytenite.api.apps().len(), 1);

    // No secret anywhere a user or a log reader looks.
    let written = t.everything_written(&app);
    assert!(!written.contains(DEMO_API_KEY), "the API key leaked");
}

#[test]
fn a_bad_spec_fails_clearly_uploads_nothing_and_keeps_the_files() {
    let t = TestMount::with_emulators();
    let app = t.app("bytenite", "broken");
    fs::create_dir_all(app.join("app")).unwrap();
    fs::write(app.join("app/main.py"), "print(1)\n").unwrap();
    fs::write(
        app.join("spec.json"),
        r#"{"name":"broken","version":"1.2.3","platform":"docker","entrypoint":"main.py","platform_config":{"container":"python"}}"#,
    )
    .unwrap();
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains("version"),
        "the error names the field: {error}"
    );
    assert_eq!(
        t.emulators().bytenite.api.stats().upload_requests,
        0,
        "nothing was sent"
    );
    assert_eq!(
        fs::read_to_string(app.join("app/main.py")).unwrap(),
        "print(1)\n"
    );

    // Not JSON at all.
    fs::write(app.join("spec.json"), "{ not json").unwrap();
    assert_eq!(wait(&app), "failed");
    assert!(
        status(&app, "error").contains("spec.json"),
        "{}",
        status(&app, "error")
    );
    assert_eq!(t.emulators().bytenite.api.stats().upload_requests, 0);

    // Fixed: it deploys.
    fs::write(
        app.join("spec.json"),
        r#"{"name":"broken","version":"1.2","platform":"docker","entrypoint":"main.py","platform_config":{"container":"python"}}"#,
    )
    .unwrap();
    assert_eq!(wait(&app), "deployed");
}

#[test]
fn a_rejection_by_the_server_is_final_and_shows_its_message() {
    let t = TestMount::with_emulators_and(|config, _| {
        config.bytenite.api_key = Some("not-a-real-key".into());
    });
    let app = copy_example(&t);
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("401"), "{error}");
    assert!(
        !error.contains("not-a-real-key"),
        "the key must not leak: {error}"
    );
    assert!(
        !status(&app, "log").contains("retrying"),
        "4xx is not retried"
    );
}

#[test]
fn server_failures_are_retried_until_it_recovers() {
    let t = TestMount::with_emulators();
    t.emulators().bytenite.faults.set(FaultPlan {
        fail_next: 2,
        status: Some(503),
        ..FaultPlan::default()
    });
    let app = copy_example(&t);
    assert_eq!(wait(&app), "deployed");
    let log = status(&app, "log");
    assert!(log.contains("retrying"), "{log}");
    assert_eq!(status(&app, "revision"), "1");
}

#[test]
fn an_unconfigured_backend_names_the_missing_key() {
    let t = TestMount::with_emulators_and(|config, _| {
        config.bytenite.api_key = None;
        config.bytenite.token = None;
    });
    let app = copy_example(&t);
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains("api_key") && error.contains("PUSHFS_BYTENITE_API_KEY"),
        "{error}"
    );
}

#[test]
fn a_server_hash_that_differs_from_ours_is_said_plainly() {
    let t = TestMount::with_emulators_and(|_, emulators| {
        // The emulator hashes the base64 text instead of the tar.
        emulators.bytenite.api.hash_base64_text(true);
    });
    let app = copy_example(&t);
    assert_eq!(wait(&app), "deployed");
    let warnings = status_json(&app)["warnings"].clone();
    let first = warnings[0].as_str().unwrap_or_default();
    assert!(
        first.contains("differs from base64(SHA-256) of the tar we sent"),
        "{warnings}"
    );
    assert!(status(&app, "log").contains("warning: the server's hash"));
}

#[test]
fn a_hard_link_travels_as_a_tar_link_entry() {
    let t = TestMount::with_emulators();
    let app = copy_example(&t);
    assert_eq!(wait(&app), "deployed");
    fs::write(app.join("app/data.bin"), vec![5u8; 3000]).unwrap();
    run(Command::new("ln")
        .arg(app.join("app/data.bin"))
        .arg(app.join("app/again.bin")));
    assert_eq!(wait(&app), "deployed");
    let api = &t.emulators().bytenite.api;
    let record = api.apps().pop().unwrap();
    let tar = api.tar_of(&record.id).expect("the server kept the tar");
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut seen = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.ends_with(".bin") {
            let link = entry
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned());
            seen.push((path, entry.header().entry_type(), link));
        }
    }
    assert_eq!(
        seen,
        [
            ("app/again.bin".to_string(), tar::EntryType::Regular, None),
            (
                "app/data.bin".to_string(),
                tar::EntryType::Link,
                Some("app/again.bin".to_string())
            ),
        ],
        "the content once, under the first name; the second links to it"
    );
}
