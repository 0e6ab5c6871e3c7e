//! The Flux client against the Flux emulator over loopback: register,
//! update, local spec errors, keys, clocks, faults, and secrets.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::report::Recorder;
use pushfs::backend::flux::clock::{Clock, ManualClock, SystemClock};
use pushfs::backend::flux::message::{signing_payload, zelidauth, MessageKind, SignedMessage};
use pushfs::backend::flux::queries::NodeQueries;
use pushfs::backend::flux::signer::{self, FluxSigner};
use pushfs::backend::flux::spec::AppSpec;
use pushfs::backend::flux::FluxClient;
use pushfs::backend::{
    Backend, BackendKind, DeployError, DeployOutcome, DeployState, IgnoreProfile, PreviousDeploy,
};
use pushfs::backend::{PaymentDue, PaymentStage};
use pushfs::config::Config;
use pushfs::deploy::snapshot::Snapshot;
use pushfs::emulator::flux::{
    emulator_price, FluxEmulator, DEMO_ONLY_WIF, DEMO_ONLY_ZELID, DEPLOYMENT_ADDRESS,
    TEMPORARY_MESSAGE_TTL_MS,
};
use pushfs::emulator::{serve, EmulatedApi, FaultPlan, Running};
use pushfs::store::ContentStore;
use serde_json::{json, Value};
use tempfile::TempDir;

/// A second key, for "wrong key" cases (private key 1: public knowledge).
const OTHER_WIF: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";

struct Setup {
    emu: Running<FluxEmulator>,
    config: Config,
    store: ContentStore,
    tmp: TempDir,
}

async fn setup() -> Setup {
    let emu = serve(Arc::new(FluxEmulator::new()), 0).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::with_state_dir(tmp.path());
    emu.api.configure_client(&emu.url, &mut config);
    config.flux.timeout_secs = Some(10);
    config.flux.watch_interval_secs = Some(0.05);
    config.flux.watch_max_interval_secs = Some(0.2);
    let store = ContentStore::open(&tmp.path().join("store")).unwrap();
    Setup {
        emu,
        config,
        store,
        tmp,
    }
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flux-hello")
}

fn example_spec() -> Value {
    serde_json::from_slice(&fs::read(example_dir().join("spec.json")).unwrap()).unwrap()
}

