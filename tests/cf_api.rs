//! The real cf client, with `api = "v2"`, against the cf emulator over
//! loopback: incremental
//! uploads through resource matching, jobs, app lookup and creation, cf CLI
//! login reuse with a token refresh, ignore rules, faults, and a few of the
//! emulator's own conformance cases.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::cf_harness::{name_spec, noise, sorted, write, Harness, MIB};
use pushfs::backend::cf::{ApiChoice, CfClient, CfConfig};
use pushfs::backend::{DeployError, DeployState};
use pushfs::emulator::cf::{
    CfFault, JobPacing, DEMO_REFRESH_TOKEN, DEMO_SPACE_GUID, DEMO_TOKEN, DEVELOPER_SCOPES,
};
use pushfs::emulator::FaultPlan;
use serde_json::json;

/// The client's log line after a 401; a bare "401" also turns up inside
/// guids and hashes.
const REFUSED_TOKEN: &str = "the server refused the access token (401)";

#[tokio::test]
async fn first_deploy_uploads_everything_then_only_what_changed() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("big");
    write(&dir, "spec.json", name_spec("big"));
    write(&dir, "a.bin", noise(1, 2 * MIB));
    write(&dir, "sub/b.bin", noise(2, 2 * MIB));
    write(&dir, "c.bin", noise(3, MIB));

    let (result, rec) = h.deploy(&client, &dir).await;
    let first = result.unwrap();
    let guid = first.id.clone().unwrap();
    let uploads = h.emu.api.uploads();
    assert_eq!(uploads.len(), 1);
    assert!(uploads[0].is_async, "async=true goes in the query string");
    assert_eq!(
        sorted(uploads[0].zipped_files.clone()),
        ["a.bin", "c.bin", "sub/b.bin"]
    );
    assert_eq!(uploads[0].resources, 0);
    let first_bytes = uploads[0].application_bytes.unwrap();
    assert!(first_bytes > (5 * MIB) as u64, "{first_bytes}");
    assert_eq!(first.hash.as_ref().map(String::len), Some(64));
    assert_eq!(first.job.as_ref().unwrap().state, "finished");
    assert_eq!(rec.get().ids, vec![guid.clone()]);

    // The stored package is the snapshot, file for file.
    let snap = h.snapshot(&client, &dir);
    let package = h.emu.api.app(&guid).unwrap().package.unwrap();
    let expected: Vec<(String, String)> = snap
        .files()
        .filter(|(e, _)| e.path != "spec.json")
        .map(|(e, f)| (e.path.clone(), f.blob.sha1_hex()))
        .collect();
    let stored: Vec<(String, String)> = package
        .iter()
        .map(|(p, f)| (p.clone(), f.sha1.clone()))
        .collect();
    assert_eq!(stored, expected);

    // One changed file: the zip carries it alone, the rest come from the pool.
    write(&dir, "sub/b.bin", noise(4, 2 * MIB));
    let (result, _) = h.deploy(&client, &dir).await;
    let second = result.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(upload.zipped_files, ["sub/b.bin"]);
    assert_eq!(upload.resources, 2);
    let second_bytes = upload.application_bytes.unwrap();
    // Only the changed 2 MiB (incompressible) travel, not the other 3 MiB.
    assert!(
        second_bytes < (2 * MIB + 4096) as u64,
        "{second_bytes} vs {first_bytes}"
    );
    assert_ne!(second.hash, first.hash);
    let package = h.emu.api.app(&guid).unwrap().package.unwrap();
    let snap = h.snapshot(&client, &dir);
    for (entry, content) in snap.files().filter(|(e, _)| e.path != "spec.json") {
        assert_eq!(
            package[&entry.path].sha1,
            content.blob.sha1_hex(),
            "{}",
            entry.path
        );
    }

    // Nothing changed: fingerprints only, no application part, no hash.
    let (result, rec) = h.deploy(&client, &dir).await;
    let third = result.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(upload.application_bytes, None);
    assert_eq!(upload.resources, 3);
    assert_eq!(third.hash, None);
    assert!(rec
        .get()
        .log
        .iter()
        .any(|l| l.contains("every file is already on the server")));
    assert_eq!(
        h.emu.api.apps().len(),
        1,
        "the app is found by name, not created again"
    );
}

