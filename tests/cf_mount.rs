//! Cloud Foundry end to end on a real mount through the v2 API (`api =
//! "v2"`, the bits-only flow): the job moves in `.pushfs/job`, only changed
//! files travel, failures carry the server's words. The v3 push is in
//! `cf_v3_mount.rs` and `cf_manifest_mount.rs`.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::child::EmulatedSetup;
use common::{eventually, run, status, wait, TestMount};
use pushfs::backend::cf::ApiChoice;
use pushfs::emulator::cf::{
    CfFault, JobPacing, DEMO_REFRESH_TOKEN, DEMO_SPACE_GUID, DEMO_TOKEN, DEVELOPER_SCOPES,
};
use pushfs::emulator::FaultPlan;

const MIB: usize = 1 << 20;

/// The emulators, with the client held to v2.
fn v2_mount() -> TestMount {
    TestMount::with_emulators_and(|config, _| config.cf.api = ApiChoice::V2)
}

/// Bytes that differ per `seed`, so each file has its own SHA-1.
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

#[test]
fn the_example_pushes_and_the_job_is_visible_until_finished() {
    let t = v2_mount();
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    let guid = status(&app, "id");
    let record = cf.app(&guid).expect("the app exists on the server");
    assert_eq!(record.name, "cf-hello");
    let job = status(&app, "job");
    let (job_guid, job_state) = job.split_once(' ').expect("<guid> <state>");
    assert!(!job_guid.is_empty());
    assert_eq!(job_state, "finished");
    assert_eq!(status(&app, "hash").len(), 64, "hex SHA-256 of the zip");
    let log = status(&app, "log");
    for state in ["is queued", "is running", "is finished"] {
        assert!(log.contains(state), "the log shows the job {state}:\n{log}");
    }
    let uploads = cf.uploads();
    assert_eq!(uploads.len(), 1);
    assert!(uploads[0].is_async, "async=true is a query parameter");
    assert!(uploads[0].zipped_files.contains(&"index.html".to_string()));
    assert!(!uploads[0].zipped_files.contains(&"spec.json".to_string()));
    assert!(
        !t.everything_written(&app).contains(DEMO_TOKEN),
        "the token leaked"
    );
}

#[test]
fn changing_one_file_uploads_only_that_file() {
    let t = v2_mount();
    let app = t.app("cf", "big");
    fs::create_dir(&app).unwrap();
    fs::write(
        app.join("spec.json"),
        format!(r#"{{"name":"big","space_guid":"{DEMO_SPACE_GUID}"}}"#),
    )
    .unwrap();
    for i in 0..3u8 {
        fs::write(app.join(format!("blob{i}.bin")), noise(i, 2 * MIB)).unwrap();
    }
    fs::write(app.join("small.txt"), "under the pool's minimum size").unwrap();
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    let first = cf.uploads().last().unwrap().clone();
    assert!(
        first.application_bytes.unwrap() > (5 * MIB) as u64,
        "everything travels the first time"
    );

    fs::write(app.join("blob1.bin"), noise(42, 2 * MIB)).unwrap();
    assert_eq!(wait(&app), "deployed");
    let second = cf.uploads().last().unwrap().clone();
    let mut zipped = second.zipped_files.clone();
    zipped.sort();
    assert_eq!(
        zipped,
        ["blob1.bin", "small.txt"],
        "the changed file, and the small one that is never pooled"
    );
    assert!(second.application_bytes.unwrap() < (3 * MIB) as u64);
    assert_eq!(
        second.resources, 2,
        "the unchanged big files are named by fingerprint"
    );
}

#[test]
fn a_failed_job_reports_the_servers_description() {
    let t = v2_mount();
    t.emulators().cf.api.inject(CfFault::CorruptNextZip);
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("zip"), "{error}");
    assert!(error.contains("CF-"), "the error code is shown: {error}");
    assert!(
        status(&app, "job").ends_with("failed"),
        "{}",
        status(&app, "job")
    );
    // The files are still there, and a forced retry works.
    assert!(app.join("index.html").exists());
    fs::write(app.join(".pushfs/ctl"), "deploy").unwrap();
    assert_eq!(wait(&app), "deployed");
}

