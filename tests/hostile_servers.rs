//! The real clients against hostile servers on loopback: no credential
//! follows a redirect to another origin, and a same-origin one is followed
//! only for a GET; no answer is read past 16 MiB; a server's words reach
//! no terminal with their control characters.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::hostile::{Endless, Hostile, Reply, Seen, Witness};
use common::report::Recorder;
use common::{status, wait, TestMount};
use pushfs::backend::bytenite::{ByteniteClient, ByteniteConfig};
use pushfs::backend::cf::{CfClient, CfConfig};
use pushfs::backend::flux::key::WifSecret;
use pushfs::backend::flux::{FluxClient, FluxConfig};
use pushfs::backend::{Backend, BackendKind, DeployError, DeployOutcome, PreviousDeploy};
use pushfs::deploy::snapshot::Snapshot;
use pushfs::emulator::flux::{DEMO_ONLY_WIF, DEMO_ONLY_ZELID};
use pushfs::store::ContentStore;
use serde_json::{json, Value};

const API_KEY: &str = "bytenite-api-key-secret";
const TOKEN: &str = "bytenite-access-token-secret";
const CF_TOKEN: &str = "cf-bearer-token-secret";
const CF_REFRESH: &str = "cf-refresh-token-secret";

const BYTENITE_MANIFEST: &str = r#"{
  "name": "hello-world",
  "version": "0.1",
  "description": "prints hello",
  "platform": "docker",
  "entrypoint": "main.py",
  "platform_config": {"container": "python:latest"},
  "device_requirements": {"min_cpu": 2, "min_memory": 2}
}"#;

struct Folder {
    tmp: tempfile::TempDir,
    store: ContentStore,
}

impl Folder {
    fn new() -> Folder {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&tmp.path().join("store")).unwrap();
        Folder { tmp, store }
    }

    fn snapshot(&self, kind: BackendKind, files: &[(&str, &str)]) -> Snapshot {
        let dir = self.tmp.path().join("app");
        for (path, content) in files {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, content).unwrap();
        }
        Snapshot::from_dir(&dir, kind, &Default::default(), &self.store).unwrap()
    }

    fn path(&self) -> &Path {
        self.tmp.path()
    }
}

async fn deploy(
    client: &dyn Backend,
    snapshot: &Snapshot,
) -> (Result<DeployOutcome, DeployError>, Recorder) {
    let report = Recorder::default();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client.deploy(snapshot, &PreviousDeploy::default(), &report),
    )
    .await
    .expect("the deploy ends in time");
    (result, report)
}

/// The deploy failed for good with an error naming `location`.
fn assert_refused_redirect(result: Result<DeployOutcome, DeployError>, location: &str) {
    let err = result.expect_err("a redirect must not succeed");
    assert!(
        matches!(err, DeployError::Untrusted(_)),
        "{err:?} should be a refused redirect"
    );
    assert!(!err.is_retryable(), "{err:?} must be final");
    let message = err.to_string();
    assert!(message.contains(location), "{message} names {location}");
}

fn bytenite_config(url: &str) -> ByteniteConfig {
    ByteniteConfig {
        url: Some(url.to_string()),
        api_key: Some(API_KEY.to_string()),
        ..ByteniteConfig::default()
    }
}

fn bytenite_app(folder: &Folder) -> Snapshot {
    folder.snapshot(
        BackendKind::Bytenite,
        &[
            ("manifest.json", BYTENITE_MANIFEST),
            ("app/main.py", "print('hello')\n"),
        ],
    )
}

fn token_answer() -> Reply {
    Reply::json(
        200,
        &json!({"token": TOKEN, "expiresIn": "3600"}).to_string(),
    )
}

#[tokio::test]
async fn bytenite_api_key_exchange_is_never_redirected() {
    for status in [301, 302, 303, 307, 308] {
        let witness = Witness::start().await;
        let target = format!("{}/v1/auth/access_token", witness.url);
        let redirect_to = target.clone();
        let hostile = Hostile::start(move |_| Reply::redirect(status, &redirect_to)).await;
        let folder = Folder::new();
        let client = ByteniteClient::new(&bytenite_config(&hostile.url));
        let (result, report) = deploy(&client, &bytenite_app(&folder)).await;
        assert_refused_redirect(result, &target);
        witness.assert_untouched();
        assert!(!report.all_text().contains(API_KEY));
        let seen = hostile.seen();
        assert_eq!(seen.len(), 1, "HTTP {status}: one request, not retried");
        assert!(String::from_utf8_lossy(&seen[0].body).contains(API_KEY));
    }
}

