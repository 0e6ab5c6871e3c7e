//! Flux end to end on a real mount: register, update, local spec errors,
//! refused keys and timestamps, and a private key that never leaks.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{run, status, wait, TestMount};
use pushfs::backend::flux::key::WifSecret;
use pushfs::emulator::flux::DEMO_ONLY_WIF;

/// Another valid key, not the demo one (from the FluxOS test suite's style of fixtures).
const OTHER_WIF: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";

fn copy_example(t: &TestMount) -> std::path::PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flux-hello");
    run(Command::new("cp")
        .arg("-r")
        .arg(example)
        .arg(t.mnt().join("flux")));
    t.app("flux", "flux-hello")
}

fn set_instances(app: &Path, n: u32) {
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(app.join("spec.json")).unwrap()).unwrap();
    spec["instances"] = n.into();
    fs::write(
        app.join("spec.json"),
        serde_json::to_vec_pretty(&spec).unwrap(),
    )
    .unwrap();
}

#[test]
fn register_then_update_and_the_hash_is_the_nodes() {
    let t = TestMount::with_emulators();
    let app = copy_example(&t);
    assert_eq!(wait(&app), "deployed");
    let accepted = t.emulators().flux.api.accepted_messages();
    assert_eq!(accepted.len(), 1);
    assert_eq!(status(&app, "hash"), accepted[0].hash);
    assert_eq!(status(&app, "id"), accepted[0].hash);
    let log = status(&app, "log");
    assert!(
        log.contains("1 other file(s) in the app folder are not uploaded"),
        "{log}"
    );
    let paths: Vec<String> = t
        .emulators()
        .flux
        .api
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(paths.iter().any(|p| p == "/apps/appregister"), "{paths:?}");

    set_instances(&app, 4);
    assert_eq!(wait(&app), "deployed");
    let accepted = t.emulators().flux.api.accepted_messages();
    assert_eq!(accepted.len(), 2);
    assert_eq!(status(&app, "hash"), accepted[1].hash);
    assert_eq!(accepted[1].spec["instances"], 4);
    let paths: Vec<String> = t
        .emulators()
        .flux
        .api
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths.iter().any(|p| p == "/apps/appupdate"),
        "the second deploy is an update: {paths:?}"
    );

    let warnings = common::status_json(&app)["warnings"].to_string();
    assert!(warnings.contains("1 hour"), "{warnings}");
    let written = t.everything_written(&app);
    assert!(!written.contains(DEMO_ONLY_WIF), "the private key leaked");
}

#[test]
fn a_spec_error_is_caught_before_anything_is_sent() {
    let t = TestMount::with_emulators();
    let app = t.app("flux", "bad");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flux-hello");
    run(Command::new("cp").arg("-r").arg(&example).arg(&app));
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(app.join("spec.json")).unwrap()).unwrap();
    spec["name"] = "bad name!".into();
    fs::write(app.join("spec.json"), spec.to_string()).unwrap();
    assert_eq!(wait(&app), "failed");
    assert!(
        status(&app, "error").to_lowercase().contains("name"),
        "{}",
        status(&app, "error")
    );
    let posts: Vec<String> = t
        .emulators()
        .flux
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert!(posts.is_empty(), "nothing may be sent: {posts:?}");
}

#[test]
fn a_key_that_does_not_own_the_app_is_refused() {
    // The configured ZelID is the demo's, but the key is another one.
    let t = TestMount::with_emulators_and(|config, _| {
        config.flux.zelid = Some(pushfs::emulator::flux::DEMO_ONLY_ZELID.into());
        config.flux.private_key = Some(WifSecret::new(OTHER_WIF));
    });
    let app = copy_example(&t);
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(!error.is_empty());
    assert!(t.emulators().flux.api.accepted_messages().is_empty());
    assert!(
        !t.everything_written(&app).contains(OTHER_WIF),
        "the private key leaked"
    );
}

#[test]
fn a_stale_timestamp_is_refused_by_the_node() {
    let t = TestMount::with_emulators_and(|_, emulators| {
        // The node's clock runs two hours ahead: our timestamps look stale to it.
        emulators.flux.api.set_clock_offset_ms(2 * 3600 * 1000);
    });
    let app = copy_example(&t);
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.to_lowercase().contains("timestamp") || error.to_lowercase().contains("old"),
        "{error}"
    );
    assert!(t.emulators().flux.api.accepted_messages().is_empty());
}
