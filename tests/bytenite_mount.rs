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

#[test]
fn the_example_deploys_and_every_status_file_says_what_the_server_returned() {
    let t = TestMount::with_emulators();
    let app = t.copy_example("bytenite");
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
    let app = t.copy_example("bytenite");
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
    let app = t.copy_example("bytenite");
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
    let app = t.copy_example("bytenite");
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
    let app = t.copy_example("bytenite");
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
    let app = t.copy_example("bytenite");
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

// --- Activation after the push ---

const HELLO_SPEC: &str = r#"{"name":"hello-flat","version":"0.1","platform":"docker","entrypoint":"main.py","platform_config":{"container":"python:3.12-slim"}ACTIVATE}"#;

/// A flat app with a `spec.json`; `extra` goes at the end of its object.
fn flat_app(t: &TestMount, name: &str, extra: &str) -> std::path::PathBuf {
    let app = t.app("bytenite", name);
    fs::create_dir_all(&app).unwrap();
    fs::write(app.join("main.py"), "print('hi')\n").unwrap();
    fs::write(app.join("spec.json"), HELLO_SPEC.replace("ACTIVATE", extra)).unwrap();
    app
}

/// The deploy activated the app: the status read back is in status.json and
/// response.json, the log says so, and the emulator's record is active.
fn assert_activated(t: &TestMount, app: &Path) {
    let json = status_json(app);
    assert_eq!(json["response"]["status"], "active", "{json}");
    assert_eq!(json["warnings"], serde_json::json!([]), "{json}");
    let response: serde_json::Value = serde_json::from_str(&status(app, "response.json")).unwrap();
    assert_eq!(response["status"], "active");
    let log = status(app, "log");
    assert!(log.contains("activate: POST"), "{log}");
    assert!(log.contains("status of "), "{log}");
    let id = status(app, "id");
    let record = t.emulators().bytenite.api.apps();
    let record = record.iter().find(|a| a.id == id).expect("the pushed app");
    assert_eq!(record.status, "active");
    assert_eq!(status(app, "revision"), record.revision.to_string());
}

#[test]
fn activate_true_in_spec_json_activates_the_pushed_version() {
    let t = TestMount::with_emulators();
    let app = flat_app(&t, "hello-flat", r#","activate":true"#);
    assert_eq!(wait(&app), "deployed");
    assert_activated(&t, &app);
    assert!(status(&app, "log").contains("hello-flat@0.1"));

    // A new revision is activated again.
    fs::write(app.join("main.py"), "print('v2')\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    assert_eq!(status(&app, "revision"), "2");
    assert_activated(&t, &app);
    assert_eq!(t.emulators().bytenite.api.stats().activate_requests, 2);
}

#[test]
fn activate_true_in_manifest_json_activates_the_pushed_version() {
    let t = TestMount::with_emulators();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    let staged = t.scratch("bytenite-hello");
    run(Command::new("cp")
        .arg("-r")
        .arg(example.join("app"))
        .arg(&staged));
    let manifest = fs::read_to_string(example.join("manifest.json")).unwrap();
    fs::write(
        staged.join("manifest.json"),
        manifest.replacen('{', "{\n  \"Activate\": true,", 1),
    )
    .unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(&staged)
        .arg(t.mnt().join("bytenite")));
    let app = t.app("bytenite", "bytenite-hello");
    assert_eq!(wait(&app), "deployed");
    assert_activated(&t, &app);
}

#[test]
fn bytenite_activate_in_the_config_activates_every_app() {
    let t = TestMount::with_emulators_and(|config, _| config.bytenite.activate = Some(true));
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");
    assert_activated(&t, &app);

    // An app can still say no.
    let other = flat_app(&t, "hello-flat", r#","activate":false"#);
    assert_eq!(wait(&other), "deployed");
    assert_eq!(t.emulators().bytenite.api.stats().activate_requests, 1);
    assert_eq!(status_json(&other)["response"]["status"], "inactive");
}

#[test]
fn an_activation_refused_by_the_server_fails_the_deploy_with_its_message() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.bytenite.activate = Some(true);
        emulators
            .bytenite
            .api
            .set_activation(pushfs::emulator::bytenite::ActivationPlan {
                refuse: Some("no capacity for GPU apps in this account".into()),
                ..Default::default()
            });
    });
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains(
            "activating bytenite-hello@0.1 failed: no capacity for GPU apps in this account"
        ),
        "{error}"
    );
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(
        !status(&app, "log").contains("retrying"),
        "4xx is not retried"
    );
    assert_eq!(status_json(&app)["response"]["code"], 9);
    assert_eq!(t.emulators().bytenite.api.apps()[0].status, "inactive");
}

