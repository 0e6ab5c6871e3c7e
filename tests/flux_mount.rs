//! Flux end to end on a real mount: register, payment and update, expiry,
//! a change or a remount while awaiting payment, local spec errors, refused
//! keys and timestamps, and a private key that never leaks.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{eventually, run, status, status_json, wait, TestMount};
use pushfs::backend::flux::key::WifSecret;
use pushfs::emulator::flux::{emulator_price, DEMO_ONLY_WIF, DEPLOYMENT_ADDRESS};
use pushfs::emulator::Emulators;

/// Another valid key, not the demo one (from the FluxOS test suite's style of fixtures).
const OTHER_WIF: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";

/// A mount whose Flux watch looks at the node every 50 ms (not 30 s).
fn mount_and(adjust: impl FnOnce(&Emulators)) -> TestMount {
    TestMount::with_emulators_and(|config, emulators| {
        config.flux.watch_interval_secs = Some(0.05);
        config.flux.watch_max_interval_secs = Some(0.2);
        adjust(emulators);
    })
}

/// Pays message `hash` through the emulator's HTTP test hook.
fn pay(t: &TestMount, hash: &str) {
    let url = format!("{}/_emulator/flux/pay/{hash}", t.emulators().flux.url);
    let status = t.runtime.block_on(async {
        reqwest::Client::new()
            .post(url)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200, "paying {hash}");
}

/// `key: value` from `.pushfs/payment`.
fn payment_field(app: &Path, key: &str) -> String {
    let text = status(app, "payment");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in .pushfs/payment:\n{text}"))
        .to_string()
}

fn eventually_state(app: &Path, state: &str) {
    eventually(&format!("{} becomes {state}", app.display()), || {
        status(app, "state") == state
    });
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
    let t = mount_and(|_| {});
    let app = t.copy_example("flux");
    // Accepted is not deployed: wait returns, the message awaits its fee.
    assert_eq!(wait(&app), "awaiting_payment");
    let accepted = t.emulators().flux.api.accepted_messages();
    assert_eq!(accepted.len(), 1);
    let hash = accepted[0].hash.clone();
    assert_eq!(status(&app, "hash"), hash);
    assert_eq!(status(&app, "id"), hash);
    assert_eq!(payment_field(&app, "address"), DEPLOYMENT_ADDRESS);
    assert_eq!(
        payment_field(&app, "price"),
        format!("{} FLUX", emulator_price(&accepted[0].spec))
    );
    assert_eq!(payment_field(&app, "memo"), hash);
    let deadline = humantime::parse_rfc3339(&payment_field(&app, "deadline")).unwrap();
    let received = std::time::UNIX_EPOCH + Duration::from_millis(accepted[0].received_at_ms);
    assert_eq!(
        deadline.duration_since(received).unwrap(),
        Duration::from_secs(3600)
    );
    let json = status_json(&app);
    assert_eq!(json["state"], "awaiting_payment");
    assert_eq!(json["payment"]["memo"], hash.as_str());
    assert_eq!(json["payment"]["address"], DEPLOYMENT_ADDRESS);
    assert_eq!(json["payment"]["stage"], "unpaid");
    let warnings = json["warnings"].to_string();
    assert!(warnings.contains("1 hour"), "{warnings}");
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

    // Paid, it is permanent; nodes start it a moment later.
    t.emulators().flux.api.set_start_delay_ms(1500);
    pay(&t, &hash);
    eventually_state(&app, "paid");
    assert_eq!(payment_field(&app, "stage"), "paid");
    eventually_state(&app, "deployed");
    assert_eq!(wait(&app), "deployed");
    t.emulators().flux.api.set_start_delay_ms(0);
    let log = status(&app, "log");
    assert!(log.contains(&format!("message {hash} is paid")), "{log}");
    assert!(log.contains("runs message"), "{log}");
    assert_eq!(status_json(&app)["payment"]["stage"], "running");

    set_instances(&app, 4);
    assert_eq!(wait(&app), "awaiting_payment");
    let accepted = t.emulators().flux.api.accepted_messages();
    assert_eq!(accepted.len(), 2);
    assert_eq!(status(&app, "hash"), accepted[1].hash);
    assert_eq!(payment_field(&app, "memo"), accepted[1].hash);
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
    pay(&t, &accepted[1].hash);
    eventually_state(&app, "deployed");

    let written = t.everything_written(&app);
    assert!(!written.contains(DEMO_ONLY_WIF), "the private key leaked");
}

#[test]
fn an_unpaid_registration_expires_at_its_deadline() {
    let t = mount_and(|emulators| emulators.flux.api.set_temporary_ttl_ms(1500));
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    let hash = status(&app, "hash");
    eventually_state(&app, "failed");
    let error = status(&app, "error");
    assert!(error.contains("registration expired unpaid"), "{error}");
    assert!(error.contains(&hash), "{error}");
    assert_eq!(payment_field(&app, "stage"), "expired");
    assert!(t.emulators().flux.api.apps().is_empty());
}

#[test]
fn a_change_while_awaiting_payment_starts_a_new_deploy() {
    let t = mount_and(|_| {});
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    let first = status(&app, "hash");
    set_instances(&app, 5);
    assert_eq!(wait(&app), "awaiting_payment");
    let second = status(&app, "hash");
    assert_ne!(first, second);
    assert_eq!(payment_field(&app, "memo"), second);
    let log = status(&app, "log");
    assert!(
        log.contains(&format!("a newer change supersedes message {first}")),
        "{log}"
    );
    pay(&t, &second);
    eventually_state(&app, "deployed");
    assert_eq!(t.emulators().flux.api.apps()[0].spec["instances"], 5);
}

#[test]
fn a_remount_resumes_the_watch_without_registering_again() {
    let mut t = mount_and(|_| {});
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    let hash = status(&app, "hash");
    t.remount();
    assert_eq!(wait(&app), "awaiting_payment");
    assert_eq!(payment_field(&app, "memo"), hash);
    assert_eq!(t.emulators().flux.api.accepted_messages().len(), 1);
    pay(&t, &hash);
    eventually_state(&app, "deployed");
    assert_eq!(t.emulators().flux.api.accepted_messages().len(), 1);
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
    let app = t.copy_example("flux");
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
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.to_lowercase().contains("timestamp") || error.to_lowercase().contains("old"),
        "{error}"
    );
    assert!(t.emulators().flux.api.accepted_messages().is_empty());
}