#[tokio::test]
async fn files_at_or_under_the_pool_minimum_are_always_resent() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("small");
    write(&dir, "spec.json", name_spec("small"));
    write(&dir, "small.txt", noise(1, 1000));
    write(&dir, "exactly-min.bin", noise(2, 65536));
    write(&dir, "big.bin", noise(3, 100_000));

    h.deploy(&client, &dir).await.0.unwrap();
    h.deploy(&client, &dir).await.0.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(
        sorted(upload.zipped_files),
        ["exactly-min.bin", "small.txt"]
    );
    assert_eq!(upload.resources, 1);
    // The client never asks about files the pool cannot match.
    for m in h.emu.api.matches() {
        assert_eq!(m.asked, ["big.bin"]);
    }
    // The pool holds exactly-min.bin (inclusive bound) but never small.txt.
    let snap = h.snapshot(&client, &dir);
    let sha1 = |p: &str| snap.find(p).unwrap().file().unwrap().blob.sha1_hex();
    assert!(h.emu.api.pool_has(&sha1("exactly-min.bin")));
    assert!(!h.emu.api.pool_has(&sha1("small.txt")));
}

#[tokio::test]
async fn states_move_through_the_job_and_modes_and_links_survive() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let h = Harness::start().await;
    h.emu.api.update_settings(|s| {
        s.job_pacing = JobPacing {
            queued_polls: 2,
            running_polls: 2,
        }
    });
    let client = h.v2_client();
    let dir = h.app_dir("modes");
    write(&dir, "spec.json", name_spec("modes"));
    write(&dir, "run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(dir.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    symlink("run.sh", dir.join("start")).unwrap();
    write(&dir, "z", "");

    let (result, rec) = h.deploy(&client, &dir).await;
    let outcome = result.unwrap();
    let rec = rec.get();
    let interesting: Vec<DeployState> = rec
        .states
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s,
                DeployState::Uploading | DeployState::Queued | DeployState::Running
            )
        })
        .collect();
    let mut deduped = interesting.clone();
    deduped.dedup();
    assert_eq!(
        deduped,
        [
            DeployState::Uploading,
            DeployState::Queued,
            DeployState::Running
        ]
    );
    let job_states: Vec<&str> = rec.jobs.iter().map(|j| j.state.as_str()).collect();
    assert_eq!(job_states.first(), Some(&"queued"));
    assert!(job_states.contains(&"running"));
    assert_eq!(job_states.last(), Some(&"finished"));
    let job_guid = &outcome.job.as_ref().unwrap().guid;
    assert_ne!(job_guid, "0", "the upload's job guid, not the null job's");
    assert!(rec.jobs.iter().all(|j| &j.guid == job_guid));

    let package = h
        .emu
        .api
        .app(outcome.id.as_deref().unwrap())
        .unwrap()
        .package
        .unwrap();
    assert_eq!(package["run.sh"].mode, 0o755);
    assert_eq!(package["start"].link_target.as_deref(), Some("run.sh"));
    assert_eq!(package["z"].size, 0);
    assert!(
        !package.contains_key("empty/"),
        "the Cloud Controller strips directories"
    );
}

#[tokio::test]
async fn a_failed_job_ends_with_the_servers_description() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("broken");
    write(&dir, "spec.json", name_spec("broken"));
    write(&dir, "big.bin", noise(9, 200_000));
    write(&dir, "app.py", "print('hi')\n");

    h.emu.api.inject(CfFault::CorruptNextZip);
    let (result, rec) = h.deploy(&client, &dir).await;
    match result {
        Err(DeployError::JobFailed(message)) => assert_eq!(
            message,
            "The app upload is invalid: Invalid zip archive. (CF-AppBitsUploadInvalid)"
        ),
        other => panic!("expected a failed job, got {other:?}"),
    }
    assert_eq!(rec.get().jobs.last().unwrap().state, "failed");
    let guid = rec.get().ids[0].clone();
    assert_eq!(h.emu.api.app(&guid).unwrap().package_state, "FAILED");

    // Works again; then the pool loses its blobs between match and upload,
    // and the server's own check catches the stale fingerprint.
    h.deploy(&client, &dir).await.0.unwrap();
    h.emu.api.inject(CfFault::EvictPoolAfterNextMatch);
    let (result, _) = h.deploy(&client, &dir).await;
    match result {
        Err(DeployError::JobFailed(message)) => assert_eq!(
            message,
            "Failed to perform blobstore operation after three retries. (CF-BlobstoreError)"
        ),
        other => panic!("expected a failed job, got {other:?}"),
    }
    let (result, _) = h.deploy(&client, &dir).await;
    result.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(
        sorted(upload.zipped_files),
        ["app.py", "big.bin"],
        "an empty pool: everything again"
    );
}