#[tokio::test]
async fn bytenite_upload_is_never_redirected() {
    for status in [302, 307, 308] {
        let witness = Witness::start().await;
        let target = format!("{}/v1/dev/apps", witness.url);
        let redirect_to = target.clone();
        let hostile = Hostile::start(move |seen: &Seen| {
            if seen.path == "/v1/auth/access_token" {
                token_answer()
            } else {
                Reply::redirect(status, &redirect_to)
            }
        })
        .await;
        let folder = Folder::new();
        let client = ByteniteClient::new(&bytenite_config(&hostile.url));
        let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
        assert_refused_redirect(result, &target);
        witness.assert_untouched();
        let upload = hostile.seen().pop().unwrap();
        assert_eq!(upload.path, "/v1/dev/apps");
        assert_eq!(upload.header("authorization"), Some(TOKEN));
    }
}

#[tokio::test]
async fn a_same_origin_redirect_of_a_post_is_refused_too() {
    let hostile = Hostile::start(|seen: &Seen| match seen.path.as_str() {
        "/v1/auth/access_token" => Reply::redirect(307, "/v1/auth/elsewhere"),
        _ => token_answer(),
    })
    .await;
    let folder = Folder::new();
    let client = ByteniteClient::new(&bytenite_config(&hostile.url));
    let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
    assert_refused_redirect(result, "/v1/auth/elsewhere");
    let paths: Vec<String> = hostile.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/v1/auth/access_token"]);
}

fn flux_config(url: &str) -> FluxConfig {
    FluxConfig {
        url: Some(url.to_string()),
        private_key: Some(WifSecret::new(DEMO_ONLY_WIF)),
        timeout_secs: Some(10),
        ..FluxConfig::default()
    }
}

fn flux_spec() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flux-hello/spec.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn flux_app(folder: &Folder) -> Snapshot {
    folder.snapshot(
        BackendKind::Flux,
        &[("spec.json", &flux_spec().to_string())],
    )
}

fn flux_data(data: Value) -> Reply {
    Reply::json(200, &json!({"status": "success", "data": data}).to_string())
}

#[tokio::test]
async fn flux_register_and_update_are_never_redirected() {
    let mut registered = flux_spec();
    registered["owner"] = json!(DEMO_ONLY_ZELID);
    for (path, lookup) in [
        ("/apps/appregister", Value::Null),
        ("/apps/appupdate", registered),
    ] {
        let witness = Witness::start().await;
        let target = format!("{}{path}", witness.url);
        let redirect_to = target.clone();
        let hostile = Hostile::start(move |seen: &Seen| {
            if seen.method == "GET" {
                flux_data(lookup.clone())
            } else {
                Reply::redirect(307, &redirect_to)
            }
        })
        .await;
        let folder = Folder::new();
        let client = FluxClient::new(&flux_config(&hostile.url));
        let (result, _) = deploy(&client, &flux_app(&folder)).await;
        assert_refused_redirect(result, &target);
        witness.assert_untouched();
        let post = hostile.seen().pop().unwrap();
        assert_eq!(post.path, path);
        assert!(post.header("zelidauth").is_some());
    }
}

#[tokio::test]
async fn a_same_origin_redirect_of_a_get_is_followed() {
    let hostile = Hostile::start(|seen: &Seen| match seen.path.as_str() {
        "/apps/appspecifications/pushfshello" => {
            Reply::redirect(302, "/moved/appspecifications/pushfshello")
        }
        "/moved/appspecifications/pushfshello" => flux_data(Value::Null),
        _ => Reply::redirect(308, "/apps/elsewhere"),
    })
    .await;
    let folder = Folder::new();
    let client = FluxClient::new(&flux_config(&hostile.url));
    let (result, _) = deploy(&client, &flux_app(&folder)).await;
    assert_refused_redirect(result, "/apps/elsewhere");
    let paths: Vec<String> = hostile.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/apps/appspecifications/pushfshello",
            "/moved/appspecifications/pushfshello",
            "/apps/appregister"
        ]
    );
}