fn edit_spec(app: &Path, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(app.join("spec.json")).unwrap()).unwrap();
    edit(spec.as_object_mut().unwrap());
    fs::write(app.join("spec.json"), spec.to_string()).unwrap();
}

#[test]
fn an_owner_that_is_no_address_is_refused_before_sending() {
    let t = mount_and(|_| {});
    let src = t.scratch("typo");
    run(Command::new("cp")
        .arg("-r")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flux-hello/."))
        .arg(&src));
    edit_spec(&src, |s| {
        s.insert("owner".into(), "1NotARealZelIdAtAll1111111111111".into());
    });
    run(Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(t.mnt().join("flux")));
    let app = t.app("flux", "typo");
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(error.contains("is not a Flux owner"), "{error}");
    assert!(t.emulators().flux.api.accepted_messages().is_empty());
}

#[test]
fn an_update_that_would_change_the_owner_needs_asking() {
    let t = mount_and(|_| {});
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    let first = t.emulators().flux.api.accepted_messages()[0].hash.clone();
    pay(&t, &first);
    eventually("the app to run", || status(&app, "state") == "deployed");

    let someone_else = "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC";
    edit_spec(&app, |s| {
        s.insert("owner".into(), someone_else.into());
    });
    assert_eq!(wait(&app), "failed");
    let error = status(&app, "error");
    assert!(
        error.contains("would transfer Flux App") && error.contains("\"transfer\": true"),
        "{error}"
    );
    assert_eq!(
        t.emulators().flux.api.accepted_messages().len(),
        1,
        "nothing sent"
    );

    edit_spec(&app, |s| {
        s.insert("transfer".into(), true.into());
    });
    assert_eq!(wait(&app), "awaiting_payment", "{}", status(&app, "error"));
    let accepted = t.emulators().flux.api.accepted_messages();
    assert_eq!(accepted.len(), 2, "the transfer was sent once asked for");
    assert_eq!(accepted[1].spec["owner"], someone_else);
    assert!(
        accepted[1].spec.get("transfer").is_none(),
        "pushfs's key stays home"
    );
}

#[test]
fn a_stalled_node_shows_as_uploading_not_packaging() {
    let t = mount_and(|emulators| {
        // The lookup of the registered app hangs for 5 s.
        emulators.flux.faults.set(pushfs::emulator::FaultPlan {
            slow_next: 1,
            delay_ms: 5000,
            slow_path: Some("/apps/appspecifications/".into()),
            ..Default::default()
        });
    });
    let app = t.copy_example("flux");
    let flux = &t.emulators().flux;
    eventually("the lookup to be asked", || {
        flux.faults
            .requests()
            .iter()
            .any(|r| r.line.starts_with("GET /apps/appspecifications/"))
    });
    assert_eq!(status(&app, "state"), "uploading");
    assert_eq!(wait(&app), "awaiting_payment");
}

