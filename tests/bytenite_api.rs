//! The real ByteNite client against the ByteNite emulator over loopback:
//! the fact sheet's conformance cases (B1–B8, B12), tokens, faults, secrets.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::report::Recorder;
use pushfs::backend::bytenite::{bundle, status_word, ByteniteClient, ByteniteConfig};
use pushfs::backend::{
    Backend, BackendKind, DeployError, DeployOutcome, DeployState, PreviousDeploy,
};
use pushfs::config::Config;
use pushfs::deploy::snapshot::Snapshot;
use pushfs::emulator::bytenite::{ActivationPlan, ByteniteEmulator, DEMO_API_KEY};
use pushfs::emulator::{serve, EmulatedApi, FaultPlan, Running};
use pushfs::store::ContentStore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const DEPLOY_TIMEOUT: Duration = Duration::from_secs(30);

const HELLO_MANIFEST: &str = r#"{
  "name": "hello-world",
  "version": "0.1",
  "description": "prints hello",
  "platform": "docker",
  "entrypoint": "main.py",
  "platform_config": {"container": "python:latest"},
  "device_requirements": {"min_cpu": 2, "min_memory": 2}
}"#;

struct Setup {
    tmp: tempfile::TempDir,
    store: ContentStore,
    emulator: Running<ByteniteEmulator>,
}

impl Setup {
    async fn start() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        let emulator = serve(Arc::new(ByteniteEmulator::new()), 0).await.unwrap();
        Setup {
            tmp,
            store,
            emulator,
        }
    }

    fn emu(&self) -> &ByteniteEmulator {
        &self.emulator.api
    }

    /// What `configure_client` sets: the URL and the demo API key.
    fn demo_config(&self) -> ByteniteConfig {
        let mut config = Config::with_state_dir(&self.tmp.path().join("state"));
        self.emulator
            .api
            .configure_client(&self.emulator.url, &mut config);
        config.bytenite
    }

    fn token_config(&self, token: &str) -> ByteniteConfig {
        ByteniteConfig {
            url: Some(self.emulator.url.clone()),
            api_key: None,
            token: Some(token.to_string()),
            activate: None,
            ..ByteniteConfig::default()
        }
    }

    fn demo_token(&self) -> String {
        self.emu().issue_token(DEMO_API_KEY).unwrap()
    }

    /// Writes an app folder of `files` (path, content) and snapshots it.
    fn app(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.tmp.path().join("apps").join(name);
        for (path, content) in files {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, content).unwrap();
        }
        dir
    }

    fn snapshot(&self, dir: &Path) -> Snapshot {
        Snapshot::from_dir(dir, BackendKind::Bytenite, &Default::default(), &self.store).unwrap()
    }

    fn hello(&self, name: &str) -> Snapshot {
        let dir = self.app(
            name,
            &[
                ("manifest.json", HELLO_MANIFEST),
                ("app/main.py", "print('hello')\n"),
            ],
        );
        self.snapshot(&dir)
    }

    async fn raw_push(&self, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/dev/apps", self.emulator.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let response = tokio::time::timeout(DEPLOY_TIMEOUT, request.send())
            .await
            .unwrap()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.emulator.url))
            .header("authorization", token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }
}

async fn deploy(
    config: &ByteniteConfig,
    snapshot: &Snapshot,
    report: &Recorder,
) -> Result<DeployOutcome, DeployError> {
    deploy_with(&ByteniteClient::new(config), snapshot, report).await
}

async fn deploy_with(
    client: &ByteniteClient,
    snapshot: &Snapshot,
    report: &Recorder,
) -> Result<DeployOutcome, DeployError> {
    let previous = PreviousDeploy::default();
    let deploying = client.deploy(snapshot, &previous, report);
    tokio::time::timeout(DEPLOY_TIMEOUT, deploying)
        .await
        .expect("a deploy ends in time")
}

fn hash_of(bytes: &[u8]) -> String {
    STANDARD.encode(Sha256::digest(bytes))
}

/// The bytes pushfs builds for `snapshot`, built outside the client.
fn expected_tar(snapshot: &Snapshot) -> Vec<u8> {
    let planned = bundle::bundle(snapshot).unwrap();
    let mut tar = Vec::new();
    planned.package.write(&mut tar).unwrap();
    tar
}

fn tar_paths(tar: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(tar);
    archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn tar_file(tar: &[u8], path: &str) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(path) {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut out).unwrap();
            return Some(out);
        }
    }
    None
}

