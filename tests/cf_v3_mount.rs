//! Cloud Foundry v3 on a real mount against the emulator with v2 switched
//! off: `state` walks processing, staging, starting; `.pushfs/job` lists
//! package, build and droplet; failures land in `.pushfs/error`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{eventually, status, wait, TestMount};
use pushfs::backend::cf::ApiChoice;
use pushfs::emulator::cf::{CfFault, V3Pacing, DEMO_SPACE_GUID, DEMO_TOKEN};
use pushfs::emulator::FaultPlan;

const MIB: usize = 1 << 20;

/// v2 off as capi-release ships it; polls every 20 ms.
fn v3_mount() -> TestMount {
    TestMount::with_emulators_and(|config, emulators| {
        emulators.cf.api.update_settings(|s| s.v2_enabled = false);
        config.cf.poll_interval_ms = Some(20);
    })
}

fn noise(seed: u8, len: usize) -> Vec<u8> {
    let mut x = u32::from(seed).wrapping_mul(2654435761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn new_app(t: &TestMount, name: &str, spec: serde_json::Value) -> PathBuf {
    let app = t.app("cf", name);
    fs::create_dir(&app).unwrap();
    fs::write(app.join("index.html"), "<p>hello</p>").unwrap();
    fs::write(app.join("spec.json"), spec.to_string()).unwrap();
    app
}

fn spec(name: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "space_guid": DEMO_SPACE_GUID})
}

fn job_lines(app: &Path) -> Vec<String> {
    status(app, "job").lines().map(str::to_string).collect()
}

#[test]
fn v3_pushes_to_running_and_then_sends_only_the_edit() {
    let t = v3_mount();
    let app = t.app("cf", "shop");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("big.bin"), noise(1, 2 * MIB)).unwrap();
    fs::write(app.join("small.txt"), "v1").unwrap();
    fs::write(app.join("spec.json"), spec("shop").to_string()).unwrap();
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    let guid = status(&app, "id");
    let record = cf.app(&guid).unwrap();
    assert_eq!(record.state, "STARTED");
    let lines = job_lines(&app);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("package ") && lines[0].ends_with(" READY"));
    assert!(lines[1].starts_with("build ") && lines[1].ends_with(" STAGED"));
    let droplet = record.current_droplet.unwrap();
    assert_eq!(lines[2], format!("droplet {droplet} STAGED"));
    let package = cf.packages().pop().unwrap();
    assert_eq!(status(&app, "hash"), package.sha256.unwrap());
    let log = status(&app, "log");
    assert!(log.contains("using v3"), "{log}");
    assert!(log.contains("the app is running"), "{log}");

    fs::write(app.join("small.txt"), "v2, edited").unwrap();
    assert_eq!(wait(&app), "deployed");
    let upload = cf.uploads().pop().unwrap();
    assert_eq!(
        upload.zipped_files,
        ["small.txt"],
        "the big file is matched"
    );
    assert_eq!(upload.resources, 1);
    assert!(upload.application_bytes.unwrap() < 4096);
    assert_eq!(
        cf.app(&guid).unwrap().package.unwrap()["small.txt"].size,
        10
    );
    assert!(!t.everything_written(&app).contains(DEMO_TOKEN));
}

#[test]
fn the_state_file_shows_processing_staging_and_starting() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        emulators.cf.api.update_settings(|s| {
            s.v2_enabled = false;
            s.v3_pacing = V3Pacing {
                processing_polls: 8,
                staging_polls: 8,
                starting_polls: 8,
            };
        });
        config.cf.poll_interval_ms = Some(60);
    });
    let app = new_app(&t, "phases", spec("phases"));
    eventually("processing", || status(&app, "state") == "processing");
    eventually("staging", || status(&app, "state") == "staging");
    assert!(
        job_lines(&app)[1].ends_with(" STAGING"),
        "{:?}",
        job_lines(&app)
    );
    eventually("starting", || status(&app, "state") == "starting");
    assert_eq!(wait(&app), "deployed");
}