fn cf_root() -> Reply {
    Reply::json(
        200,
        &json!({"links": {"cloud_controller_v3": {"href": "x"}}}).to_string(),
    )
}

fn cf_app(folder: &Folder) -> Snapshot {
    folder.snapshot(
        BackendKind::Cf,
        &[
            (
                "spec.json",
                &json!({"name": "hello", "space_guid": "space-1"}).to_string(),
            ),
            ("index.html", "hello\n"),
        ],
    )
}

#[tokio::test]
async fn the_cf_bearer_token_is_never_redirected() {
    let witness = Witness::start().await;
    let target = format!("{}/v3/apps", witness.url);
    let redirect_to = target.clone();
    let hostile = Hostile::start(move |seen: &Seen| match seen.path.as_str() {
        "/" => cf_root(),
        _ => Reply::redirect(307, &redirect_to),
    })
    .await;
    let folder = Folder::new();
    let client = CfClient::new(&CfConfig {
        url: Some(hostile.url.clone()),
        token: Some(format!("bearer {CF_TOKEN}")),
        space_guid: Some("space-1".into()),
        ..CfConfig::default()
    });
    let (result, _) = deploy(&client, &cf_app(&folder)).await;
    assert_refused_redirect(result, &target);
    witness.assert_untouched();
    let last = hostile.seen().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(format!("bearer {CF_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn the_uaa_refresh_is_never_redirected() {
    let witness = Witness::start().await;
    let target = format!("{}/oauth/token", witness.url);
    let redirect_to = target.clone();
    let hostile = Hostile::start(move |seen: &Seen| match seen.path.as_str() {
        "/" => cf_root(),
        "/oauth/token" => Reply::redirect(307, &redirect_to),
        _ => Reply::json(401, r#"{"errors":[{"code":1000,"title":"CF-InvalidAuthToken","detail":"Invalid Auth Token"}]}"#),
    })
    .await;
    let folder = Folder::new();
    let home = folder.path().join("cf-home");
    std::fs::create_dir_all(home.join(".cf")).unwrap();
    let login = json!({
        "ConfigVersion": 3,
        "Target": hostile.url,
        "AuthorizationEndpoint": hostile.url,
        "UaaEndpoint": hostile.url,
        "AccessToken": format!("bearer {CF_TOKEN}"),
        "RefreshToken": CF_REFRESH,
        "UAAOAuthClient": "cf",
        "UAAOAuthClientSecret": "",
        "SpaceFields": {"GUID": "space-1", "Name": "demo"},
    });
    std::fs::write(home.join(".cf/config.json"), login.to_string()).unwrap();
    let client = CfClient::new(&CfConfig {
        cf_home: Some(home),
        ..CfConfig::default()
    });
    let (result, _) = deploy(&client, &cf_app(&folder)).await;
    assert_refused_redirect(result, &target);
    witness.assert_untouched();
    let refresh = hostile.seen().pop().unwrap();
    assert_eq!(refresh.path, "/oauth/token");
    assert!(String::from_utf8_lossy(&refresh.body).contains(CF_REFRESH));
}

/// The deploy failed for good because an answer passed the cap, and the
/// client hung up: the server's endless body ended soon after 16 MiB.
async fn assert_capped(result: Result<DeployOutcome, DeployError>, hostile: &Hostile) {
    let err = result.expect_err("an endless answer must not succeed");
    assert!(matches!(err, DeployError::Untrusted(_)), "{err:?}");
    assert!(!err.is_retryable(), "{err:?} must be final");
    assert!(err.to_string().contains("larger than 16 MiB"), "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut endless = hostile.endless();
    while endless.ended == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        endless = hostile.endless();
    }
    let Endless { sent, ended } = endless;
    assert_eq!(ended, 1, "the client hung up on the endless body");
    // 16 MiB read, plus what the kernel's socket buffers held.
    assert!(sent < 48 << 20, "the server wrote {sent} bytes");
}

#[tokio::test]
async fn endless_answers_are_cut_at_16_mib_for_every_backend() {
    let hostile = Hostile::start(|_| Reply::EndlessChunked).await;
    let folder = Folder::new();
    let client = ByteniteClient::new(&bytenite_config(&hostile.url));
    let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
    assert_capped(result, &hostile).await;

    let hostile = Hostile::start(|_| Reply::EndlessChunked).await;
    let client = FluxClient::new(&flux_config(&hostile.url));
    let (result, _) = deploy(&client, &flux_app(&folder)).await;
    assert_capped(result, &hostile).await;

    // The root document, and the first request with the token (the
    // manifest, which a v3 push applies before anything else).
    for endless_path in ["/", "/v3/spaces/space-1/actions/apply_manifest"] {
        let hostile = Hostile::start(move |seen: &Seen| {
            if seen.path.split('?').next() == Some(endless_path) {
                Reply::EndlessChunked
            } else {
                cf_root()
            }
        })
        .await;
        let client = CfClient::new(&CfConfig {
            url: Some(hostile.url.clone()),
            token: Some(format!("bearer {CF_TOKEN}")),
            space_guid: Some("space-1".into()),
            ..CfConfig::default()
        });
        let (result, _) = deploy(&client, &cf_app(&folder)).await;
        assert_capped(result, &hostile).await;
    }
}

#[tokio::test]
async fn a_gigabyte_answer_is_refused_by_its_length() {
    let hostile = Hostile::start(|seen: &Seen| match seen.path.as_str() {
        "/v1/auth/access_token" => token_answer(),
        _ => Reply::Huge(1 << 30),
    })
    .await;
    let folder = Folder::new();
    let client = ByteniteClient::new(&bytenite_config(&hostile.url));
    let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
    assert_capped(result, &hostile).await;
    assert!(hostile.endless().sent < 32 << 20);
}

/// Bytes a terminal would act on: C0 controls but LF, DEL, C1 (as UTF-8).
fn terminal_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| c != '\n' && c.is_control())
        .collect()
}

#[test]
fn a_servers_control_characters_are_shown_escaped() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let message = "quota exceeded\x1b]0;pwned\x07\x1b[2J\rall good\0\u{9b}31m";
    let body = json!({"code": 8, "message": message}).to_string();
    let hostile = runtime.block_on(Hostile::start(move |seen: &Seen| {
        if seen.path == "/v1/auth/access_token" {
            token_answer()
        } else {
            Reply::json(400, &body)
        }
    }));
    let client = ByteniteClient::new(&bytenite_config(&hostile.url));
    let t = TestMount::with_backends(vec![Arc::new(client)]);
    let app = t.copy_example("bytenite");
    assert_eq!(wait(&app), "failed");

    let escaped = "quota exceeded\\x1b]0;pwned\\x07\\x1b[2J\\rall good\\x00\\x9b31m";
    let error = status(&app, "error");
    assert!(error.contains(escaped), "{error:?}");
    let mut shown = vec![
        ("error", error),
        (
            "log",
            std::fs::read_to_string(app.join(".pushfs/log")).unwrap(),
        ),
        (
            "status.json",
            std::fs::read_to_string(app.join(".pushfs/status.json")).unwrap(),
        ),
    ];
    let report = pushfs::status_report::read_mount(&t.mnt()).unwrap();
    let table = pushfs::status_report::table(&[report]);
    assert!(table.contains(escaped), "{table:?}");
    shown.push(("pushfs status", table));
    for entry in std::fs::read_dir(t.config.state_dir.join("apps")).unwrap() {
        let log = entry.unwrap().path().join("log");
        if let Ok(text) = std::fs::read_to_string(&log) {
            assert!(text.contains(escaped), "{text:?}");
            shown.push(("the state directory's log", text));
        }
    }
    for (place, text) in shown {
        assert_eq!(
            terminal_controls(&text),
            Vec::<char>::new(),
            "{place}: {text:?}"
        );
    }
}