fn tar_with(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn push_body(tar: &[u8]) -> Vec<u8> {
    json!({"data": STANDARD.encode(tar)})
        .to_string()
        .into_bytes()
}

#[tokio::test]
async fn b1_push_returns_the_app_with_every_field() {
    let env = Setup::start().await;
    let snapshot = env.hello("hello");
    let report = Recorder::default();
    let outcome = deploy(&env.demo_config(), &snapshot, &report)
        .await
        .unwrap();

    let apps = env.emu().apps();
    assert_eq!(apps.len(), 1);
    let record = &apps[0];
    let received = env.emu().tar_of(&record.id).unwrap();
    let ours = expected_tar(&snapshot);
    assert_eq!(
        received.as_slice(),
        ours.as_slice(),
        "the server got exactly the planned tar"
    );
    assert_eq!(env.emu().stats().last_tar_len, Some(ours.len() as u64));

    assert_eq!(outcome.id.as_deref(), Some(record.id.as_str()));
    assert_eq!(outcome.hash.as_deref(), Some(hash_of(&ours).as_str()));
    assert_eq!(outcome.revision.as_deref(), Some("1"));
    assert_eq!(outcome.job, None);
    let response = outcome.response.clone().unwrap();
    assert_eq!(response["name"], "hello-world");
    assert_eq!(response["version"], "0.1");
    assert_eq!(response["platform"], "docker");
    assert_eq!(response["entrypoint"], "main.py");
    assert_eq!(response["description"], "prints hello");
    assert_eq!(response["platformConfig"]["container"], "python:latest");
    assert_eq!(
        response["deviceRequirements"],
        json!({"minCpu": 2, "minMemory": 2, "gpu": []})
    );
    assert_eq!(response["revision"], "1");
    assert_eq!(response["status"], "inactive");
    assert_eq!(response["isPublic"], false);
    assert_eq!(response["userName"], "demo");
    assert_eq!(response["hash"], hash_of(&ours));
    assert_eq!(response["createdAt"], response["updatedAt"]);

    assert_eq!(report.ids(), vec![record.id.clone()]);
    assert_eq!(report.last_response(), Some(response));
    let states = report.states();
    assert!(states.contains(&DeployState::Uploading), "{states:?}");
    assert!(
        report.has_log("matches the tar we sent"),
        "{:?}",
        report.logs()
    );
    assert!(
        report.has_log("pushed hello-world@0.1"),
        "{:?}",
        report.logs()
    );

    let paths = tar_paths(&received);
    assert_eq!(paths, ["app", "app/main.py", "manifest.json"]);
    let manifest: Value =
        serde_json::from_slice(&tar_file(&received, "manifest.json").unwrap()).unwrap();
    assert_eq!(manifest["name"], "hello-world");
    assert_eq!(manifest["device_requirements"]["min_cpu"], 2);
}

#[tokio::test]
async fn a_different_server_hash_is_a_warning_not_a_failure() {
    let env = Setup::start().await;
    env.emu().hash_base64_text(true);
    let snapshot = env.hello("hash");
    let report = Recorder::default();
    let outcome = deploy(&env.demo_config(), &snapshot, &report)
        .await
        .unwrap();
    let ours = hash_of(&expected_tar(&snapshot));
    let theirs = env.emu().apps()[0].hash.clone();
    assert_ne!(theirs, ours);
    assert_eq!(
        outcome.hash.as_deref(),
        Some(theirs.as_str()),
        "the server's hash is kept"
    );
    let warning = report
        .logs()
        .into_iter()
        .find(|l| l.contains("differs"))
        .expect("a warning line");
    assert!(
        warning.contains(&theirs) && warning.contains(&ours),
        "{warning}"
    );
}

#[tokio::test]
async fn b2_no_or_bad_token_is_refused_with_401() {
    let env = Setup::start().await;
    let tar = tar_with(&[("manifest.json", HELLO_MANIFEST), ("app/main.py", "")]);
    let (status, body) = env.raw_push(None, push_body(&tar)).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], 16);
    let (status, body) = env.raw_push(Some("not-a-token"), push_body(&tar)).await;
    assert_eq!((status, body["code"].clone()), (401, json!(16)));
    let token = env.demo_token();
    let (status, _) = env
        .raw_push(Some(&format!("Bearer {token}")), push_body(&tar))
        .await;
    assert_eq!(status, 401, "the token goes bare, without Bearer");

    let report = Recorder::default();
    let err = deploy(
        &env.token_config("wrong-token-1234"),
        &env.hello("a"),
        &report,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeployError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("PUSHFS_BYTENITE_TOKEN"), "{err}");
    assert_eq!(
        env.emu().stats().upload_requests,
        4,
        "one attempt, no renewal without an API key"
    );
    assert_eq!(report.last_response().unwrap()["code"], 16);
}