#[test]
fn no_start_uploads_the_package_and_stages_nothing() {
    let t = v3_mount();
    let mut s = spec("parked");
    s["no_start"] = true.into();
    let app = new_app(&t, "parked", s);
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    assert_eq!(cf.builds_created(), 0);
    let record = cf.app(&status(&app, "id")).unwrap();
    assert_eq!(record.state, "STOPPED");
    assert_eq!(record.current_droplet, None);
    let lines = job_lines(&app);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(" READY"));
}

#[test]
fn a_staging_failure_is_shown_in_the_error_file() {
    let t = v3_mount();
    t.emulators().cf.api.inject(CfFault::FailNextStaging);
    let app = new_app(&t, "nobuildpack", spec("nobuildpack"));
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("staging failed"), "{error}");
    assert!(error.contains("NoAppDetectedError"), "{error}");
    assert!(
        job_lines(&app)[1].ends_with(" FAILED"),
        "{:?}",
        job_lines(&app)
    );
    // Not retried: a second deploy is the user's call.
    fs::write(app.join(".pushfs/ctl"), "deploy").unwrap();
    assert_eq!(wait(&app), "deployed");
}

#[test]
fn all_instances_crashed_fails_the_deploy() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        emulators.cf.api.update_settings(|s| {
            s.v2_enabled = false;
            s.instances = 3;
            s.instances_crash = true;
        });
        config.cf.poll_interval_ms = Some(20);
    });
    let app = new_app(&t, "crashy", spec("crashy"));
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("all instances crashed"), "{error}");
}

#[test]
fn forced_v2_still_works_against_a_v2_foundation() {
    let t = TestMount::with_emulators_and(|config, _| {
        config.cf.api = ApiChoice::V2;
    });
    let app = new_app(&t, "classic", spec("classic"));
    assert_eq!(wait(&app), "deployed");
    let (job_guid, job_state) = status(&app, "job")
        .split_once(' ')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    assert!(!job_guid.is_empty());
    assert_eq!(job_state, "finished");
    let cf = &t.emulators().cf.api;
    assert_eq!(
        cf.uploads().pop().unwrap().package_guid,
        None,
        "a v2 upload"
    );
    assert!(cf.packages().is_empty());
}

#[test]
fn auto_pushes_through_v3_on_a_foundation_with_v2_on() {
    let t = TestMount::with_emulators_and(|config, _| config.cf.poll_interval_ms = Some(20));
    let cf = &t.emulators().cf.api;
    assert!(
        cf.settings().v2_enabled,
        "the emulator serves v2 by default"
    );
    let app = new_app(&t, "v2-on", spec("v2-on"));
    assert_eq!(wait(&app), "deployed");
    assert!(status(&app, "log").contains("offers v3; using v3"));
    assert!(
        cf.uploads().iter().all(|u| u.package_guid.is_some()),
        "no v2 upload"
    );
    let record = cf.app(&status(&app, "id")).unwrap();
    assert_eq!(record.state, "STARTED", "staged and started, not only bits");
    assert!(record.current_droplet.is_some());
    assert_eq!(job_lines(&app).len(), 3);
}

#[test]
fn a_stalled_resource_match_shows_as_uploading_not_packaging() {
    let t = v3_mount();
    let cf = &t.emulators().cf;
    // The v3 resource match hangs for 5 s; every other request is answered at once.
    cf.faults.set(FaultPlan {
        slow_next: 1,
        delay_ms: 5000,
        slow_path: Some("/v3/resource_matches".into()),
        ..FaultPlan::default()
    });
    let app = t.app("cf", "stalled");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("big.bin"), noise(9, 2 * MIB)).unwrap();
    fs::write(app.join("spec.json"), spec("stalled").to_string()).unwrap();
    eventually("the resource match to be asked", || {
        cf.faults
            .requests()
            .iter()
            .any(|r| r.line == "POST /v3/resource_matches")
    });
    assert_eq!(status(&app, "state"), "uploading");
    assert!(cf.api.packages().is_empty(), "the match was still stalled");
    assert_eq!(wait(&app), "deployed");
    assert_eq!(cf.api.packages().len(), 1);
}
