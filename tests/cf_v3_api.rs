//! The real cf client against the cf emulator over loopback, through v3:
//! `api = "auto"` choosing v3 when v2 is off, the push to RUNNING with
//! incremental uploads, `no_start`, the package, staging and crash
//! failures, forced `v2`/`v3`, URLs and tokens as pasted; and the
//! emulator's own v3 rules from the fact sheet.

mod common;

use common::cf_harness::{name_spec, noise, sorted, write, Harness, MIB};
use pushfs::backend::cf::{ApiChoice, CfClient, CfConfig};
use pushfs::backend::{DeployError, DeployState};
use pushfs::emulator::cf::{CfFault, DEMO_SPACE_GUID, DEMO_TOKEN};
use serde_json::{json, Value};

#[tokio::test]
async fn auto_pushes_through_v3_to_running_and_sends_only_what_changed() {
    let h = Harness::v2_off().await;
    let client = h.fast_client();
    let dir = h.app_dir("shop");
    write(&dir, "spec.json", name_spec("shop"));
    write(&dir, "a.bin", noise(1, 2 * MIB));
    write(&dir, "sub/b.bin", noise(2, 2 * MIB));
    write(&dir, "small.txt", "under the pool's minimum");
    write(&dir, "empty", "");

    let (result, rec) = h.deploy(&client, &dir).await;
    let first = result.unwrap();
    assert!(rec.has_log("offers v3; using v3"), "{:?}", rec.logs());
    let guid = first.id.clone().unwrap();
    let states = rec.states();
    let order = [
        DeployState::Packaging,
        DeployState::Uploading,
        DeployState::Processing,
        DeployState::Staging,
        DeployState::Starting,
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|s| states.iter().position(|x| x == s).expect("every phase"))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{states:?}");

    let job = first.job.clone().unwrap();
    let lines: Vec<String> = job.render().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("package ") && lines[0].ends_with(" READY"));
    assert!(lines[1].starts_with("build ") && lines[1].ends_with(" STAGED"));
    assert!(lines[2].starts_with("droplet ") && lines[2].ends_with(" STAGED"));

    let packages = h.emu.api.packages();
    assert_eq!(packages.len(), 1);
    assert_eq!(packages[0].state, "READY");
    assert_eq!(first.hash, packages[0].sha256, "the server's SHA-256");
    assert_eq!(first.hash.as_ref().map(String::len), Some(64));
    let app = h.emu.api.app(&guid).unwrap();
    assert_eq!(app.state, "STARTED");
    assert!(app.current_droplet.is_some());
    assert!(lines[2].contains(app.current_droplet.as_deref().unwrap()));
    let stored = sorted(app.package.unwrap().into_keys().collect());
    assert_eq!(stored, ["a.bin", "empty", "small.txt", "sub/b.bin"]);

    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(
        upload.package_guid.as_deref(),
        Some(packages[0].guid.as_str())
    );
    assert_eq!(upload.field_order, ["resources", "bits"], "resources first");
    assert_eq!(upload.resources, 0);
    assert_eq!(
        sorted(upload.zipped_files),
        ["a.bin", "empty", "small.txt", "sub/b.bin"]
    );
    let asked = h.emu.api.matches().pop().unwrap().asked;
    assert_eq!(
        sorted(asked),
        ["a.bin", "sub/b.bin"],
        "only files the pool can hold, never empty ones"
    );

    // A small edit: the big files come from the pool, the edit travels.
    write(&dir, "small.txt", "edited");
    let (result, _) = h.deploy(&client, &dir).await;
    let second = result.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(sorted(upload.zipped_files), ["empty", "small.txt"]);
    assert_eq!(upload.resources, 2);
    assert!(upload.application_bytes.unwrap() < 4096);
    assert_ne!(second.hash, first.hash);
    assert_eq!(h.emu.api.apps().len(), 1, "found by name the second time");
    let app = h.emu.api.app(&guid).unwrap();
    assert_eq!(app.package.unwrap()["a.bin"].size, (2 * MIB) as u64);
}

#[tokio::test]
async fn everything_matched_sends_only_resources() {
    let h = Harness::v2_off().await;
    let client = h.fast_client();
    let dir = h.app_dir("pooled");
    write(&dir, "spec.json", name_spec("pooled"));
    write(&dir, "a.bin", noise(7, MIB));
    h.deploy(&client, &dir).await.0.unwrap();
    let (result, rec) = h.deploy(&client, &dir).await;
    let outcome = result.unwrap();
    let upload = h.emu.api.uploads().pop().unwrap();
    assert_eq!(upload.application_bytes, None, "no bits part");
    assert_eq!(upload.field_order, ["resources"]);
    assert_eq!(upload.resources, 1);
    assert!(rec.has_log("every file is already on the server"));
    assert_eq!(outcome.hash.as_ref().map(String::len), Some(64));
}