#[tokio::test]
async fn missing_configuration_is_reported_before_any_request() {
    let env = Setup::start().await;
    let snapshot = env.hello("a");
    let mut config = env.demo_config();
    config.api_key = None;
    let err = deploy(&config, &snapshot, &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::NotConfigured { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("[bytenite] api_key or token / PUSHFS_BYTENITE_API_KEY"),
        "{err}"
    );

    let config = ByteniteConfig {
        url: None,
        api_key: Some(DEMO_API_KEY.into()),
        token: None,
        activate: None,
        ..ByteniteConfig::default()
    };
    let err = deploy(&config, &snapshot, &Recorder::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("[bytenite] url"), "{err}");
    assert_eq!(env.emu().stats(), Default::default());
}

#[tokio::test]
async fn b3_to_b7_malformed_pushes_are_400_with_field_messages() {
    let env = Setup::start().await;
    let token = env.demo_token();
    let expect_400 = |(status, body): (u16, Value), needle: &str| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], 3, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    };
    // B3
    expect_400(
        env.raw_push(Some(&token), b"{}".to_vec()).await,
        "data is required",
    );
    expect_400(
        env.raw_push(Some(&token), b"{not json".to_vec()).await,
        "not valid JSON",
    );
    // B4
    let body = br#"{"data":"%%%notbase64"}"#.to_vec();
    expect_400(env.raw_push(Some(&token), body).await, "not valid base64");
    let garbage = vec![0x55u8; 2048];
    expect_400(
        env.raw_push(Some(&token), push_body(&garbage)).await,
        "not a valid tar",
    );
    // B5
    let no_manifest = tar_with(&[("app/main.py", "print(1)")]);
    expect_400(
        env.raw_push(Some(&token), push_body(&no_manifest)).await,
        "manifest.json not found",
    );
    // B6
    let bad_name = HELLO_MANIFEST.replace("hello-world", "my app!");
    let tar = tar_with(&[("manifest.json", &bad_name), ("app/main.py", "")]);
    expect_400(
        env.raw_push(Some(&token), push_body(&tar)).await,
        "name \"my app!\" is not valid",
    );
    // B7
    let bad_version = HELLO_MANIFEST.replace("\"0.1\"", "\"1.2.3\"");
    let tar = tar_with(&[("manifest.json", &bad_version), ("app/main.py", "")]);
    expect_400(
        env.raw_push(Some(&token), push_body(&tar)).await,
        "major.minor",
    );
    let no_entry = tar_with(&[("manifest.json", HELLO_MANIFEST)]);
    expect_400(
        env.raw_push(Some(&token), push_body(&no_entry)).await,
        "no app/main.py",
    );
    assert!(env.emu().apps().is_empty());
}

#[tokio::test]
async fn b6_b7_the_client_refuses_bad_manifests_locally() {
    let env = Setup::start().await;
    for (bad, needle) in [
        ("\"hello-world\"", "name \"my app!\""),
        ("\"0.1\"", "major.minor"),
    ] {
        let replacement = if needle.starts_with("name") {
            "\"my app!\""
        } else {
            "\"1.2.3\""
        };
        let manifest = HELLO_MANIFEST.replace(bad, replacement);
        let dir = env.app(needle, &[("manifest.json", &manifest), ("app/main.py", "")]);
        let err = deploy(
            &env.demo_config(),
            &env.snapshot(&dir),
            &Recorder::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, DeployError::InvalidSpec(_)), "{err:?}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    let dir = env.app(
        "noentry",
        &[("manifest.json", HELLO_MANIFEST), ("app/other.py", "")],
    );
    let err = deploy(
        &env.demo_config(),
        &env.snapshot(&dir),
        &Recorder::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("app/main.py"), "{err}");
    assert_eq!(env.emu().stats(), Default::default(), "nothing was sent");
}

#[tokio::test]
async fn b8_same_name_and_version_is_a_new_revision_of_the_same_app() {
    let env = Setup::start().await;
    let config = env.demo_config();
    let dir = env.app(
        "b8",
        &[
            ("manifest.json", HELLO_MANIFEST),
            ("app/main.py", "print(1)\n"),
        ],
    );
    let first = deploy(&config, &env.snapshot(&dir), &Recorder::default())
        .await
        .unwrap();
    fs::write(dir.join("app/main.py"), "print(2)\n").unwrap();
    let second = deploy(&config, &env.snapshot(&dir), &Recorder::default())
        .await
        .unwrap();

    assert_eq!(first.id, second.id);
    assert_eq!(first.revision.as_deref(), Some("1"));
    assert_eq!(second.revision.as_deref(), Some("2"));
    assert_ne!(first.hash, second.hash);
    let (a, b) = (first.response.unwrap(), second.response.unwrap());
    assert_eq!(a["createdAt"], b["createdAt"]);
    assert!(b["updatedAt"].as_str().unwrap() > a["updatedAt"].as_str().unwrap());
    assert_eq!(env.emu().apps().len(), 1);

    let v2 = HELLO_MANIFEST.replace("\"0.1\"", "\"0.2\"");
    fs::write(dir.join("manifest.json"), v2).unwrap();
    let third = deploy(&config, &env.snapshot(&dir), &Recorder::default())
        .await
        .unwrap();
    assert_ne!(third.id, first.id, "a new version is a new record");
    assert_eq!(third.revision.as_deref(), Some("1"));

    let token = env.demo_token();
    let (status, got) = env.get(&token, "/v1/dev/apps/hello-world@0").await;
    assert_eq!(status, 200);
    assert_eq!(got["app"]["version"], "0.2");
    let (_, got) = env.get(&token, "/v1/dev/apps/hello-world@0.1").await;
    assert_eq!(got["app"]["revision"], "2");
    let (_, list) = env.get(&token, "/v1/dev/apps").await;
    assert_eq!(list["apps"].as_array().unwrap().len(), 2);
    let (status, got) = env.get(&token, "/v1/dev/apps/nope").await;
    assert_eq!((status, got["code"].clone()), (404, json!(5)));
}