impl Setup {
    /// An app folder named `app` holding `spec` and two other files.
    fn app(&self, spec: &Value) -> Snapshot {
        let dir = self.tmp.path().join("app");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("spec.json"),
            serde_json::to_vec_pretty(spec).unwrap(),
        )
        .unwrap();
        fs::write(dir.join("README.txt"), "not uploaded").unwrap();
        fs::write(dir.join("notes.md"), "not uploaded either").unwrap();
        Snapshot::from_dir(
            &dir,
            BackendKind::Flux,
            &IgnoreProfile::default(),
            &self.store,
        )
        .unwrap()
    }

    fn client(&self) -> FluxClient {
        FluxClient::new(&self.config.flux)
    }

    async fn deploy(
        &self,
        client: &FluxClient,
        spec: &Value,
        previous: &PreviousDeploy,
    ) -> (Result<DeployOutcome, DeployError>, Recorder) {
        let report = Recorder::default();
        let snapshot = self.app(spec);
        let result = tokio::time::timeout(
            Duration::from_secs(20),
            client.deploy(&snapshot, previous, &report),
        )
        .await
        .expect("deploy finishes in time");
        (result, report)
    }

    async fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        content_type: &str,
        body: String,
    ) -> Value {
        let mut req = reqwest::Client::new()
            .post(format!("{}{path}", self.emu.url))
            .header("content-type", content_type)
            .body(body);
        if let Some(auth) = auth {
            req = req.header("zelidauth", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "FluxOS always answers HTTP 200");
        resp.json().await.unwrap()
    }
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

fn formatted(spec: &Value, owner: &str) -> AppSpec {
    let mut spec = spec.clone();
    spec["owner"] = json!(owner);
    AppSpec::format(&spec).unwrap()
}

#[tokio::test]
async fn example_app_registers_and_the_hash_checks_out() {
    let s = setup().await;
    let (result, report) = s
        .deploy(&s.client(), &example_spec(), &PreviousDeploy::default())
        .await;
    let outcome = result.unwrap();
    let hash = outcome.hash.clone().unwrap();
    assert_eq!(hash.len(), 64);
    assert_eq!(outcome.id.as_deref(), Some(hash.as_str()));
    assert_eq!(report.ids(), vec![hash.clone()]);
    assert_eq!(
        outcome.response.as_ref().unwrap(),
        &json!({"status": "success", "data": hash})
    );
    assert_eq!(
        report.states(),
        vec![DeployState::Packaging, DeployState::Uploading]
    );

    // Only the spec travels, and the log says so once, with the count.
    let not_uploaded: Vec<_> = report
        .logs()
        .into_iter()
        .filter(|l| l.contains("not uploaded"))
        .collect();
    assert_eq!(not_uploaded.len(), 1, "{:?}", report.logs());
    assert!(
        not_uploaded[0].contains("2 other file(s)"),
        "{}",
        not_uploaded[0]
    );
    assert!(report
        .logs()
        .iter()
        .any(|l| l.contains(DEMO_ONLY_ZELID) && l.contains("owner not set")));

    let requests = s.emu.api.requests();
    let paths: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("GET", "/apps/appspecifications/pushfshello"),
            ("POST", "/apps/appregister"),
            // Accepted: what to pay, to whom, by when.
            ("GET", &*format!("/apps/temporarymessages/{hash}")),
            ("GET", "/apps/deploymentinformation"),
            ("POST", "/apps/calculateprice"),
        ]
    );
    let post = &requests[1];
    assert_eq!(post.content_type.as_deref(), Some("text/plain"));
    assert!(post.zelidauth.is_some());
    assert!(!post.body.contains("not uploaded"));

    // Our signature verifies in the emulator and recovers to our ZelID.
    let accepted = s.emu.api.accepted_messages();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].hash, hash);
    assert_eq!(accepted[0].spec["owner"], DEMO_ONLY_ZELID);
    let payload = signing_payload(
        "fluxappregister",
        &accepted[0].spec_json,
        accepted[0].timestamp as u64,
    );
    assert_eq!(
        signer::recover_address(&payload, &accepted[0].signature).as_deref(),
        Some(DEMO_ONLY_ZELID)
    );
}

#[tokio::test]
async fn a_registered_app_is_updated() {
    let s = setup().await;
    let client = s.client();
    let spec = example_spec();
    let first = s
        .deploy(&client, &spec, &PreviousDeploy::default())
        .await
        .0
        .unwrap();
    let previous = PreviousDeploy {
        id: first.id.clone(),
        hash: first.hash.clone(),
        revision: None,
    };

    let mut changed = spec.clone();
    changed["instances"] = json!(5);
    changed["compose"][0]["repotag"] = json!("nginx:1.28-alpine");
    // Unpaid, the registration is only a temporary message: still unknown.
    let (result, report) = s.deploy(&client, &changed, &previous).await;
    assert!(report.has_log("registering again"), "{:?}", report.logs());
    assert_eq!(s.emu.api.accepted_messages()[1].kind, MessageKind::Register);
    s.emu.api.pay(first.hash.as_deref().unwrap()).unwrap();
    drop(result);

    let (result, report) = s.deploy(&client, &changed, &previous).await;
    let second = result.unwrap();
    assert_ne!(second.hash, first.hash);
    assert!(
        report
            .logs()
            .iter()
            .any(|l| l.contains("sending an update")),
        "{:?}",
        report.logs()
    );

    let kinds: Vec<_> = s
        .emu
        .api
        .accepted_messages()
        .iter()
        .map(|m| m.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            MessageKind::Register,
            MessageKind::Register,
            MessageKind::Update
        ]
    );
    // The update changes the app once it is paid.
    assert_eq!(s.emu.api.apps()[0].spec["instances"], 3);
    s.emu.api.pay(second.hash.as_deref().unwrap()).unwrap();
    let apps = s.emu.api.apps();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].spec["instances"], 5);
    assert_eq!(apps[0].spec["compose"][0]["repotag"], "nginx:1.28-alpine");
    assert_eq!(Some(apps[0].hash.clone()), second.hash);
    let last_message = s
        .emu
        .api
        .requests()
        .into_iter()
        .rfind(|r| r.path.starts_with("/apps/app"))
        .unwrap();
    assert_eq!(last_message.path, "/apps/appupdate");

    // FluxOS forbids renaming components: caught before anything is signed.
    let before = s.emu.api.requests().len();
    let mut renamed = changed.clone();
    renamed["compose"][0]["name"] = json!("www");
    let (result, _) = s.deploy(&client, &renamed, &previous).await;
    let err = result.unwrap_err();
    assert!(matches!(err, DeployError::InvalidSpec(_)), "{err:?}");
    assert!(
        err.to_string().contains("Component \"web\" not found"),
        "{err}"
    );
    let after = s.emu.api.requests();
    assert_eq!(after.len(), before + 1, "only the lookup was sent");
    assert_eq!(after.last().unwrap().method, "GET");
}