#[test]
fn an_activation_the_server_fails_is_retried_without_pushing_again() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.bytenite.activate = Some(true);
        emulators
            .bytenite
            .api
            .set_activation(pushfs::emulator::bytenite::ActivationPlan {
                fail_next: 2,
                ..Default::default()
            });
    });
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed");
    let log = status(&app, "log");
    assert!(log.contains("retrying"), "{log}");
    assert!(log.contains("activating it without pushing again"), "{log}");
    assert_activated(&t, &app);
    let stats = t.emulators().bytenite.api.stats();
    assert_eq!(stats.upload_requests, 1, "pushed once");
    assert_eq!(stats.activate_requests, 3);
}

#[test]
fn the_api_root_and_the_v1_dev_server_url_both_deploy() {
    for suffix in ["/", "/v1/dev", "/v1/dev/"] {
        let t = TestMount::with_emulators_and(|config, emulators| {
            config.bytenite.url = Some(format!("{}{suffix}", emulators.bytenite.url));
            config.bytenite.activate = Some(true);
        });
        let app = t.copy_example("bytenite");
        assert_eq!(
            wait(&app),
            "deployed",
            "url ending {suffix:?}: {}",
            status(&app, "error")
        );
        assert_activated(&t, &app);
        assert!(!status(&app, "log").contains("/v1/dev/v1/dev"));
    }
}

#[test]
fn a_token_pasted_with_bearer_works_and_never_shows() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        let token = emulators.bytenite.api.issue_token(DEMO_API_KEY).unwrap();
        config.bytenite.api_key = None;
        config.bytenite.token = Some(format!("Bearer {token}"));
        config.bytenite.activate = Some(true);
    });
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "deployed", "{}", status(&app, "error"));
    assert_activated(&t, &app);
    let token = t.config.bytenite.token.clone().unwrap();
    let bare = token.trim_start_matches("Bearer ");
    assert!(
        !t.everything_written(&app).contains(bare),
        "the token leaked"
    );
}

#[test]
fn a_server_that_stalls_shows_as_uploading_not_packaging() {
    let t = TestMount::with_emulators();
    // Every request waits 3 s: the token exchange first, then the push.
    t.emulators().bytenite.faults.set(FaultPlan {
        slow_next: 2,
        delay_ms: 3000,
        ..FaultPlan::default()
    });
    let app = t.copy_example("bytenite");
    common::eventually("the state to say uploading", || {
        status(&app, "state") == "uploading"
    });
    // Still within the stalled token exchange: nothing has been answered yet.
    assert_eq!(t.emulators().bytenite.api.stats().tokens_issued, 0);
    assert_eq!(wait(&app), "deployed");
}

// --- Version-control folders ---

fn tar_paths(t: &TestMount) -> Vec<String> {
    let api = &t.emulators().bytenite.api;
    let record = api.apps().pop().unwrap();
    let tar = api.tar_of(&record.id).expect("the server kept the tar");
    let mut archive = tar::Archive::new(tar.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_git_clone_ships_without_its_history_unless_asked() {
    let t = TestMount::with_emulators();
    let app = flat_app(&t, "cloned", "");
    run(Command::new("git").arg("-C").arg(&app).args(["init", "-q"]));
    run(Command::new("git").arg("-C").arg(&app).args([
        "-c",
        "user.email=a@b",
        "-c",
        "user.name=a",
        "add",
        ".",
    ]));
    run(Command::new("git").arg("-C").arg(&app).args([
        "-c",
        "user.email=a@b",
        "-c",
        "user.name=a",
        "commit",
        "-qm",
        "first",
    ]));
    fs::create_dir_all(app.join(".pnpm-store/v3")).unwrap();
    fs::write(app.join(".pnpm-store/v3/blob"), "cached").unwrap();
    assert_eq!(wait(&app), "deployed");
    let paths = tar_paths(&t);
    assert!(paths.iter().any(|p| p.ends_with("main.py")), "{paths:?}");
    assert!(
        !paths
            .iter()
            .any(|p| p.contains(".git/") || p.contains(".pnpm-store")),
        "{paths:?}"
    );

    fs::write(app.join(".pushfsignore"), "!.git\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    let paths = tar_paths(&t);
    assert!(
        paths.iter().any(|p| p.ends_with(".git/HEAD")),
        "!.git brings the history back: {paths:?}"
    );
    assert!(
        !paths.iter().any(|p| p.contains(".pnpm-store")),
        "{paths:?}"
    );
}