#[tokio::test]
async fn b12_capitalised_keys_are_accepted() {
    let env = Setup::start().await;
    let manifest = r#"{"Name":"caps","Version":"1.0","Platform":"docker","Entrypoint":"main.py",
        "Description":"d","platform_config":{"container":"python:3.12-slim"}}"#;
    let token = env.demo_token();
    let tar = tar_with(&[("manifest.json", manifest), ("app/main.py", "")]);
    let (status, body) = env.raw_push(Some(&token), push_body(&tar)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "caps");
    assert_eq!(body["entrypoint"], "main.py");

    let dir = env.app("caps", &[("manifest.json", manifest), ("app/main.py", "")]);
    let outcome = deploy(
        &env.demo_config(),
        &env.snapshot(&dir),
        &Recorder::default(),
    )
    .await
    .unwrap();
    let response = outcome.response.unwrap();
    assert_eq!(response["name"], "caps");
    assert_eq!(
        response["revision"], "2",
        "same owner, name and version as the raw push"
    );
}

#[tokio::test]
async fn flat_folder_with_spec_json_is_packed_under_app() {
    let env = Setup::start().await;
    let spec = r#"{"name":"flat","version":"0.1","entrypoint":"main.py",
        "platform_config":{"container":"python:3.12-slim"}}"#;
    let dir = env.app(
        "flat",
        &[
            ("spec.json", spec),
            ("main.py", "print(1)"),
            ("lib/util.py", ""),
        ],
    );
    let outcome = deploy(
        &env.demo_config(),
        &env.snapshot(&dir),
        &Recorder::default(),
    )
    .await
    .unwrap();
    let tar = env.emu().tar_of(outcome.id.as_deref().unwrap()).unwrap();
    assert_eq!(
        tar_paths(&tar),
        [
            "app",
            "app/lib",
            "app/lib/util.py",
            "app/main.py",
            "manifest.json"
        ]
    );
    let manifest: Value =
        serde_json::from_slice(&tar_file(&tar, "manifest.json").unwrap()).unwrap();
    assert_eq!(manifest["platform"], "docker");
}

#[tokio::test]
async fn spec_json_overrides_manifest_json() {
    let env = Setup::start().await;
    let dir = env.app(
        "over",
        &[
            ("manifest.json", HELLO_MANIFEST),
            (
                "spec.json",
                r#"{"version":"2.5","platform_config":{"container":"python:3.13"}}"#,
            ),
            ("app/main.py", ""),
        ],
    );
    let outcome = deploy(
        &env.demo_config(),
        &env.snapshot(&dir),
        &Recorder::default(),
    )
    .await
    .unwrap();
    let response = outcome.response.unwrap();
    assert_eq!(response["version"], "2.5");
    assert_eq!(response["platformConfig"]["container"], "python:3.13");
    assert_eq!(response["deviceRequirements"]["minCpu"], 2);
    let tar = env.emu().tar_of(outcome.id.as_deref().unwrap()).unwrap();
    assert!(
        tar_file(&tar, "spec.json").is_none(),
        "spec.json is folded into manifest.json"
    );
}

#[tokio::test]
async fn api_key_tokens_are_cached_and_renewed_after_a_401() {
    let env = Setup::start().await;
    let client = ByteniteClient::new(&env.demo_config());
    let snapshot = env.hello("renew");
    deploy_with(&client, &snapshot, &Recorder::default())
        .await
        .unwrap();
    deploy_with(&client, &snapshot, &Recorder::default())
        .await
        .unwrap();
    assert_eq!(
        env.emu().stats().tokens_issued,
        1,
        "the token is reused while fresh"
    );

    env.emu().revoke_tokens();
    let report = Recorder::default();
    let outcome = deploy_with(&client, &snapshot, &report).await.unwrap();
    assert_eq!(outcome.revision.as_deref(), Some("3"));
    let stats = env.emu().stats();
    assert_eq!(stats.tokens_issued, 2);
    assert_eq!(
        stats.upload_requests, 4,
        "the refused push was sent again once"
    );
    assert!(
        report.has_log("refused (HTTP 401); renewing"),
        "{:?}",
        report.logs()
    );
}

#[tokio::test]
async fn a_refused_configured_token_falls_back_to_the_api_key() {
    let env = Setup::start().await;
    let token = env.demo_token();
    let config = ByteniteConfig {
        token: Some(token),
        ..env.demo_config()
    };
    let client = ByteniteClient::new(&config);
    let snapshot = env.hello("both");
    let report = Recorder::default();
    client
        .deploy(&snapshot, &PreviousDeploy::default(), &report)
        .await
        .unwrap();
    assert_eq!(
        env.emu().stats().token_requests,
        0,
        "the configured token is used first"
    );
    env.emu().revoke_tokens();
    client
        .deploy(&snapshot, &PreviousDeploy::default(), &report)
        .await
        .unwrap();
    assert_eq!(env.emu().stats().token_requests, 1);
    client
        .deploy(&snapshot, &PreviousDeploy::default(), &report)
        .await
        .unwrap();
    assert_eq!(
        env.emu().stats().upload_requests,
        4,
        "no second 401 once switched to the key"
    );
}