/// A change to the example spec.
type SpecEdit = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn spec_errors_are_caught_before_anything_is_sent() {
    let s = setup().await;
    let client = s.client();
    let cases: Vec<(SpecEdit, &str)> = vec![
        (
            Box::new(|v| v["name"] = json!("fluxdemo")),
            "Flux App name can not start with flux",
        ),
        (
            Box::new(|v| v["compose"][0]["ports"] = json!([22])),
            "Assigned port 22 is not allowed for Flux Apps",
        ),
        (
            Box::new(|v| v["instances"] = json!(2)),
            "Minimum number of instances is 3",
        ),
        (
            Box::new(|v| v["compose"][0]["cpu"] = json!(16)),
            "Too much CPU resources assigned for pushfshello",
        ),
        (
            Box::new(|v| v["compose"][0]["secrets"] = json!("hush")),
            "Secrets can not be defined for non Enterprise Applications",
        ),
    ];
    for (edit, want) in cases {
        let mut spec = example_spec();
        edit(&mut spec);
        let (result, _) = s.deploy(&client, &spec, &PreviousDeploy::default()).await;
        match result {
            Err(DeployError::InvalidSpec(message)) => assert_eq!(message, want),
            other => panic!("expected InvalidSpec({want}), got {other:?}"),
        }
    }
    let dir = s.tmp.path().join("app");
    fs::write(dir.join("spec.json"), "{ not json").unwrap();
    let snapshot =
        Snapshot::from_dir(&dir, BackendKind::Flux, &IgnoreProfile::default(), &s.store).unwrap();
    let err = client
        .deploy(&snapshot, &PreviousDeploy::default(), &Recorder::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("spec.json is not valid JSON"),
        "{err}"
    );
    assert!(
        s.emu.api.requests().is_empty(),
        "the emulator received nothing"
    );
}