/// Pays message `hash` with `amount` FLUX through the emulator's test hook.
fn pay_amount(t: &TestMount, hash: &str, amount: f64) {
    let url = format!(
        "{}/_emulator/flux/pay/{hash}?amount={amount}",
        t.emulators().flux.url
    );
    let status = t.runtime.block_on(async {
        reqwest::Client::new()
            .post(url)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200, "paying {hash}");
}

/// Registers the example, pays it, and waits until it runs.
fn deployed_example(t: &TestMount) -> std::path::PathBuf {
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    pay(t, &status(&app, "hash"));
    eventually_state(&app, "deployed");
    app
}

fn lease_shown(app: &Path) -> serde_json::Value {
    let mut json = status_json(app);
    eventually("status.json to show the expiry", || {
        json = status_json(app);
        json["expire_height"].is_u64()
    });
    json
}

/// The QR code in a PNG, read back as a phone would.
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .expect("payment.png is a PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in payment.png");
    grids[0].decode().expect("the QR code decodes").1
}

#[test]
fn the_pay_link_names_address_amount_and_memo_and_its_qr_code_reads_back() {
    let t = mount_and(|_| {});
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    let accepted = t.emulators().flux.api.accepted_messages();
    let hash = accepted[0].hash.clone();
    let price = emulator_price(&accepted[0].spec);
    let link = payment_field(&app, "link");
    assert_eq!(
        link,
        format!("zel:?action=pay&coin=zelcash&address={DEPLOYMENT_ADDRESS}&amount={price}&message={hash}")
    );
    assert_eq!(status_json(&app)["payment"]["link"], link.as_str());
    let png = fs::read(app.join(".pushfs/payment.png")).unwrap();
    assert_eq!(decode_qr(&png), link);

    // Paid: nothing left to scan.
    pay(&t, &hash);
    eventually_state(&app, "deployed");
    assert!(fs::read(app.join(".pushfs/payment.png"))
        .unwrap()
        .is_empty());
    assert!(!status(&app, "payment").contains("link:"));
}

#[test]
fn a_deployed_app_shows_its_expiry_height_and_time() {
    let t = mount_and(|_| {});
    let app = deployed_example(&t);
    let json = lease_shown(&app);
    let flux = &t.emulators().flux.api;
    let paid_at = flux.apps()[0].height;
    let expire_height = json["expire_height"].as_u64().unwrap();
    assert_eq!(expire_height, paid_at + 88_000);
    let blocks_left = json["blocks_left"].as_i64().unwrap();
    let behind = expire_height as i64 - flux.height() as i64;
    assert!(
        (behind - blocks_left).abs() <= 1,
        "{blocks_left} vs {behind}"
    );
    // 30 s a block since the PON fork: about a month from now.
    let at = humantime::parse_rfc3339(json["expires_at"].as_str().unwrap()).unwrap();
    let ahead = at.duration_since(std::time::SystemTime::now()).unwrap();
    let expected = Duration::from_secs(blocks_left as u64 * 30);
    assert!(
        ahead.abs_diff(expected) < Duration::from_secs(120),
        "{ahead:?} vs {expected:?}"
    );
    // A month away is outside the default 7-day window: no warning.
    let warnings = json["warnings"].to_string();
    assert!(!warnings.contains("renew"), "{warnings}");
    let paths: Vec<String> = flux.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.iter().any(|p| p == "/daemon/getblockcount"),
        "{paths:?}"
    );
}

#[test]
fn inside_the_renew_window_status_and_log_say_when_and_how() {
    let t = TestMount::with_emulators_and(|config, _| {
        config.flux.watch_interval_secs = Some(0.05);
        config.flux.watch_max_interval_secs = Some(0.2);
        // The example's month is inside a 40-day window.
        config.flux.renew_warning = Some("40days".into());
    });
    let app = deployed_example(&t);
    let expire_height = lease_shown(&app)["expire_height"].as_u64().unwrap();
    eventually("the renew warning", || {
        status_json(&app)["warnings"]
            .to_string()
            .contains("write `renew` to .pushfs/ctl")
    });
    let warnings = status_json(&app)["warnings"].to_string();
    assert!(
        warnings.contains(&format!("height {expire_height}"))
            && warnings.contains("expires in about"),
        "{warnings}"
    );
    let log = status(&app, "log");
    assert!(log.contains("write `renew` to .pushfs/ctl"), "{log}");
}