#[tokio::test]
async fn a_wrong_api_key_is_a_final_401() {
    let env = Setup::start().await;
    let config = ByteniteConfig {
        api_key: Some("no-such-key-123".into()),
        ..env.demo_config()
    };
    let err = deploy(&config, &env.hello("k"), &Recorder::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeployError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("PUSHFS_BYTENITE_API_KEY"), "{err}");
    assert_eq!(env.emu().stats().upload_requests, 0);
}

#[tokio::test]
async fn server_failures_and_dropped_connections_are_retryable() {
    let env = Setup::start().await;
    let snapshot = env.hello("faults");
    let token_config = env.token_config(&env.demo_token());

    for status in [503, 429, 500] {
        env.emulator.faults.set(FaultPlan {
            fail_next: 1,
            status: Some(status),
            ..Default::default()
        });
        let err = deploy(&token_config, &snapshot, &Recorder::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeployError::ServerFailed { status: s, .. } if s == status),
            "{err:?}"
        );
        assert!(err.is_retryable());
    }

    // The token exchange is the first request with an API key.
    env.emulator.faults.set(FaultPlan {
        fail_next: 1,
        status: Some(503),
        ..Default::default()
    });
    let err = deploy(&env.demo_config(), &snapshot, &Recorder::default())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(
        env.emu().stats().tokens_issued,
        1,
        "only the test's own token"
    );

    env.emulator.faults.set(FaultPlan {
        drop_next: 1,
        ..Default::default()
    });
    let err = deploy(&token_config, &snapshot, &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Network(_)), "{err:?}");
    assert!(err.is_retryable());

    env.emulator.faults.set(FaultPlan {
        fail_next: 1,
        status: Some(400),
        ..Default::default()
    });
    let err = deploy(&token_config, &snapshot, &Recorder::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeployError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());

    let outcome = deploy(&token_config, &snapshot, &Recorder::default())
        .await
        .unwrap();
    assert_eq!(
        outcome.revision.as_deref(),
        Some("1"),
        "the faults stored nothing"
    );
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out_as_a_network_error() {
    let env = Setup::start().await;
    env.emulator.faults.set(FaultPlan {
        slow_next: 1,
        delay_ms: 5_000,
        ..Default::default()
    });
    let client = ByteniteClient::new(&env.token_config(&env.demo_token()))
        .with_answer_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let err = deploy_with(&client, &env.hello("slow"), &Recorder::default())
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Network(_)), "{err:?}");
    assert!(err.to_string().contains("no answer"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "it did not wait for the slow server"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_retryable_network_error() {
    let env = Setup::start().await;
    let url = env.emulator.url.clone();
    drop(env.emulator);
    let config = ByteniteConfig {
        url: Some(url),
        api_key: None,
        token: Some("some-token".into()),
        activate: None,
        ..ByteniteConfig::default()
    };
    let snapshot = Snapshot::from_dir(
        &{
            let dir = env.tmp.path().join("gone");
            fs::create_dir_all(dir.join("app")).unwrap();
            fs::write(dir.join("manifest.json"), HELLO_MANIFEST).unwrap();
            fs::write(dir.join("app/main.py"), "").unwrap();
            dir
        },
        BackendKind::Bytenite,
        &Default::default(),
        &env.store,
    )
    .unwrap();
    let mut err = None;
    // The listener closes asynchronously after the drop; poll briefly.
    for _ in 0..50 {
        match deploy(&config, &snapshot, &Recorder::default()).await {
            Err(e @ DeployError::Network(_)) => {
                err = Some(e);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let err = err.expect("a network error once the emulator is gone");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("refused"),
        "the cause is shown: {err}"
    );
}

#[tokio::test]
async fn an_unreadable_blob_fails_locally_not_as_a_network_error() {
    let env = Setup::start().await;
    let big = "x".repeat(3 * 1024 * 1024);
    let dir = env.app(
        "broken",
        &[
            ("manifest.json", HELLO_MANIFEST),
            ("app/main.py", ""),
            ("app/z.bin", &big),
        ],
    );
    let snapshot = env.snapshot(&dir);
    let blob = snapshot.find("app/z.bin").unwrap().file().unwrap().path();
    fs::remove_file(blob).unwrap();
    let err = deploy(
        &env.token_config(&env.demo_token()),
        &snapshot,
        &Recorder::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DeployError::Io(_)), "{err:?}");
    assert!(err.to_string().contains("app/z.bin"), "{err}");
    assert!(env.emu().apps().is_empty());
}

#[tokio::test]
async fn a_large_app_streams_and_hashes_correctly() {
    let env = Setup::start().await;
    let mut files: Vec<(String, String)> = (0..150)
        .map(|i| {
            (
                format!("app/pkg/m{i:03}.py"),
                format!("X = {i}\n").repeat(i + 1),
            )
        })
        .collect();
    // Not a multiple of 3 and larger than several body chunks.
    let blob: String = (0..5_000_001u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    files.push(("app/data.txt".into(), blob));
    files.push(("manifest.json".into(), HELLO_MANIFEST.into()));
    files.push(("app/main.py".into(), "print(1)".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let dir = env.app("large", &refs);
    let snapshot = env.snapshot(&dir);
    let report = Recorder::default();
    let outcome = deploy(&env.demo_config(), &snapshot, &report)
        .await
        .unwrap();
    let ours = expected_tar(&snapshot);
    assert!(ours.len() > 5_000_000);
    assert_eq!(outcome.hash.as_deref(), Some(hash_of(&ours).as_str()));
    assert_eq!(env.emu().stats().last_tar_len, Some(ours.len() as u64));
    assert!(
        report.has_log(&format!("tar {} bytes", ours.len())),
        "{:?}",
        report.logs()
    );
}

#[tokio::test]
async fn secrets_never_reach_logs_errors_or_responses() {
    let env = Setup::start().await;
    let api_key = "sekret-api-key-7f3a9";
    env.emu().add_api_key(api_key, "alice");
    let docker_token = "dckr_pat_SECRET_4242";
    let manifest = HELLO_MANIFEST.replace(
        r#""container": "python:latest""#,
        &format!(r#""container": "me/private:1", "private_image": true, "username": "me", "token": "{docker_token}""#),
    );
    let dir = env.app(
        "secret",
        &[("manifest.json", &manifest), ("app/main.py", "")],
    );
    let snapshot = env.snapshot(&dir);
    let key_config = ByteniteConfig {
        api_key: Some(api_key.into()),
        ..env.demo_config()
    };
    let static_token = env.emu().issue_token(api_key).unwrap();
    let report = Recorder::default();
    let mut texts = vec![format!("{key_config:?}")];

    let client = ByteniteClient::new(&key_config);
    client
        .deploy(&snapshot, &PreviousDeploy::default(), &report)
        .await
        .unwrap();
    env.emu().revoke_tokens();
    let outcome = client
        .deploy(&snapshot, &PreviousDeploy::default(), &report)
        .await
        .unwrap();
    texts.push(format!("{outcome:?}"));
    assert_eq!(
        outcome.response.as_ref().unwrap()["platformConfig"]["token"],
        "<redacted>"
    );

    let bad_token = ByteniteConfig {
        token: Some(static_token.clone()),
        api_key: None,
        ..env.demo_config()
    };
    let err = deploy(&bad_token, &snapshot, &report).await.unwrap_err();
    texts.push(format!("{err} {err:?} {bad_token:?}"));
    env.emulator.faults.set(FaultPlan {
        fail_next: 1,
        ..Default::default()
    });
    let err = deploy(&key_config, &snapshot, &report).await.unwrap_err();
    texts.push(format!("{err} {err:?}"));
    let wrong_key = ByteniteConfig {
        api_key: Some("sekret-wrong-key-00".into()),
        ..env.demo_config()
    };
    let err = deploy(&wrong_key, &snapshot, &report).await.unwrap_err();
    texts.push(format!("{err} {err:?}"));
    texts.push(report.all_text());

    let all = texts.join("\n");
    assert!(report.logs().len() > 5, "the deploys did log");
    for secret in [
        api_key,
        static_token.as_str(),
        docker_token,
        "sekret-wrong-key-00",
        "bnt-",
    ] {
        assert!(!all.contains(secret), "{secret} leaked into:\n{all}");
    }
    // The registry token does reach the server, inside the manifest.
    let tar = env.emu().tar_of(outcome.id.as_deref().unwrap()).unwrap();
    let sent = String::from_utf8(tar_file(&tar, "manifest.json").unwrap()).unwrap();
    assert!(sent.contains(docker_token));
}

#[tokio::test]
async fn the_example_app_deploys_with_the_demo_configuration() {
    let env = Setup::start().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bytenite-hello");
    let snapshot = env.snapshot(&dir);
    let client = ByteniteClient::new(&env.demo_config());
    assert!(client
        .spec_files()
        .iter()
        .any(|f| snapshot.find(f).is_some()));
    let report = Recorder::default();
    let outcome = deploy(&env.demo_config(), &snapshot, &report)
        .await
        .unwrap();
    assert_eq!(outcome.revision.as_deref(), Some("1"));
    assert_eq!(outcome.response.unwrap()["name"], "bytenite-hello");
}

// --- Activation and the management calls (activate, deactivate, status, get) ---

/// HELLO_MANIFEST with `"activate": true`.
fn activating_manifest() -> String {
    HELLO_MANIFEST.replacen('{', "{\n  \"activate\": true,", 1)
}

#[tokio::test]
async fn activate_deactivate_status_and_get_agree_with_the_emulator() {
    let env = Setup::start().await;
    let client = ByteniteClient::new(&env.demo_config());
    let outcome = deploy_with(&client, &env.hello("manage"), &Recorder::default())
        .await
        .unwrap();
    let id = outcome.id.unwrap();
    let tag = "hello-world@0.1";

    let status = client.app_status(tag).await.unwrap();
    assert_eq!(
        status_word(&status).as_deref(),
        Some("inactive"),
        "{status}"
    );
    assert_eq!(status["id"], id.as_str());

    let answer = client.activate(tag).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(env.emu().apps()[0].status, "active");
    let status = client.app_status("hello-world").await.unwrap();
    assert_eq!(status_word(&status).as_deref(), Some("active"));
    let got = client.get_app(tag).await.unwrap();
    assert_eq!(got["app"]["status"], "active");
    assert_eq!(got["app"]["id"], id.as_str());
    // The id is a tag too.
    assert_eq!(
        client.get_app(&id).await.unwrap()["app"]["name"],
        "hello-world"
    );

    client.deactivate("hello-world@0").await.unwrap();
    assert_eq!(env.emu().apps()[0].status, "inactive");
    let got = client.get_app(tag).await.unwrap();
    assert_eq!(status_word(&got).as_deref(), Some("inactive"));

    let stats = env.emu().stats();
    assert_eq!((stats.activate_requests, stats.deactivate_requests), (1, 1));
    assert_eq!(stats.status_requests, 2);

    // An unknown tag is NotFound, and final.
    for result in [
        client.activate("nope@0.1").await,
        client.deactivate("nope").await,
        client.app_status("nope").await,
        client.get_app("hello-world@0.2").await,
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, DeployError::Rejected { status: 404, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("NotFound"), "{err}");
    }
}

#[tokio::test]
async fn management_calls_need_a_token_like_the_push() {
    let env = Setup::start().await;
    let client = ByteniteClient::new(&env.demo_config());
    deploy_with(&client, &env.hello("auth"), &Recorder::default())
        .await
        .unwrap();
    let tag = "hello-world@0.1";
    let url = &env.emulator.url;
    let http = reqwest::Client::new();
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/v1/dev/apps/{tag}/activate"),
        ),
        (
            reqwest::Method::POST,
            format!("/v1/dev/apps/{tag}/deactivate"),
        ),
        (reqwest::Method::GET, format!("/v1/dev/apps/{tag}/status")),
        (reqwest::Method::GET, format!("/v1/dev/apps/{tag}")),
    ] {
        for token in [None, Some("not-a-token")] {
            let mut request = http.request(method.clone(), format!("{url}{path}"));
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401, "{method} {path}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["code"], 16, "{body}");
        }
    }
    assert_eq!(env.emu().apps()[0].status, "inactive");

    // A configured token that is refused, with no API key to fall back on.
    let stale = env.token_config(&env.demo_token());
    env.emu().revoke_tokens();
    let err = ByteniteClient::new(&stale).activate(tag).await.unwrap_err();
    assert!(
        matches!(err, DeployError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    // With an API key, a revoked token is renewed once and the call goes through.
    client.activate(tag).await.unwrap();
    assert_eq!(env.emu().apps()[0].status, "active");
}

#[tokio::test]
async fn a_deploy_that_asks_for_activation_activates_the_pushed_version() {
    let env = Setup::start().await;
    let manifest = activating_manifest();
    let dir = env.app(
        "activating",
        &[("manifest.json", &manifest), ("app/main.py", "print(1)\n")],
    );
    let report = Recorder::default();
    let outcome = deploy(&env.demo_config(), &env.snapshot(&dir), &report)
        .await
        .unwrap();
    assert_eq!(outcome.revision.as_deref(), Some("1"));
    let response = outcome.response.unwrap();
    assert_eq!(response["status"], "active", "{response}");
    assert_eq!(report.last_response().unwrap()["status"], "active");
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert!(report.has_log("activate: POST"), "{:?}", report.logs());
    assert!(report.has_log("/v1/dev/apps/hello-world@0.1/activate"));
    assert!(report.has_log("status of hello-world@0.1: active"));
    let record = &env.emu().apps()[0];
    assert_eq!(record.status, "active");
    // `activate` is pushfs's key: it does not travel in the archive.
    let tar = env.emu().tar_of(&record.id).unwrap();
    let sent = String::from_utf8(tar_file(&tar, "manifest.json").unwrap()).unwrap();
    assert!(!sent.contains("activate"), "{sent}");

    // Without the key, the push alone (the app stays as it was).
    let plain = env.hello("plain");
    let before = env.emu().stats().activate_requests;
    deploy(&env.demo_config(), &plain, &Recorder::default())
        .await
        .unwrap();
    assert_eq!(env.emu().stats().activate_requests, before);

    // `[bytenite] activate = true` activates every app; `"activate": false` opts out.
    let config = ByteniteConfig {
        activate: Some(true),
        ..env.demo_config()
    };
    let outcome = deploy(&config, &plain, &Recorder::default()).await.unwrap();
    assert_eq!(outcome.response.unwrap()["status"], "active");
    let opt_out = HELLO_MANIFEST.replacen('{', "{\n  \"activate\": false,", 1);
    let dir = env.app(
        "opt-out",
        &[("manifest.json", &opt_out), ("app/main.py", "print(2)\n")],
    );
    let before = env.emu().stats().activate_requests;
    deploy(&config, &env.snapshot(&dir), &Recorder::default())
        .await
        .unwrap();
    assert_eq!(env.emu().stats().activate_requests, before);
}

#[tokio::test]
async fn a_refused_activation_fails_the_deploy_with_the_servers_message() {
    let env = Setup::start().await;
    env.emu().set_activation(ActivationPlan {
        refuse: Some("image python:latest cannot be pulled".into()),
        ..Default::default()
    });
    let config = ByteniteConfig {
        activate: Some(true),
        ..env.demo_config()
    };
    let report = Recorder::default();
    let err = deploy(&config, &env.hello("refused"), &report)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeployError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("activating hello-world@0.1 failed: image python:latest cannot be pulled (FailedPrecondition)"),
        "{text}"
    );
    assert!(
        text.contains("the push itself succeeded: revision 1"),
        "{text}"
    );
    assert_eq!(report.last_response().unwrap()["code"], 9);
    assert_eq!(env.emu().apps()[0].status, "inactive");
}

#[tokio::test]
async fn a_failed_activation_is_retryable_and_the_retry_does_not_push_again() {
    let env = Setup::start().await;
    env.emu().set_activation(ActivationPlan {
        fail_next: 1,
        ..Default::default()
    });
    let config = ByteniteConfig {
        activate: Some(true),
        ..env.demo_config()
    };
    let client = ByteniteClient::new(&config);
    let snapshot = env.hello("flaky");
    let err = deploy_with(&client, &snapshot, &Recorder::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeployError::ServerFailed { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());

    // What the deploy layer does next: the same snapshot again.
    let report = Recorder::default();
    let outcome = deploy_with(&client, &snapshot, &report).await.unwrap();
    assert_eq!(outcome.revision.as_deref(), Some("1"));
    assert_eq!(outcome.id.as_deref(), Some(env.emu().apps()[0].id.as_str()));
    assert!(
        report.has_log("already pushed (revision 1)"),
        "{:?}",
        report.logs()
    );
    let stats = env.emu().stats();
    assert_eq!(stats.upload_requests, 1, "pushed once");
    assert_eq!(stats.activate_requests, 2);
    assert_eq!(env.emu().apps()[0].status, "active");

    // A network failure during activation is retryable too.
    env.emulator.faults.set(FaultPlan {
        drop_next: 1,
        ..Default::default()
    });
    let err = client.activate("hello-world@0.1").await.unwrap_err();
    assert!(matches!(err, DeployError::Network(_)), "{err:?}");
}

#[tokio::test]
async fn without_a_status_route_the_status_comes_from_the_app_record() {
    let env = Setup::start().await;
    env.emu().set_activation(ActivationPlan {
        no_status_route: true,
        ..Default::default()
    });
    let config = ByteniteConfig {
        activate: Some(true),
        ..env.demo_config()
    };
    let report = Recorder::default();
    let outcome = deploy(&config, &env.hello("fallback"), &report)
        .await
        .unwrap();
    let response = outcome.response.unwrap();
    assert_eq!(response["app"]["status"], "active", "{response}");
    assert!(report.has_log("no status route"), "{:?}", report.logs());
    assert!(outcome.warnings.is_empty());
}

#[tokio::test]
async fn the_api_root_and_the_v1_dev_server_url_both_work() {
    let env = Setup::start().await;
    let root = env.emulator.url.clone();
    for url in [
        format!("{root}/"),
        format!("{root}/v1/dev"),
        format!("{root}/v1/dev/"),
    ] {
        let config = ByteniteConfig {
            url: Some(url.clone()),
            activate: Some(true),
            ..env.demo_config()
        };
        let report = Recorder::default();
        let outcome = deploy(&config, &env.hello("urls"), &report)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(outcome.response.unwrap()["status"], "active", "{url}");
        assert!(
            report.has_log(&format!("upload: POST {root}/v1/dev/apps,")),
            "{url}: {:?}",
            report.logs()
        );
        assert!(!report.all_text().contains("/v1/dev/v1/dev"), "{url}");
    }
}

#[tokio::test]
async fn a_token_pasted_with_bearer_is_sent_bare() {
    let env = Setup::start().await;
    let token = env.demo_token();
    let config = env.token_config(&format!("Bearer {token}"));
    let client = ByteniteClient::new(&config);
    let report = Recorder::default();
    let outcome = deploy_with(&client, &env.hello("bearer"), &report)
        .await
        .unwrap();
    assert_eq!(outcome.revision.as_deref(), Some("1"));
    client.activate("hello-world@0.1").await.unwrap();
    assert!(!report.all_text().contains(&token), "the token leaked");
}