#[test]
fn a_cf_cli_login_is_reused_and_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("cf-home");
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.cf.api = ApiChoice::V2;
        let expired = emulators.cf.api.mint_token(
            DEVELOPER_SCOPES,
            SystemTime::now() - Duration::from_secs(3600),
        );
        let login = serde_json::json!({
            "ConfigVersion": 3,
            "Target": emulators.cf.url,
            "AuthorizationEndpoint": emulators.cf.url,
            "AccessToken": format!("bearer {expired}"),
            "RefreshToken": DEMO_REFRESH_TOKEN,
            "SpaceFields": {"GUID": DEMO_SPACE_GUID, "Name": "demo"},
        });
        fs::create_dir_all(home.join(".cf")).unwrap();
        fs::write(
            home.join(".cf/config.json"),
            serde_json::to_vec_pretty(&login).unwrap(),
        )
        .unwrap();
        config.cf.url = None;
        config.cf.token = None;
        config.cf.space_guid = None;
        config.cf.cf_home = Some(home.clone());
    });
    let before = fs::read(home.join(".cf/config.json")).unwrap();
    // A cf app folder as the cf CLI knows it: manifest.yml, no spec.json.
    let app = t.app("cf", "from-cli");
    fs::create_dir(&app).unwrap();
    fs::write(
        app.join("manifest.yml"),
        "---\napplications:\n- name: from-manifest\n  memory: 64M\n",
    )
    .unwrap();
    fs::write(app.join("app.rb"), "puts 'hi'\n").unwrap();
    assert_eq!(wait(&app), "deployed");
    let cf = &t.emulators().cf.api;
    assert_eq!(cf.refreshes(), 1);
    let record = cf.app(&status(&app, "id")).unwrap();
    assert_eq!(record.name, "from-manifest");
    assert_eq!(record.space_guid, DEMO_SPACE_GUID);
    assert_eq!(
        fs::read(home.join(".cf/config.json")).unwrap(),
        before,
        "the cf CLI's file is untouched"
    );
    assert!(!t.everything_written(&app).contains(DEMO_REFRESH_TOKEN));
}