#[tokio::test]
async fn a_bytenite_answer_of_the_wrong_types_is_not_a_deploy() {
    for (answer, named) in [
        (json!({"id": "app-1", "revision": {"n": 2}}), "\"revision\""),
        (
            json!({"id": "app-1", "revision": "3", "hash": 42}),
            "\"hash\"",
        ),
        (json!({"id": true}), "\"id\""),
    ] {
        let body = answer.to_string();
        let hostile = Hostile::start(move |seen: &Seen| match seen.path.as_str() {
            "/v1/auth/access_token" => token_answer(),
            _ => Reply::json(200, &body),
        })
        .await;
        let folder = Folder::new();
        let client = ByteniteClient::new(&bytenite_config(&hostile.url));
        let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
        let err = result.expect_err("a malformed answer is no deploy");
        assert!(matches!(err, DeployError::Protocol(_)), "{err:?}");
        assert!(err.to_string().contains(named), "{err} names {named}");
    }
}

#[tokio::test]
async fn a_flux_success_without_data_is_not_an_answer() {
    let hostile = Hostile::start(|_| Reply::json(200, r#"{"status": "success"}"#)).await;
    let folder = Folder::new();
    let client = FluxClient::new(&flux_config(&hostile.url));
    let (result, _) = deploy(&client, &flux_app(&folder)).await;
    let err = result.expect_err("no data is no answer");
    assert!(matches!(err, DeployError::Protocol(_)), "{err:?}");
    assert_eq!(hostile.seen().len(), 1, "nothing is registered after it");
}

#[tokio::test]
async fn a_spec_that_names_a_key_twice_is_refused_before_any_request() {
    let hostile = Hostile::start(|_| Reply::json(500, "{}")).await;
    let folder = Folder::new();
    let manifest = BYTENITE_MANIFEST.replace(
        "\"version\": \"0.1\",",
        "\"version\": \"0.1\",\n  \"name\": \"other-app\",",
    );
    let snapshot = folder.snapshot(
        BackendKind::Bytenite,
        &[("manifest.json", &manifest), ("app/main.py", "print()\n")],
    );
    let client = ByteniteClient::new(&bytenite_config(&hostile.url));
    let (result, _) = deploy(&client, &snapshot).await;
    let err = result.expect_err("a repeated key is refused");
    assert!(matches!(err, DeployError::InvalidSpec(_)), "{err:?}");
    assert!(
        err.to_string().contains("the key \"name\" appears twice"),
        "{err}"
    );

    let folder = Folder::new();
    let spec =
        flux_spec()
            .to_string()
            .replacen("\"instances\":3", "\"instances\":3,\"instances\":100", 1);
    assert!(spec.contains("\"instances\":100"), "{spec}");
    let snapshot = folder.snapshot(BackendKind::Flux, &[("spec.json", &spec)]);
    let client = FluxClient::new(&flux_config(&hostile.url));
    let (result, _) = deploy(&client, &snapshot).await;
    let err = result.expect_err("a repeated key is refused");
    assert!(matches!(err, DeployError::InvalidSpec(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("the key \"instances\" appears twice"),
        "{err}"
    );
    assert!(hostile.seen().is_empty(), "nothing was sent");
}

fn tls_config(url: &str, ca_file: Option<&str>, skip: bool) -> ByteniteConfig {
    ByteniteConfig {
        ca_file: ca_file.map(|f| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/tls")
                .join(f)
        }),
        skip_ssl_validation: Some(skip),
        ..bytenite_config(url)
    }
}

#[tokio::test]
async fn an_unknown_certificate_is_final_and_says_how_to_trust_it() {
    let refuse = |_: &Seen| Reply::json(403, r#"{"code":7,"message":"no"}"#);
    let hostile = Hostile::start_tls(refuse).await;
    let folder = Folder::new();
    let client = ByteniteClient::new(&tls_config(&hostile.url, None, false));
    let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
    let err = result.expect_err("an unknown CA is refused");
    assert!(matches!(err, DeployError::Untrusted(_)), "{err:?}");
    assert!(!err.is_retryable(), "{err:?} must be final");
    let message = err.to_string();
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert!(message.contains("ca_file = "), "{message}");
    assert!(hostile.seen().is_empty(), "no request got through");

    // Its CA in ca_file, or no check at all: the request gets through.
    for (ca_file, skip) in [(Some("ca.pem"), false), (None, true)] {
        let hostile = Hostile::start_tls(refuse).await;
        let client = ByteniteClient::new(&tls_config(&hostile.url, ca_file, skip));
        let (result, _) = deploy(&client, &bytenite_app(&folder)).await;
        let err = result.expect_err("the server refuses the key");
        assert!(
            matches!(err, DeployError::Rejected { status: 403, .. }),
            "{err:?}"
        );
        assert_eq!(hostile.seen().len(), 1);
    }
}