#[tokio::test]
async fn no_start_stops_after_the_package() {
    let h = Harness::v2_off().await;
    let client = h.fast_client();
    let dir = h.app_dir("quiet");
    write(&dir, "spec.json", name_spec("quiet"));
    write(&dir, "index.html", "<p>hi</p>");
    let first = h.deploy(&client, &dir).await.0.unwrap();
    let guid = first.id.unwrap();
    let droplet = h.emu.api.app(&guid).unwrap().current_droplet;
    assert_eq!(h.emu.api.builds_created(), 1);

    write(
        &dir,
        "spec.json",
        json!({"name": "quiet", "space_guid": DEMO_SPACE_GUID, "no_start": true}).to_string(),
    );
    write(&dir, "index.html", "<p>changed</p>");
    let (result, rec) = h.deploy(&client, &dir).await;
    let outcome = result.unwrap();
    assert_eq!(h.emu.api.builds_created(), 1, "no build");
    let app = h.emu.api.app(&guid).unwrap();
    assert_eq!(
        app.state, "STOPPED",
        "a started app is stopped, as cf push --no-start does"
    );
    assert_eq!(app.current_droplet, droplet, "the droplet is unchanged");
    assert!(!rec.states().contains(&DeployState::Staging));
    assert_eq!(outcome.job.unwrap().steps.len(), 1, "the package only");
    assert_eq!(h.emu.api.packages().last().unwrap().state, "READY");
}