#[tokio::test]
async fn wrong_keys_are_rejected() {
    let s = setup().await;
    let other = FluxSigner::from_wif(OTHER_WIF).unwrap();

    // A spec owned by someone else: the client refuses to sign it.
    let mut spec = example_spec();
    spec["owner"] = json!(other.address());
    let (result, _) = s
        .deploy(&s.client(), &spec, &PreviousDeploy::default())
        .await;
    let err = result.unwrap_err();
    assert!(matches!(err, DeployError::InvalidSpec(_)), "{err:?}");
    assert!(err.to_string().contains(DEMO_ONLY_ZELID), "{err}");
    assert!(s.emu.api.accepted_messages().is_empty());

    // The emulator itself: a message owned by the demo ZelID, signed by another key.
    let demo_spec = formatted(&example_spec(), DEMO_ONLY_ZELID);
    let forged = SignedMessage::new(MessageKind::Register, &demo_spec, now_ms(), &other);
    let auth = zelidauth(&other, now_ms());
    let answer = s
        .post("/apps/appregister", Some(&auth), "text/plain", forged.body)
        .await;
    assert_eq!(answer["status"], "error");
    assert_eq!(
        answer["data"]["message"],
        "Received signature is invalid or Flux App specifications are not properly formatted"
    );

    // A session whose signature is not by its zelid.
    let mut session: Value = serde_json::from_str(&auth).unwrap();
    session["zelid"] = json!(DEMO_ONLY_ZELID);
    let demo = FluxSigner::from_wif(DEMO_ONLY_WIF).unwrap();
    let good = SignedMessage::new(MessageKind::Register, &demo_spec, now_ms(), &demo);
    let answer = s
        .post(
            "/apps/appregister",
            Some(&session.to_string()),
            "text/plain",
            good.body.clone(),
        )
        .await;
    assert_eq!(
        answer,
        json!({"status": "error", "data": {"code": 401, "name": "Unauthorized", "message": "Unauthorized. Access denied."}})
    );

    // An update of the demo's (registered: paid) app signed by another key.
    let registered = s
        .deploy(&s.client(), &example_spec(), &PreviousDeploy::default())
        .await
        .0
        .unwrap();
    s.emu.api.pay(registered.hash.as_deref().unwrap()).unwrap();
    let update = SignedMessage::new(MessageKind::Update, &demo_spec, now_ms(), &other);
    let answer = s
        .post("/apps/appupdate", Some(&auth), "text/plain", update.body)
        .await;
    assert_eq!(
        answer["data"]["message"],
        "Received signature does not correspond with Flux App owner or Flux App specifications are not properly formatted"
    );

    // And a client with another key cannot take over the registered name.
    let mut config = s.config.flux.clone();
    config.private_key = Some(pushfs::backend::flux::key::WifSecret::new(OTHER_WIF));
    let (result, _) = s
        .deploy(
            &FluxClient::new(&config),
            &example_spec(),
            &PreviousDeploy::default(),
        )
        .await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("already registered by"), "{err}");
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let s = setup().await;
    // The client's clock is two hours slow.
    let clock = Arc::new(ManualClock::new(now_ms() - 2 * 3_600_000));
    let client = FluxClient::with_clock(&s.config.flux, clock.clone());
    let (result, report) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let err = result.unwrap_err();
    assert!(!err.is_retryable());
    assert!(
        err.to_string()
            .contains("Message timestamp is over 1 hour old, not valid."),
        "{err}"
    );
    // The node's verdict is kept as the last response.
    assert_eq!(report.responses().last().unwrap()["status"], "error");

    // Right clock on our side, a node two hours ahead: the same verdict.
    s.emu.api.set_clock_offset_ms(2 * 3_600_000);
    let (result, _) = s
        .deploy(&s.client(), &example_spec(), &PreviousDeploy::default())
        .await;
    assert!(result.unwrap_err().to_string().contains("over 1 hour old"));

    // A node 10 minutes behind sees our timestamp (and session) in the future.
    s.emu.api.set_clock_offset_ms(0);
    let future = SignedMessage::new(
        MessageKind::Register,
        &formatted(&example_spec(), DEMO_ONLY_ZELID),
        now_ms() + 10 * 60_000,
        &FluxSigner::from_wif(DEMO_ONLY_WIF).unwrap(),
    );
    let auth = zelidauth(&FluxSigner::from_wif(DEMO_ONLY_WIF).unwrap(), now_ms());
    let answer = s
        .post("/apps/appregister", Some(&auth), "text/plain", future.body)
        .await;
    assert!(answer["data"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Message timestamp from future, not valid."));
    assert!(s.emu.api.accepted_messages().is_empty());
}

#[tokio::test]
async fn transient_failures_are_retryable() {
    let s = setup().await;
    let client = s.client();
    s.emu.faults.set(FaultPlan {
        fail_next: 1,
        status: Some(503),
        ..FaultPlan::default()
    });
    let (result, _) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, DeployError::ServerFailed { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());

    s.emu.api.set_synced(false);
    let (result, _) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let err = result.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("Daemon not yet synced."), "{err}");

    s.emu.api.set_synced(true);
    s.emu.api.set_peers(3, 10);
    let (result, _) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let err = result.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("enough outgoing peers"), "{err}");

    // After the trouble, the same deploy goes through.
    s.emu.api.set_peers(8, 4);
    let (result, _) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    result.unwrap();
}