#[test]
fn an_app_past_its_expiry_height_is_expired() {
    let t = mount_and(|emulators| emulators.flux.api.set_block_time_ms(100));
    let app = t.copy_example("flux");
    edit_spec(&app, |s| {
        s.insert("expire".into(), 20.into());
    });
    eventually("the short-lived message", || {
        t.emulators()
            .flux
            .api
            .accepted_messages()
            .iter()
            .any(|m| m.spec["expire"] == 20)
    });
    assert_eq!(wait(&app), "awaiting_payment");
    let hash = status(&app, "hash");
    pay(&t, &hash);
    eventually_state(&app, "deployed");
    let expire_height = lease_shown(&app)["expire_height"].as_u64().unwrap();
    eventually_state(&app, "expired");
    assert_eq!(wait(&app), "expired");
    assert!(t.emulators().flux.api.height() > expire_height);
    assert!(t.emulators().flux.api.apps().is_empty());
    let error = status(&app, "error");
    assert!(
        error.contains(&format!("expired at height {expire_height}")) && error.contains("about"),
        "{error}"
    );
    assert!(error.contains("register it again"), "{error}");
}

#[test]
fn renew_sends_an_update_that_once_paid_extends_the_expiry() {
    let t = mount_and(|_| {});
    let app = deployed_example(&t);
    let old = lease_shown(&app)["expire_height"].as_u64().unwrap();
    let spec_before = fs::read(app.join("spec.json")).unwrap();

    fs::write(app.join(".pushfs/ctl"), "renew 100000\n").unwrap();
    assert_eq!(wait(&app), "awaiting_payment");
    let flux = &t.emulators().flux.api;
    let accepted = flux.accepted_messages();
    assert_eq!(accepted.len(), 2);
    let renewal = &accepted[1];
    assert_eq!(
        renewal.kind,
        pushfs::backend::flux::message::MessageKind::Update
    );
    assert_eq!(renewal.spec["expire"], 100_000);
    assert_eq!(status(&app, "hash"), renewal.hash);
    assert_eq!(payment_field(&app, "memo"), renewal.hash);
    assert!(status(&app, "payment").starts_with("Not paid yet. To renew"));
    assert!(payment_field(&app, "link").contains(&renewal.hash));
    assert_eq!(
        fs::read(app.join("spec.json")).unwrap(),
        spec_before,
        "the spec file keeps the user's expire"
    );
    let posts: Vec<String> = flux
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert_eq!(posts.iter().filter(|p| *p == "/apps/appupdate").count(), 1);
    // Unpaid, the app runs on under its old registration.
    assert_eq!(flux.apps()[0].hash, accepted[0].hash);

    pay(&t, &renewal.hash);
    eventually_state(&app, "deployed");
    let new_height = flux.apps()[0].height;
    assert_eq!(flux.apps()[0].hash, renewal.hash);
    eventually("the new expiry", || {
        status_json(&app)["expire_height"].as_u64() == Some(new_height + 100_000)
    });
    assert!(new_height + 100_000 > old);
    let history = status(&app, "history");
    assert!(
        history
            .lines()
            .any(|l| l.contains(" renewed ") && l.contains(&renewal.hash)),
        "{history}"
    );

    // Plain `renew`: the spec file's own expire, counted from now.
    fs::write(app.join(".pushfs/ctl"), "renew\n").unwrap();
    assert_eq!(wait(&app), "awaiting_payment");
    let accepted = flux.accepted_messages();
    assert_eq!(accepted.len(), 3);
    assert_eq!(accepted[2].spec["expire"], 88_000);
}

#[test]
fn a_payment_below_the_price_is_underpaid_and_says_what_is_missing() {
    let t = mount_and(|_| {});
    let app = t.copy_example("flux");
    assert_eq!(wait(&app), "awaiting_payment");
    let accepted = t.emulators().flux.api.accepted_messages();
    let hash = accepted[0].hash.clone();
    assert_eq!(emulator_price(&accepted[0].spec), 0.63);
    pay_amount(&t, &hash, 0.5);
    eventually_state(&app, "underpaid");
    assert_eq!(wait(&app), "underpaid");
    let error = status(&app, "error");
    assert!(
        error.contains("paid 0.5 FLUX, 0.13 FLUX short of its price 0.63 FLUX"),
        "{error}"
    );
    assert!(
        error.contains("cannot be topped up") && error.contains("register again"),
        "{error}"
    );
    assert_eq!(payment_field(&app, "stage"), "underpaid");
    assert!(t.emulators().flux.api.apps().is_empty());
}