#[tokio::test]
async fn failures_carry_the_servers_reason() {
    let h = Harness::v2_off().await;
    let client = h.fast_client();
    let dir = h.app_dir("failing");
    write(&dir, "spec.json", name_spec("failing"));
    write(&dir, "index.html", "<p>hi</p>");

    h.emu.api.inject(CfFault::CorruptNextZip);
    match h.deploy(&client, &dir).await.0 {
        Err(DeployError::JobFailed(message)) => assert!(
            message.contains("The app upload is invalid: Invalid zip archive"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }

    h.emu.api.inject(CfFault::FailNextStaging);
    let (result, rec) = h.deploy(&client, &dir).await;
    match result {
        Err(DeployError::JobFailed(message)) => {
            assert!(
                message.starts_with("staging failed: NoAppDetectedError"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    let job = rec.get().jobs.pop().unwrap();
    assert!(job.render().contains(" FAILED"), "{}", job.render());

    h.emu.api.update_settings(|s| {
        s.instances = 2;
        s.instances_crash = true;
    });
    match h.deploy(&client, &dir).await.0 {
        Err(err @ DeployError::JobFailed(_)) => {
            assert!(!err.is_retryable());
            assert!(err.to_string().contains("all instances crashed"), "{err}")
        }
        other => panic!("{other:?}"),
    }

    h.emu.api.update_settings(|s| s.instances_crash = false);
    h.deploy(&client, &dir).await.0.unwrap();
}

#[tokio::test]
async fn a_slow_start_hits_the_startup_timeout() {
    let h = Harness::v2_off().await;
    h.emu
        .api
        .update_settings(|s| s.v3_pacing.starting_polls = u32::MAX);
    let client = CfClient::new(&CfConfig {
        startup_timeout_secs: Some(1),
        ..h.fast_config()
    });
    let dir = h.app_dir("slow");
    write(&dir, "spec.json", name_spec("slow"));
    write(&dir, "a.txt", "a");
    match h.deploy(&client, &dir).await.0 {
        Err(DeployError::JobFailed(message)) => {
            assert!(message.contains("still STARTING"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn forced_apis_and_pasted_urls_and_tokens() {
    let h = Harness::start().await;
    let dir = h.app_dir("forced");
    write(&dir, "spec.json", name_spec("forced"));
    write(&dir, "a.txt", "a");

    // v2 on: auto still pushes through v3, as every foundation links it;
    // v2 is taken only when configured.
    let auto = h.deploy(&h.fast_client(), &dir).await.0.unwrap();
    assert!(h.emu.api.uploads().pop().unwrap().package_guid.is_some());
    assert_eq!(auto.job.unwrap().steps.len(), 3, "package, build, droplet");
    let v2 = CfClient::new(&CfConfig {
        api: ApiChoice::V2,
        ..h.fast_config()
    });
    h.deploy(&v2, &dir).await.0.unwrap();
    assert_eq!(h.emu.api.uploads().pop().unwrap().package_guid, None);
    let v3 = CfClient::new(&CfConfig {
        api: ApiChoice::V3,
        ..h.fast_config()
    });
    h.deploy(&v3, &dir).await.0.unwrap();
    assert!(h.emu.api.uploads().pop().unwrap().package_guid.is_some());

    // v2 off: forced v2 says what to do.
    h.emu.api.update_settings(|s| s.v2_enabled = false);
    match h.deploy(&v2, &dir).await.0 {
        Err(DeployError::Rejected {
            status: 404,
            message,
        }) => {
            assert!(message.contains("v2 API turned off"), "{message}");
            assert!(message.contains("api = \"auto\""), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // A URL with a trailing slash, a token with any case of "bearer ".
    for token in [
        format!("Bearer {DEMO_TOKEN}"),
        format!("BEARER {DEMO_TOKEN}"),
        DEMO_TOKEN.to_string(),
    ] {
        let pasted = CfClient::new(&CfConfig {
            url: Some(format!("{}/ ", h.emu.url)),
            token: Some(format!(" {token}\n")),
            ..h.fast_config()
        });
        h.deploy(&pasted, &dir).await.0.unwrap();
    }
}

#[tokio::test]
async fn without_a_root_document_auto_learns_from_v2_endpoints_disabled() {
    let h = Harness::v2_off().await;
    h.emu.api.update_settings(|s| s.serve_root = false);
    let dir = h.app_dir("hidden-root");
    write(&dir, "spec.json", name_spec("hidden-root"));
    write(&dir, "a.txt", "a");
    let (result, rec) = h.deploy(&h.fast_client(), &dir).await;
    result.unwrap();
    assert!(
        rec.has_log("V2 endpoints disabled; using v3"),
        "{:?}",
        rec.logs()
    );
    assert_eq!(h.emu.api.packages().len(), 1);
}

/// The emulator's v3 rules, straight from the fact sheet.
#[tokio::test]
async fn emulator_follows_the_v3_cloud_controller() {
    let h = Harness::v2_off().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", h.emu.url);
    let auth = format!("bearer {DEMO_TOKEN}");

    // v2 off: the root lacks cloud_controller_v2, nginx answers /v2/*.
    let root: Value = http
        .get(url("/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(root["links"].get("cloud_controller_v2").is_none());
    assert!(root["links"]["cloud_controller_v3"]["href"].is_string());
    let r = http
        .get(url("/v2/apps"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "V2 endpoints disabled");
    let info: Value = http
        .get(url("/v2/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["api_version"], "");
    assert_eq!(info["support"], "CF API v2 is disabled");

    // Auth errors in the v3 shape.
    let r = http.get(url("/v3/apps")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.text().await.unwrap(),
        "{\"errors\":[{\"detail\":\"Authentication error\",\"title\":\"CF-NotAuthenticated\",\"code\":10002}]}"
    );

    // resource_matches: 201, validation 422, size 0 never matches.
    let post = |path: &str, body: Value| {
        http.post(url(path))
            .header("authorization", &auth)
            .json(&body)
            .send()
    };
    let r = post(
        "/v3/resource_matches",
        json!({"resources": [{"checksum": {"value": "a".repeat(40)}, "size_in_bytes": 0}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"resources": []}));
    let r = post("/v3/resource_matches", json!({"resources": []}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("at least 1 resource"));

    // A package: upload once, then PackageBitsAlreadyUploaded.
    let guid = h.emu.api.create_app("raw", DEMO_SPACE_GUID);
    let r = post(
        "/v3/packages",
        json!({"type": "bits", "relationships": {"app": {"data": {"guid": guid}}}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let package: Value = r.json().await.unwrap();
    assert_eq!(package["state"], "AWAITING_UPLOAD");
    assert_eq!(
        package["data"]["checksum"],
        json!({"type": "sha256", "value": null})
    );
    let pkg = package["guid"].as_str().unwrap().to_string();
    let upload_url = url(&format!("/v3/packages/{pkg}/upload"));
    let empty = reqwest::multipart::Form::new().text("resources", "[]");
    let r = http
        .post(&upload_url)
        .header("authorization", &auth)
        .multipart(empty)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Upload must include either resources or bits"));
    let bad = reqwest::multipart::Form::new().text("resources", "{");
    let r = http
        .post(&upload_url)
        .header("authorization", &auth)
        .multipart(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Resources must be valid JSON."));

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("index.html", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"<p>hi</p>").unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let form = || {
        reqwest::multipart::Form::new()
            .text("resources", "[]")
            .part(
                "bits",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name("package.zip"),
            )
    };
    // Staging before READY is refused.
    let r = http
        .post(&upload_url)
        .header("authorization", &auth)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["state"],
        "PROCESSING_UPLOAD"
    );
    let r = post("/v3/builds", json!({"package": {"guid": pkg}}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Cannot stage package whose state is not ready."));
    let r = http
        .post(&upload_url)
        .header("authorization", &auth)
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("CF-PackageBitsAlreadyUploaded"));

    // Start needs a droplet; a missing package is ResourceNotFound.
    let r = post(&format!("/v3/apps/{guid}/actions/restart"), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Assign a droplet before starting this app."));
    let r = http
        .get(url("/v3/packages/nope"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("\"Package not found\""));
}