#[tokio::test]
async fn apps_are_created_by_name_found_by_name_or_given_by_guid() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("named");
    write(&dir, "spec.json", name_spec("shop"));
    write(&dir, "index.html", "<h1>shop</h1>");
    let created = h.deploy(&client, &dir).await.0.unwrap().id.unwrap();
    let app = h.emu.api.app(&created).unwrap();
    assert_eq!(
        (app.name.as_str(), app.space_guid.as_str()),
        ("shop", DEMO_SPACE_GUID)
    );
    let found = h.deploy(&client, &dir).await.0.unwrap().id.unwrap();
    assert_eq!(found, created);

    // A name without a space uses the configured default space.
    write(&dir, "spec.json", json!({"name": "shop"}).to_string());
    assert_eq!(
        h.deploy(&client, &dir).await.0.unwrap().id.unwrap(),
        created
    );

    let existing = h.emu.api.create_app("pre-made", DEMO_SPACE_GUID);
    write(&dir, "spec.json", json!({"guid": existing}).to_string());
    assert_eq!(
        h.deploy(&client, &dir).await.0.unwrap().id.unwrap(),
        existing
    );

    write(
        &dir,
        "spec.json",
        json!({"guid": "no-such-app"}).to_string(),
    );
    match h.deploy(&client, &dir).await.0 {
        Err(DeployError::Rejected {
            status: 404,
            message,
        }) => {
            assert_eq!(
                message,
                "The app could not be found: no-such-app (CF-AppNotFound)"
            )
        }
        other => panic!("{other:?}"),
    }
    // CC reports an unknown space with the apps controller's not-found error.
    write(
        &dir,
        "spec.json",
        json!({"name": "x", "space_guid": "no-such-space"}).to_string(),
    );
    match h.deploy(&client, &dir).await.0 {
        Err(DeployError::Rejected {
            status: 404,
            message,
        }) => {
            assert!(message.contains("CF-AppNotFound"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.emu.api.uploads().len(), 4);
}

#[tokio::test]
async fn bad_specs_fail_before_any_request() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("bad");
    write(&dir, "spec.json", "{\"guid\": 1}");
    write(&dir, "a.txt", "a");
    assert!(matches!(
        h.deploy(&client, &dir).await.0,
        Err(DeployError::InvalidSpec(_))
    ));
    std::fs::remove_file(dir.join("spec.json")).unwrap();
    assert!(matches!(
        h.deploy(&client, &dir).await.0,
        Err(DeployError::InvalidSpec(_))
    ));
    assert!(h.emu.api.matches().is_empty() && h.emu.api.uploads().is_empty());
}

/// A logged-in cf CLI in a temp CF_HOME, with an expired access token.
fn cf_home_with_login(h: &Harness, access_token: &str) -> (PathBuf, Vec<u8>) {
    let home = h.tmp.path().join("cf-home");
    let config = json!({
        "ConfigVersion": 3,
        "Target": h.emu.url,
        "APIVersion": "2.164.0",
        "AuthorizationEndpoint": h.emu.url,
        "UaaEndpoint": h.emu.url,
        "AccessToken": format!("bearer {access_token}"),
        "RefreshToken": DEMO_REFRESH_TOKEN,
        "UAAOAuthClient": "cf",
        "UAAOAuthClientSecret": "",
        "SSLDisabled": false,
        "OrganizationFields": {"GUID": "org", "Name": "demo-org"},
        "SpaceFields": {"GUID": DEMO_SPACE_GUID, "Name": "demo", "AllowSSH": true},
    });
    let bytes = serde_json::to_vec_pretty(&config).unwrap();
    write(&home, ".cf/config.json", &bytes);
    (home, bytes)
}

#[tokio::test]
async fn a_cf_cli_login_is_reused_and_refreshed_without_touching_its_file() {
    let h = Harness::start().await;
    let expired = h.emu.api.mint_token(
        DEVELOPER_SCOPES,
        SystemTime::now() - Duration::from_secs(3600),
    );
    let (home, original) = cf_home_with_login(&h, &expired);
    let mut config = CfConfig::default();
    config.apply_env(&[("CF_HOME".to_string(), home.display().to_string())].into());
    let client = CfClient::new(&config);

    // A cf app folder: a manifest and no spec.json.
    let dir = h.app_dir("cf-folder");
    write(
        &dir,
        "manifest.yml",
        "---\napplications:\n- name: from-manifest\n  memory: 64M\n",
    );
    write(&dir, "app.rb", "puts 'hi'\n");
    let (result, rec) = h.deploy(&client, &dir).await;
    let outcome = result.unwrap();
    assert_eq!(h.emu.api.refreshes(), 1);
    let app = h.emu.api.app(outcome.id.as_deref().unwrap()).unwrap();
    assert_eq!(
        (app.name.as_str(), app.space_guid.as_str()),
        ("from-manifest", DEMO_SPACE_GUID)
    );
    assert_eq!(
        h.emu.api.uploads()[0].zipped_files,
        ["app.rb"],
        "the manifest is not uploaded"
    );
    assert!(rec
        .get()
        .log
        .iter()
        .any(|l| l.contains("expires within a minute")));

    // The refreshed token is reused; the cf CLI's file is untouched.
    h.deploy(&client, &dir).await.0.unwrap();
    assert_eq!(h.emu.api.refreshes(), 1);
    assert_eq!(
        std::fs::read(home.join(".cf/config.json")).unwrap(),
        original
    );

    // A token the server refuses (not a JWT, so no expiry to read) is
    // refreshed after the 401.
    let h2 = Harness::start().await;
    let (home2, _) = cf_home_with_login(&h2, "opaque-revoked-token");
    let client2 = CfClient::new(&CfConfig {
        cf_home: Some(home2),
        api: ApiChoice::V2,
        ..CfConfig::default()
    });
    let dir2 = h2.app_dir("cf-folder");
    write(&dir2, "manifest.yaml", "applications:\n- name: second\n");
    write(&dir2, "app.rb", "puts 'hi'\n");
    let (result, rec) = h2.deploy(&client2, &dir2).await;
    result.unwrap();
    assert_eq!(h2.emu.api.refreshes(), 1);
    assert!(rec.get().log.iter().any(|l| l.contains(REFUSED_TOKEN)));

    // A token the server would still take, but with under a minute left,
    // is refreshed before use, as the cf CLI does.
    let h3 = Harness::start().await;
    let soon = h3.emu.api.mint_token(
        DEVELOPER_SCOPES,
        SystemTime::now() + Duration::from_secs(30),
    );
    let (home3, _) = cf_home_with_login(&h3, &soon);
    let client3 = CfClient::new(&CfConfig {
        cf_home: Some(home3),
        api: ApiChoice::V2,
        ..CfConfig::default()
    });
    let (result, rec) = h3.deploy(&client3, &dir2).await;
    result.unwrap();
    assert_eq!(h3.emu.api.refreshes(), 1);
    assert!(rec
        .get()
        .log
        .iter()
        .any(|l| l.contains("expires within a minute")));
    assert!(!rec.get().log.iter().any(|l| l.contains(REFUSED_TOKEN)));
}

#[tokio::test]
async fn a_refused_refresh_asks_for_cf_login() {
    let h = Harness::start().await;
    let expired = h.emu.api.mint_token(
        DEVELOPER_SCOPES,
        SystemTime::now() - Duration::from_secs(60),
    );
    let (home, _) = cf_home_with_login(&h, &expired);
    let path = home.join(".cf/config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(DEMO_REFRESH_TOKEN, "stale-refresh-token");
    std::fs::write(&path, text).unwrap();
    let client = CfClient::new(&CfConfig {
        cf_home: Some(home),
        api: ApiChoice::V2,
        ..CfConfig::default()
    });
    let dir = h.app_dir("stale");
    write(&dir, "spec.json", name_spec("stale"));
    write(&dir, "a.txt", "a");
    match h.deploy(&client, &dir).await.0 {
        Err(DeployError::Rejected {
            status: 401,
            message,
        }) => {
            assert!(message.contains("cf login"), "{message}");
            assert!(!message.contains("stale-refresh-token"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn cfignore_and_the_cf_cli_defaults_keep_files_out() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("ignored");
    write(&dir, "spec.json", name_spec("ignored"));
    write(&dir, ".cfignore", "*.log\nsecret/\n");
    write(&dir, ".git/HEAD", "ref: refs/heads/main\n");
    write(&dir, ".gitignore", "target\n");
    write(&dir, "build.log", "noise");
    write(&dir, "secret/key.pem", "-----BEGIN-----");
    write(&dir, "src/main.py", "print('kept')\n");
    write(&dir, "src/manifest.yml", "applications: []\n");
    write(&dir, "keep.txt", "kept");
    h.deploy(&client, &dir).await.0.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(sorted(upload.zipped_files), ["keep.txt", "src/main.py"]);
}

#[tokio::test]
async fn server_faults_are_retryable_and_v2_off_is_explained() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let dir = h.app_dir("faulty");
    write(&dir, "spec.json", name_spec("faulty"));
    write(&dir, "a.txt", "a");
    h.emu.faults.set(FaultPlan {
        fail_next: 1,
        status: Some(503),
        ..FaultPlan::default()
    });
    let err = h.deploy(&client, &dir).await.0.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        matches!(err, DeployError::ServerFailed { status: 503, .. }),
        "{err:?}"
    );
    h.deploy(&client, &dir).await.0.unwrap();

    // A failed resource match only costs the optimization.
    write(&dir, "big.bin", noise(5, 100_000));
    h.deploy(&client, &dir).await.0.unwrap();
    h.emu.api.inject(CfFault::FailNextMatch);
    let (result, rec) = h.deploy(&client, &dir).await;
    result.unwrap();
    assert!(
        rec.get()
            .log
            .iter()
            .any(|l| l.contains("resource match failed")),
        "{:?}",
        rec.get().log
    );
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(sorted(upload.zipped_files), ["a.txt", "big.bin"]);

    // With v2 off, a client held to v2 explains why; `auto` (the
    // default) goes through v3 instead (tests/cf_v3_api.rs).
    h.emu.api.update_settings(|s| s.v2_enabled = false);
    let v2_only = CfClient::new(&CfConfig {
        api: pushfs::backend::cf::ApiChoice::V2,
        ..h.demo_config()
    });
    match h.deploy(&v2_only, &dir).await.0 {
        Err(DeployError::Rejected {
            status: 404,
            message,
        }) => {
            assert!(message.contains("v2 API turned off"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let (result, rec) = h.deploy(&h.client(), &dir).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(rec.states().contains(&DeployState::Staging));
}

#[tokio::test]
async fn a_job_that_never_ends_hits_the_timeout() {
    let h = Harness::start().await;
    h.emu.api.update_settings(|s| {
        s.job_pacing = JobPacing {
            queued_polls: u32::MAX,
            running_polls: 0,
        }
    });
    let client = CfClient::new(&CfConfig {
        job_timeout_secs: Some(1),
        api: ApiChoice::V2,
        ..h.demo_config()
    });
    let dir = h.app_dir("slow");
    write(&dir, "spec.json", name_spec("slow"));
    write(&dir, "a.txt", "a");
    match h.deploy(&client, &dir).await.0 {
        Err(DeployError::JobFailed(message)) => {
            assert!(message.contains("still queued"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn secrets_never_reach_reports_or_errors() {
    let h = Harness::start().await;
    let expired = h.emu.api.mint_token(
        DEVELOPER_SCOPES,
        SystemTime::now() - Duration::from_secs(10),
    );
    let (home, _) = cf_home_with_login(&h, &expired);
    let client = CfClient::new(&CfConfig {
        cf_home: Some(home),
        api: ApiChoice::V2,
        ..CfConfig::default()
    });
    let demo = h.v2_client();
    let dir = h.app_dir("secrets");
    write(&dir, "spec.json", name_spec("secrets"));
    write(&dir, "a.txt", "a");
    let mut texts = Vec::new();
    for c in [&client, &demo] {
        let (result, rec) = h.deploy(c, &dir).await;
        result.unwrap();
        texts.push(rec.all_text());
    }
    h.emu.api.inject(CfFault::CorruptNextZip);
    let (result, rec) = h.deploy(&demo, &dir).await;
    texts.push(format!("{:?} {}", result.unwrap_err(), rec.all_text()));
    h.emu.faults.set(FaultPlan {
        fail_next: 1,
        status: Some(401),
        ..FaultPlan::default()
    });
    let (result, rec) = h.deploy(&demo, &dir).await;
    texts.push(format!("{:?} {}", result.unwrap_err(), rec.all_text()));
    texts.push(format!("{:?}", h.demo_config()));

    let mut secrets = vec![
        DEMO_TOKEN.to_string(),
        DEMO_REFRESH_TOKEN.to_string(),
        expired,
    ];
    secrets.extend(h.emu.api.issued_tokens());
    assert_eq!(secrets.len(), 4, "one refresh happened");
    for text in &texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {text}"
            );
        }
    }
}

/// A few conformance cases from the fact sheet, straight at the emulator.
#[tokio::test]
async fn emulator_follows_the_cloud_controller() {
    let h = Harness::start().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", h.emu.url);
    let auth = format!("bearer {DEMO_TOKEN}");
    let guid = h.emu.api.create_app("raw", DEMO_SPACE_GUID);

    // No token, bad token.
    let r = http.get(url("/v2/apps")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.text().await.unwrap(),
        "{\"description\":\"Authentication error\",\"error_code\":\"CF-NotAuthenticated\",\"code\":10002}\n"
    );
    let r = http
        .get(url("/v2/apps"))
        .header("authorization", "bearer x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("CF-InvalidAuthToken"));

    // Unknown app.
    let form = || reqwest::multipart::Form::new().text("resources", "[]");
    let r = http
        .put(url("/v2/apps/nope/bits?async=true"))
        .header("authorization", &auth)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("The app could not be found: nope"));

    // Missing resources: synchronous 400 even with async=true.
    let zip = || {
        reqwest::multipart::Part::bytes(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec())
            .file_name("application.zip")
    };
    let r = http
        .put(url(&format!("/v2/apps/{guid}/bits?async=true")))
        .header("authorization", &auth)
        .multipart(reqwest::multipart::Form::new().part("application", zip()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("missing :resources"));

    // `async` as a form field is dropped: the upload runs synchronously.
    let r = http
        .put(url(&format!("/v2/apps/{guid}/bits")))
        .header("authorization", &auth)
        .multipart(form().text("async", "true").part("application", zip()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.text().await.unwrap(), "{}");
    assert_eq!(
        h.emu.api.uploads().last().unwrap().dropped_fields,
        ["async"]
    );

    // No zip and no resources: invalid zip.
    let r = http
        .put(url(&format!("/v2/apps/{guid}/bits")))
        .header("authorization", &auth)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Invalid zip archive."));

    // Fingerprint checks: mode, path, unknown sha1.
    let fp = |f: &str, mode: &str, sha1: &str| {
        reqwest::multipart::Form::new().text(
            "resources",
            json!([{"fn": f, "sha1": sha1, "size": 2048, "mode": mode}]).to_string(),
        )
    };
    let sha = "a".repeat(40);
    for (form, status, needle) in [
        (
            fp("lol", "577", &sha),
            400,
            "File mode '577' with path 'lol' is invalid. Minimum file mode is '0600'",
        ),
        (
            fp("../../lol", "644", &sha),
            400,
            "File path '../../lol' is not safe.",
        ),
        (fp("ok", "644", &sha), 500, "CF-BlobstoreError"),
    ] {
        let r = http
            .put(url(&format!("/v2/apps/{guid}/bits")))
            .header("authorization", &auth)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{body}");
    }

    // Async bad fingerprint: 201 and a queued job that then fails.
    let r = http
        .put(url(&format!("/v2/apps/{guid}/bits?async=true")))
        .header("authorization", &auth)
        .multipart(fp("lol", "300", &sha))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let job: serde_json::Value = r.json().await.unwrap();
    assert_eq!(job["entity"]["status"], "queued");
    let job_url = url(job["metadata"]["url"].as_str().unwrap());
    let mut seen = Vec::new();
    for _ in 0..5 {
        let body: serde_json::Value = http
            .get(&job_url)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.push(body["entity"]["status"].as_str().unwrap().to_string());
        if seen.last().unwrap() == "failed" {
            assert_eq!(
                body["entity"]["error_details"]["error_code"],
                "CF-AppResourcesFileModeInvalid"
            );
            break;
        }
    }
    assert_eq!(seen, ["queued", "running", "failed"]);

    // A token without cloud_controller.read cannot read jobs.
    let write_only = h.emu.api.mint_token(
        &["cloud_controller.write"],
        SystemTime::now() + Duration::from_secs(60),
    );
    let r = http
        .get(&job_url)
        .header("authorization", format!("bearer {write_only}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("CF-InsufficientScope"));

    // resource_match: bad JSON, not an array.
    for (body, status, needle) in [
        ("not json", 400, "CF-MessageParseError"),
        ("null", 422, "must be an array."),
    ] {
        let r = http
            .put(url("/v2/resource_match"))
            .header("authorization", &auth)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
        assert!(r.text().await.unwrap().contains(needle));
    }

    // application_path in the query: nginx's 422.
    let r = http
        .put(url(&format!(
            "/v2/apps/{guid}/bits?application_path=/etc/passwd"
        )))
        .header("authorization", &auth)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // After a pooled upload: matches are echoed verbatim, size is ignored
    // on upload, and files under the minimum are never matched.
    let dir = h.app_dir("pooled");
    write(&dir, "spec.json", json!({"guid": guid}).to_string());
    write(&dir, "big.bin", noise(7, 70_000));
    write(&dir, "small.bin", noise(8, 1000));
    let client = h.v2_client();
    h.deploy(&client, &dir).await.0.unwrap();
    let snap = h.snapshot(&client, &dir);
    let sha1 = |p: &str| snap.find(p).unwrap().file().unwrap().blob.sha1_hex();
    let asked = json!([
        {"sha1": sha1("big.bin"), "size": 70000, "mode": "644", "fn": "a", "extra": [1]},
        {"sha1": sha1("big.bin"), "size": 70000, "fn": "no-mode"},
        {"sha1": sha1("small.bin"), "size": 1000, "mode": "644", "fn": "s"},
    ]);
    let r = http
        .put(url("/v2/resource_match"))
        .header("authorization", &auth)
        .body(asked.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer, json!([asked[0]]));
    let r = http
        .put(url(&format!("/v2/apps/{guid}/bits")))
        .header("authorization", &auth)
        .multipart(fp("renamed.bin", "600", &sha1("big.bin")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "size 2048 is wrong but not checked");
    let package = h.emu.api.app(&guid).unwrap().package.unwrap();
    assert_eq!(package["renamed.bin"].size, 70_000);
    assert_eq!(package["renamed.bin"].mode, 0o600);

    // Unknown routes and the info document.
    let r = http
        .get(url("/v2/nothing"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("CF-NotFound"));
    let info: serde_json::Value = http
        .get(url("/v2/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["authorization_endpoint"], h.emu.url);
}

#[tokio::test]
async fn the_example_app_deploys_as_shipped() {
    let h = Harness::start().await;
    let client = h.v2_client();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cf-hello");
    let manifest = std::fs::read_to_string(example.join("manifest.yml")).unwrap();
    assert!(manifest.contains("name: cf-hello"), "{manifest}");
    let (result, _) = h.deploy(&client, &example).await;
    let outcome = result.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(sorted(upload.zipped_files), ["Staticfile", "index.html"]);
    assert_eq!(
        h.emu.api.app(outcome.id.as_deref().unwrap()).unwrap().name,
        "cf-hello"
    );
}