#[tokio::test]
async fn node_quirks_match_fluxos() {
    let s = setup().await;
    let demo = FluxSigner::from_wif(DEMO_ONLY_WIF).unwrap();
    let msg = SignedMessage::new(
        MessageKind::Register,
        &formatted(&example_spec(), DEMO_ONLY_ZELID),
        now_ms(),
        &demo,
    );
    let auth = zelidauth(&demo, now_ms());
    let message = |v: &Value| {
        v["data"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // F3: no session.
    let answer = s
        .post("/apps/appregister", None, "text/plain", msg.body.clone())
        .await;
    assert_eq!(answer["data"]["code"], 401);
    // F2: a JSON content type: express.json() eats the body.
    let answer = s
        .post(
            "/apps/appregister",
            Some(&auth),
            "application/json",
            msg.body.clone(),
        )
        .await;
    assert!(
        message(&answer).starts_with("Incomplete message received."),
        "{answer}"
    );
    // F4: the seed's plural key.
    let plural = msg
        .body
        .replace("\"appSpecification\"", "\"appSpecifications\"");
    let answer = s
        .post("/apps/appregister", Some(&auth), "text/plain", plural)
        .await;
    assert!(
        message(&answer).starts_with("Incomplete message received."),
        "{answer}"
    );
    // F5: version as a string.
    let string_version = msg.body.replace(
        "\"version\":1,\"appSpecification\"",
        "\"version\":\"1\",\"appSpecification\"",
    );
    let answer = s
        .post(
            "/apps/appregister",
            Some(&auth),
            "text/plain",
            string_version,
        )
        .await;
    assert_eq!(message(&answer), "Invalid version of message");
    // F1, then a second registration of the same name in another case.
    let answer = s
        .post(
            "/apps/appregister",
            Some(&auth),
            "text/plain",
            msg.body.clone(),
        )
        .await;
    assert_eq!(
        answer,
        json!({"status": "success", "data": msg.expected_hash()})
    );
    s.emu.api.pay(&msg.expected_hash()).unwrap();
    let mut upper = example_spec();
    upper["name"] = json!("PushfsHello");
    let again = SignedMessage::new(
        MessageKind::Register,
        &formatted(&upper, DEMO_ONLY_ZELID),
        now_ms(),
        &demo,
    );
    let answer = s
        .post("/apps/appregister", Some(&auth), "text/plain", again.body)
        .await;
    assert_eq!(
        message(&answer),
        "Flux App PushfsHello already registered. Flux App has to be registered under different name."
    );
    // The registered spec is served back, with its hash.
    let spec: Value = reqwest::get(format!("{}/apps/appspecifications/PUSHFSHELLO", s.emu.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["data"]["hash"], msg.expected_hash());
    assert_eq!(spec["data"]["owner"], DEMO_ONLY_ZELID);
}

#[test]
fn golden_fluxos_vector_verifies() {
    let spec = r#"{"version":2,"name":"FoldingAtHome","description":"Folding @ Home is cool :)","repotag":"yurinnick/folding-at-home:latest","owner":"1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC","ports":[30001],"containerPorts":[7396],"domains":[""],"enviromentParameters":["USER=foldingUser","TEAM=262156","ENABLE_GPU=false","ENABLE_SMP=true"],"commands":["--allow","0/0","--web-allow","0/0"],"containerData":"/config","cpu":0.5,"ram":500,"hdd":5,"tiered":true,"cpubasic":0.5,"cpusuper":1,"cpubamf":2,"rambasic":500,"ramsuper":1000,"rambamf":2000,"hddbasic":5,"hddsuper":5,"hddbamf":5}"#;
    let sig =
        "H7AP+VrFUTrmi+DqG8x0nllBFXB+oD09AkSE/JEpemeOTzMglftjTtPaEY3rMW/FUezEiad0WZNgxiInFrUn6S8=";
    let payload = signing_payload("fluxappregister", spec, 1592988806887);
    assert!(signer::verify(
        &payload,
        "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC",
        sig
    ));
    assert_eq!(
        pushfs::backend::flux::message::message_hash("fluxappregister", spec, 1592988806887, sig),
        "c509eae87618e0c4c40106d3c515923d7611070bcafad261de9520238617c972"
    );
}

#[tokio::test]
async fn the_private_key_never_leaks() {
    let s = setup().await;
    let client = s.client();
    let mut texts = vec![format!("{:?}", s.config.flux), format!("{:?}", s.config)];

    let mut record = |result: Result<DeployOutcome, DeployError>, report: Recorder| {
        match result {
            Ok(outcome) => texts.push(format!("{outcome:?}")),
            Err(err) => texts.push(format!("{err} {err:?}")),
        }
        texts.push(report.all_text());
    };
    let (r, rep) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    record(r, rep);
    let mut bad = example_spec();
    bad["name"] = json!("zelbad");
    let (r, rep) = s.deploy(&client, &bad, &PreviousDeploy::default()).await;
    record(r, rep);
    s.emu.api.set_clock_offset_ms(3 * 3_600_000);
    let mut changed = example_spec();
    changed["instances"] = json!(4);
    let (r, rep) = s
        .deploy(&client, &changed, &PreviousDeploy::default())
        .await;
    record(r, rep);
    // A key that is not a WIF at all, and one in a world-readable file.
    let mut broken = s.config.flux.clone();
    broken.private_key = Some(pushfs::backend::flux::key::WifSecret::new(
        &DEMO_ONLY_WIF[..40],
    ));
    let (r, rep) = s
        .deploy(
            &FluxClient::new(&broken),
            &example_spec(),
            &PreviousDeploy::default(),
        )
        .await;
    record(r, rep);
    let key_file = s.tmp.path().join("open.wif");
    fs::write(&key_file, DEMO_ONLY_WIF).unwrap();
    let mut open = s.config.flux.clone();
    open.private_key = None;
    open.private_key_file = Some(key_file);
    let (r, rep) = s
        .deploy(
            &FluxClient::new(&open),
            &example_spec(),
            &PreviousDeploy::default(),
        )
        .await;
    record(r, rep);

    for request in s.emu.api.requests() {
        texts.push(format!("{request:?}"));
    }
    let all = texts.join("\n");
    assert!(
        all.contains("hash") || all.contains(DEMO_ONLY_ZELID),
        "the texts are not empty"
    );
    for secret in [DEMO_ONLY_WIF, &DEMO_ONLY_WIF[..40], &DEMO_ONLY_WIF[10..30]] {
        assert!(!all.contains(secret), "the key leaked into: {all}");
    }
}

#[tokio::test]
async fn missing_configuration_is_reported_without_a_request() {
    let s = setup().await;
    let mut config = s.config.flux.clone();
    config.private_key = None;
    config.private_key_file = None;
    let (result, _) = s
        .deploy(
            &FluxClient::new(&config),
            &example_spec(),
            &PreviousDeploy::default(),
        )
        .await;
    assert!(matches!(
        result.unwrap_err(),
        DeployError::NotConfigured {
            backend: "flux",
            ..
        }
    ));
    config.url = None;
    let (result, _) = s
        .deploy(
            &FluxClient::new(&config),
            &example_spec(),
            &PreviousDeploy::default(),
        )
        .await;
    assert!(result.unwrap_err().to_string().contains("[flux] url"));
    assert!(s.emu.api.requests().is_empty());
}

#[tokio::test]
async fn a_v8_spec_registers_with_hyphenated_name_and_one_instance() {
    let s = setup().await;
    let mut spec = example_spec();
    spec["version"] = json!(8);
    spec["name"] = json!("pushfs-hello");
    spec["instances"] = json!(1);
    spec["enterprise"] = json!("");
    let component = spec["compose"][0].as_object_mut().unwrap();
    component.remove("tiered");
    component.remove("secrets");
    let (result, _) = s
        .deploy(&s.client(), &spec, &PreviousDeploy::default())
        .await;
    result.unwrap();
    let accepted = s.emu.api.accepted_messages();
    assert!(accepted[0]
        .spec_json
        .starts_with(r#"{"version":8,"name":"pushfs-hello","#));
    assert!(accepted[0]
        .spec_json
        .ends_with(r#""staticip":false,"enterprise":""}"#));
}

/// Follows `due` with the client's watch, failing the test after 20 s.
async fn watch(client: &FluxClient, due: &PaymentDue) -> (Result<(), DeployError>, Recorder) {
    let report = Recorder::default();
    let result = tokio::time::timeout(Duration::from_secs(20), client.watch(due, &report))
        .await
        .expect("the watch ends in time");
    (result, report)
}

#[tokio::test]
async fn an_accepted_message_says_what_to_pay_to_whom_and_by_when() {
    let s = setup().await;
    let (result, report) = s
        .deploy(&s.client(), &example_spec(), &PreviousDeploy::default())
        .await;
    let hash = result.unwrap().hash.unwrap();
    let accepted = &s.emu.api.accepted_messages()[0];
    let payments = report.payments();
    assert_eq!(payments.len(), 1, "{payments:?}");
    let due = &payments[0];
    assert_eq!(due.address.as_deref(), Some(DEPLOYMENT_ADDRESS));
    assert_eq!(due.price, Some(emulator_price(&accepted.spec)));
    assert_eq!(due.currency, "FLUX");
    assert_eq!(due.memo, hash);
    assert_eq!(due.app_name, "pushfshello");
    assert_eq!(due.stage, PaymentStage::Unpaid);
    // One hour after the node received it, by the node's clock.
    assert_eq!(
        due.deadline_ms,
        accepted.received_at_ms + TEMPORARY_MESSAGE_TTL_MS
    );
    assert!(report.has_log("pushfs never pays"), "{:?}", report.logs());
    assert!(
        s.emu.api.apps().is_empty(),
        "unpaid, the app is not registered"
    );
}

#[tokio::test]
async fn the_watch_follows_a_paid_message_until_it_runs() {
    let s = setup().await;
    s.emu.api.set_start_delay_ms(300);
    let client = s.client();
    let (_, report) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let due = report.payments().pop().unwrap();
    let payer = {
        let api = s.emu.api.clone();
        let hash = due.memo.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            api.pay(&hash).unwrap();
        })
    };
    let (result, report) = watch(&client, &due).await;
    result.unwrap();
    payer.await.unwrap();
    assert_eq!(report.states(), vec![DeployState::Paid]);
    let stages: Vec<_> = report.payments().iter().map(|p| p.stage).collect();
    assert_eq!(stages, [PaymentStage::Paid, PaymentStage::Running]);
    assert!(report.has_log("is paid"), "{:?}", report.logs());
    assert!(report.has_log("runs message"), "{:?}", report.logs());
    let paths: Vec<String> = s.emu.api.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p == "/apps/permanentmessages"));
    assert!(paths.iter().any(|p| p == "/apps/location/pushfshello"));
}

#[tokio::test]
async fn an_unpaid_message_expires_at_its_deadline() {
    let s = setup().await;
    s.emu.api.set_temporary_ttl_ms(400);
    let client = s.client();
    let (_, report) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let due = report.payments().pop().unwrap();
    let (result, report) = watch(&client, &due).await;
    let err = result.unwrap_err();
    assert!(matches!(err, DeployError::ExpiredUnpaid(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("registration expired unpaid"),
        "{err}"
    );
    assert_eq!(
        report.payments().last().unwrap().stage,
        PaymentStage::Expired
    );
    // Too late to pay now.
    assert!(s.emu.api.pay(&due.memo).is_err());
}

#[tokio::test]
async fn payment_queries_match_the_emulated_node() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let node = NodeQueries {
        http: &http,
        base: &s.emu.url,
    };
    let info = node.deployment_info().await.unwrap();
    assert_eq!(info.address, DEPLOYMENT_ADDRESS);
    assert_eq!(info.min_price, Some(0.01));

    let spec = formatted(&example_spec(), DEMO_ONLY_ZELID);
    let price = node.price(&spec.canonical_json()).await.unwrap();
    let canonical: Value = serde_json::from_str(&spec.canonical_json()).unwrap();
    assert_eq!(price, emulator_price(&canonical));
    // Read raw, like appregister: a JSON content type leaves the node nothing.
    let refused = s
        .post(
            "/apps/calculateprice",
            None,
            "application/json",
            spec.canonical_json(),
        )
        .await;
    assert_eq!(refused["status"], "error");

    let (result, _) = s
        .deploy(&s.client(), &example_spec(), &PreviousDeploy::default())
        .await;
    let hash = result.unwrap().hash.unwrap();
    let temporary = node.temporary_message(&hash).await.unwrap().unwrap();
    assert!(temporary.expire_at_ms > temporary.received_at_ms);
    assert_eq!(temporary.spec.unwrap()["name"], "pushfshello");
    assert!(!node.is_permanent(&hash).await.unwrap());
    assert_eq!(node.nodes_running("pushfshello", &hash).await.unwrap(), 0);
    assert!(node
        .temporary_message(&"0".repeat(64))
        .await
        .unwrap()
        .is_none());

    // The test hook, over HTTP: paid once, then refused.
    let url = format!("{}/_emulator/flux/pay/{hash}", s.emu.url);
    let paid = http.post(&url).send().await.unwrap();
    assert_eq!(paid.status(), 200);
    assert_eq!(http.post(&url).send().await.unwrap().status(), 404);
    assert!(node.is_permanent(&hash).await.unwrap());
    assert_eq!(node.nodes_running("pushfshello", &hash).await.unwrap(), 3);
    // Names are matched case-insensitively, as FluxOS's regex does.
    assert_eq!(node.nodes_running("PushfsHello", &hash).await.unwrap(), 3);
    let no_name = reqwest::get(format!("{}/apps/location", s.emu.url))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(no_name["data"]["message"], "No Flux App name specified");
}

#[tokio::test]
async fn the_chain_advances_apps_expire_and_renewals_are_priced_as_fluxos_does() {
    let s = setup().await;
    let http = reqwest::Client::new();
    let node = NodeQueries {
        http: &http,
        base: &s.emu.url,
    };
    // GET /daemon/getblockcount: a height that moves at the set speed.
    s.emu.api.set_block_time_ms(10);
    let before = node.block_count().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = node.block_count().await.unwrap();
    assert!(after > before, "{before} → {after}");
    // Slow again, so the heights below hold still.
    s.emu.api.set_block_time_ms(3_600_000);

    let client = s.client();
    let (result, _) = s
        .deploy(&client, &example_spec(), &PreviousDeploy::default())
        .await;
    let first = result.unwrap().hash.unwrap();
    s.emu.api.pay(&first).unwrap();
    let registered_at = s.emu.api.apps()[0].height;

    // The same spec again changes no expiry: a free update (checkFreeAppUpdate).
    let spec = formatted(&example_spec(), DEMO_ONLY_ZELID);
    assert_eq!(node.price(&spec.canonical_json()).await.unwrap(), 0.0);
    // A longer expire costs its price less the unused share of the last one.
    let mut longer = example_spec();
    longer["expire"] = json!(100_000);
    let longer = formatted(&longer, DEMO_ONLY_ZELID);
    let canonical: Value = serde_json::from_str(&longer.canonical_json()).unwrap();
    let quoted = node.price(&longer.canonical_json()).await.unwrap();
    let full = emulator_price(&canonical);
    assert!(quoted > 0.0 && quoted < full, "{quoted} of {full}");

    // renew: a signed fluxappupdate of the registered spec, expire replaced.
    let report = Recorder::default();
    let outcome = client
        .renew(&s.app(&example_spec()), Some(100_000), &report)
        .await
        .unwrap();
    let renewal = outcome.hash.unwrap();
    let due = report.payments().pop().unwrap();
    assert!(due.renewal);
    assert_eq!(due.memo, renewal);
    assert_eq!(due.price, Some(quoted));
    let messages = s.emu.api.accepted_messages();
    let sent = messages.iter().find(|m| m.hash == renewal).unwrap();
    assert_eq!(sent.kind, MessageKind::Update);
    assert_eq!(sent.spec["expire"], 100_000);
    assert!(sent.spec.get("hash").is_none() && sent.spec.get("height").is_none());

    // Paid below the update's price: permanent, not applied.
    let underpaid = s.emu.api.pay_amount(&renewal, Some(0.01)).unwrap();
    assert!(!underpaid.registered);
    assert!(node.is_permanent(&renewal).await.unwrap());
    assert_eq!(s.emu.api.apps()[0].hash, first);

    // Past its expiry height the app drops out of the node's lists.
    s.emu.api.set_height(registered_at + 88_000);
    assert_eq!(
        s.emu.api.apps().len(),
        1,
        "still there at its expiry height"
    );
    s.emu.api.set_height(registered_at + 88_001);
    assert!(s.emu.api.apps().is_empty());
    assert!(node
        .app_specification("pushfshello")
        .await
        .unwrap()
        .is_none());
    let err = client
        .renew(&s.app(&example_spec()), None, &Recorder::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing to renew"), "{err}");
}