#[test]
fn cfignore_keeps_files_out_of_the_zip() {
    let t = v2_mount();
    let app = t.app("cf", "ignoring");
    fs::create_dir_all(app.join("logs")).unwrap();
    fs::write(
        app.join("spec.json"),
        format!(r#"{{"name":"ignoring","space_guid":"{DEMO_SPACE_GUID}"}}"#),
    )
    .unwrap();
    fs::write(app.join("main.rb"), "puts 1").unwrap();
    fs::write(app.join("debug.log"), "noise").unwrap();
    fs::write(app.join("logs/today.txt"), "noise").unwrap();
    fs::write(app.join(".cfignore"), "*.log\nlogs/\n").unwrap();
    fs::create_dir_all(app.join(".git")).unwrap();
    fs::write(app.join(".git/HEAD"), "ref").unwrap();
    assert_eq!(wait(&app), "deployed");
    let zipped = t
        .emulators()
        .cf
        .api
        .uploads()
        .last()
        .unwrap()
        .zipped_files
        .clone();
    assert!(zipped.contains(&"main.rb".to_string()), "{zipped:?}");
    for ignored in ["debug.log", "logs/today.txt", ".git/HEAD"] {
        assert!(
            !zipped.contains(&ignored.to_string()),
            "{ignored} was uploaded: {zipped:?}"
        );
    }
}

#[test]
fn the_state_file_follows_the_job_through_queued_and_running() {
    let t = TestMount::with_emulators_and(|config, emulators| {
        config.cf.api = ApiChoice::V2;
        // Three polls in each state, so each lasts long enough to be seen.
        emulators.cf.api.update_settings(|s| {
            s.job_pacing = JobPacing {
                queued_polls: 3,
                running_polls: 3,
            }
        });
    });
    let app = t.copy_example("cf");
    eventually("state queued", || status(&app, "state") == "queued");
    assert!(
        status(&app, "job").ends_with(" queued"),
        "{}",
        status(&app, "job")
    );
    eventually("state running", || status(&app, "state") == "running");
    assert!(
        status(&app, "job").ends_with(" running"),
        "{}",
        status(&app, "job")
    );
    assert_eq!(wait(&app), "deployed");
    assert!(status(&app, "job").ends_with(" finished"));
}

#[test]
fn a_hard_linked_file_is_zipped_under_each_name() {
    let t = v2_mount();
    let app = t.copy_example("cf");
    assert_eq!(wait(&app), "deployed");
    fs::write(app.join("page.html"), "<p>linked</p>").unwrap();
    fs::hard_link(app.join("page.html"), app.join("copy.html")).unwrap();
    assert_eq!(wait(&app), "deployed");
    let upload = t.emulators().cf.api.uploads().last().unwrap().clone();
    for name in ["page.html", "copy.html"] {
        assert!(
            upload.zipped_files.iter().any(|f| f == name),
            "{name} missing from {:?}",
            upload.zipped_files
        );
    }
}

#[test]
fn a_stalled_resource_match_shows_as_uploading_not_packaging() {
    let t = v2_mount();
    let cf = &t.emulators().cf;
    // The resource match hangs for 5 s; every other request is answered at once.
    cf.faults.set(FaultPlan {
        slow_next: 1,
        delay_ms: 5000,
        slow_path: Some("/v2/resource_match".into()),
        ..FaultPlan::default()
    });
    let app = t.app("cf", "stalled");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("big.bin"), noise(9, 2 * MIB)).unwrap();
    fs::write(
        app.join("spec.json"),
        format!(r#"{{"name":"stalled","space_guid":"{DEMO_SPACE_GUID}"}}"#),
    )
    .unwrap();
    eventually("the resource match to be asked", || {
        cf.faults
            .requests()
            .iter()
            .any(|r| r.line == "PUT /v2/resource_match")
    });
    assert_eq!(status(&app, "state"), "uploading");
    assert!(cf.api.matches().is_empty(), "the match was still stalled");
    assert_eq!(wait(&app), "deployed");
    assert_eq!(cf.api.matches().len(), 1);
}

/// `rm -rf` of an app while its bits are on the way: the upload stops, and
/// pushfs's own log (stderr, or `pushfs.log` under fstab: the app's log
/// went with its folder) says why.
#[test]
fn rm_rf_during_the_upload_cancels_it_and_the_log_says_so() {
    let setup = EmulatedSetup::new();
    let (mnt, cf) = (&setup.mnt, &setup.emulators.cf);
    // The bits upload hangs for 30 s: long enough to remove the app meanwhile.
    cf.faults.set(FaultPlan {
        slow_next: 1,
        delay_ms: 30_000,
        slow_path: Some("/upload".into()),
        ..FaultPlan::default()
    });
    let pushfs = setup.start(150);
    let app = mnt.join("cf/doomed");
    fs::create_dir(&app).unwrap();
    fs::write(app.join("big.bin"), noise(3, 2 * MIB)).unwrap();
    fs::write(
        app.join("spec.json"),
        format!(r#"{{"name":"doomed","space_guid":"{DEMO_SPACE_GUID}"}}"#),
    )
    .unwrap();
    eventually("the bits to be on the way", || {
        cf.faults
            .requests()
            .iter()
            .any(|r| r.line.starts_with("POST ") && r.line.ends_with("/upload"))
    });
    assert_eq!(status(&app, "state"), "uploading");
    run(Command::new("rm").arg("-rf").arg(&app));
    eventually("pushfs to log the cancelled upload", || {
        pushfs.log().contains("app removed; upload cancelled")
    });
    assert!(cf.api.uploads().is_empty(), "the upload never completed");
    let log = pushfs.log();
    assert!(
        !log.contains("interrupted by shutdown"),
        "a removal is not a shutdown:\n{log}"
    );
    pushfs.stop();
}
