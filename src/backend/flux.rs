//! The Flux backend: registers (or updates) an app on a FluxOS node.
//!
//! Flux runs container images, so only `spec.json` travels. One deploy:
//! read the spec, default its owner to our ZelID, rebuild it in FluxOS's
//! canonical form and check it with FluxOS's rules (nothing is sent if that
//! fails), ask the node whether the app is registered, then sign
//! `type + 1 + JSON(spec) + timestamp` and `POST` it as `text/plain` with a
//! `zelidauth` session header to `/apps/appregister` or `/apps/appupdate`.
//! The node answers with the message hash, which we recompute and compare.
//! An accepted message is temporary until its fee is paid: the deploy
//! reports what to pay ([`payment`]) and [`watch`] follows the message until
//! the app runs or the deadline passes. pushfs never pays.
//! User docs, with the rules followed: `docs/flux.md`.

pub mod clock;
pub mod js;
pub mod key;
pub mod lease;
pub mod message;
pub mod owner;
pub mod payment;
pub mod queries;
pub mod response;
pub mod signer;
pub mod spec;
pub mod update;
pub mod validate;
pub mod watch;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use self::clock::{Clock, SystemClock};
use self::key::WifSecret;
use self::lease::LivePolicy;
use self::message::{signing_payload, zelidauth, MessageKind, SignedMessage};
use self::queries::NodeQueries;
use self::response::{error_for, Answer};
use self::signer::FluxSigner;
use self::spec::AppSpec;
use self::update::{check_compatible, Proposed, Registered};
use self::watch::WatchPolicy;
use super::http::{send, TlsSettings};
use super::{
    Backend, BackendKind, DeployError, DeployOutcome, DeployState, IgnoreProfile, PaymentDue,
    PreviousDeploy, Report,
};
use crate::env::Env;
use crate::snapshot::Snapshot;

/// The app folder's spec: FluxOS's `appSpecification`.
pub const SPEC_FILE: &str = "spec.json";

/// FluxOS gossips the message and waits for peers to echo it (~15 s) before
/// it answers; leave room for a slow node.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// `[flux]` in the config file; `PUSHFS_FLUX_*` in the environment.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluxConfig {
    /// A FluxOS node's API, e.g. `http://<node-ip>:16127`.
    pub url: Option<String>,
    /// A file holding the ZelID's WIF private key; mode 0600 or stricter.
    pub private_key_file: Option<PathBuf>,
    /// The default `owner` of specs that have none (else the key's address).
    pub zelid: Option<String>,
    /// Seconds to wait for the node's answer (default 90).
    pub timeout_secs: Option<u64>,
    /// Seconds between looks at a message waiting for its payment (default
    /// 30); doubles while nothing changes, up to `watch_max_interval_secs`.
    pub watch_interval_secs: Option<f64>,
    /// The longest pause between looks (default 300).
    pub watch_max_interval_secs: Option<f64>,
    /// How long before its expiry a deployed app is flagged for renewal
    /// (humantime, default `"7days"`).
    pub renew_warning: Option<String>,
    /// PEM certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (insecure; warned about at mount).
    pub skip_ssl_validation: Option<bool>,
    /// A key given in memory (`PUSHFS_FLUX_KEY`, the demo); never from the file.
    #[serde(skip)]
    pub private_key: Option<WifSecret>,
}

impl fmt::Debug for FluxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FluxConfig")
            .field("url", &self.url)
            .field("private_key_file", &self.private_key_file)
            .field("zelid", &self.zelid)
            .field("timeout_secs", &self.timeout_secs)
            .field("watch_interval_secs", &self.watch_interval_secs)
            .field("watch_max_interval_secs", &self.watch_max_interval_secs)
            .field("renew_warning", &self.renew_warning)
            .field("ca_file", &self.ca_file)
            .field("skip_ssl_validation", &self.skip_ssl_validation)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl FluxConfig {
    /// `PUSHFS_FLUX_URL`, `PUSHFS_FLUX_ZELID`, and `PUSHFS_FLUX_KEY`: the WIF
    /// itself, or a key file's path when the value contains `/` (base58 has none).
    pub fn apply_env(&mut self, env: &Env) {
        if let Some(url) = env.get("PUSHFS_FLUX_URL") {
            self.url = Some(url.clone());
        }
        if let Some(zelid) = env.get("PUSHFS_FLUX_ZELID") {
            self.zelid = Some(zelid.clone());
        }
        if let Some(key) = env.get("PUSHFS_FLUX_KEY") {
            if key.contains('/') {
                self.private_key_file = Some(PathBuf::from(key));
                self.private_key = None;
            } else {
                self.private_key = Some(WifSecret::new(key.trim()));
            }
        }
    }
}

pub struct FluxClient {
    config: FluxConfig,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

impl FluxClient {
    pub fn new(config: &FluxConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client that reads the time from `clock` (tests move it).
    pub fn with_clock(config: &FluxConfig, clock: Arc<dyn Clock>) -> Self {
        let timeout = config
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TIMEOUT);
        let tls = TlsSettings {
            ca_file: config.ca_file.clone(),
            skip_validation: config.skip_ssl_validation.unwrap_or(false),
        };
        let http = super::http::tls_client_builder(&tls)
            .timeout(timeout)
            .build()
            .expect("a client with only a timeout and TLS roots set builds");
        FluxClient {
            config: config.clone(),
            clock,
            http,
        }
    }

    fn base_url(&self) -> Result<String, DeployError> {
        match self.config.url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => Ok(url.trim_end_matches('/').to_string()),
            _ => Err(DeployError::NotConfigured {
                backend: "flux",
                missing:
                    "[flux] url (a FluxOS node API, e.g. http://<node-ip>:16127) or PUSHFS_FLUX_URL"
                        .to_string(),
            }),
        }
    }

    fn watch_policy(&self) -> WatchPolicy {
        let secs = |s: Option<f64>, default: Duration| {
            s.filter(|s| s.is_finite() && *s > 0.0)
                .map(Duration::from_secs_f64)
                .unwrap_or(default)
        };
        let default = WatchPolicy::default();
        let interval = secs(self.config.watch_interval_secs, default.interval);
        WatchPolicy {
            interval,
            max_interval: secs(self.config.watch_max_interval_secs, default.max_interval)
                .max(interval),
        }
    }

    /// The watch of a deployed app: `watch_interval_secs` if set (else a
    /// few minutes: an expiry is weeks away) and `renew_warning`.
    fn live_policy(&self) -> LivePolicy {
        let default = LivePolicy::default();
        let interval = self
            .config
            .watch_interval_secs
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(default.interval);
        let warning = match self.config.renew_warning.as_deref() {
            None => default.warning,
            Some(text) => humantime::parse_duration(text.trim()).unwrap_or_else(|err| {
                tracing::warn!(%err, "[flux] renew_warning {text:?} is no duration (e.g. \"7days\"); using 7 days");
                default.warning
            }),
        };
        LivePolicy { interval, warning }
    }

    /// Reads, completes, formats and checks the spec; no network. Also
    /// returns whether the spec allows an owner transfer.
    fn prepare(
        &self,
        snapshot: &Snapshot,
        signer: &FluxSigner,
        report: &dyn Report,
    ) -> Result<(AppSpec, bool), DeployError> {
        let bytes = snapshot
            .read(SPEC_FILE)?
            .ok_or_else(|| DeployError::InvalidSpec(format!("{SPEC_FILE} is missing")))?;
        let mut raw: Value = crate::spec_json::parse(&bytes)
            .map_err(|e| DeployError::InvalidSpec(format!("{SPEC_FILE} is not valid JSON: {e}")))?;
        let Value::Object(fields) = &mut raw else {
            return Err(DeployError::InvalidSpec(format!(
                "{SPEC_FILE} must hold a JSON object (the Flux app specification)"
            )));
        };
        if matches!(fields.get("owner"), None | Some(Value::Null)) {
            let owner = self
                .config
                .zelid
                .clone()
                .unwrap_or_else(|| signer.address().to_string());
            report.log(&format!(
                "flux: owner not set in {SPEC_FILE}; using the configured ZelID {owner}"
            ));
            fields.insert("owner".to_string(), Value::String(owner));
        }
        if let Some(Value::String(owner)) = fields.get("owner") {
            owner::check_owner(owner).map_err(DeployError::InvalidSpec)?;
        }
        // pushfs's own switch; FluxOS never sees it.
        let transfer = fields.remove(owner::TRANSFER_KEY) == Some(Value::Bool(true));
        let dropped = spec::unknown_keys(&raw);
        if !dropped.is_empty() {
            report.log(&format!(
                "flux: {SPEC_FILE} keys FluxOS does not know are not sent: {}",
                dropped.join(", ")
            ));
        }
        let spec = AppSpec::format(&raw).map_err(|e| DeployError::InvalidSpec(e.0))?;
        validate::verify(&spec, validate::ASSUMED_CHAIN_HEIGHT)
            .map_err(|e| DeployError::InvalidSpec(e.0))?;
        if spec.is_enterprise() {
            return Err(DeployError::InvalidSpec(
                "enterprise (encrypted) v8 apps are not supported by pushfs: set \"enterprise\": \"\""
                    .to_string(),
            ));
        }
        Ok((spec, transfer))
    }

    /// Asks the node for the app's registered spec; `None` if it has none.
    async fn lookup(&self, base: &str, name: &str) -> Result<Option<Value>, DeployError> {
        self.node(base).app_specification(name).await
    }

    fn node<'a>(&'a self, base: &'a str) -> NodeQueries<'a> {
        NodeQueries {
            http: &self.http,
            base,
        }
    }

    /// Signs `spec` as a `kind` message, posts it, and checks the hash the
    /// node answers against ours. Returns the message, its hash, the node's
    /// answer and the signing time.
    async fn send(
        &self,
        base: &str,
        kind: MessageKind,
        spec: &AppSpec,
        signer: &FluxSigner,
        report: &dyn Report,
    ) -> Result<(SignedMessage, String, Value, u64), DeployError> {
        let now = self.clock.now_ms();
        let message = SignedMessage::new(kind, spec, now, signer);
        if kind == MessageKind::Register {
            let payload = signing_payload(kind.type_name(), &message.spec_json, now);
            if !signer::verify(&payload, &spec.owner, &message.signature) {
                return Err(DeployError::InvalidSpec(format!(
                    "owner {} in {SPEC_FILE} is not the configured key's ZelID {}; FluxOS checks the signature against owner",
                    spec.owner,
                    signer.address()
                )));
            }
        }

        report.log(&format!(
            "flux: POST {} for {} (owner {}, ZelID {})",
            kind.path(),
            spec.name,
            spec.owner,
            signer.address()
        ));
        let resp = self
            .http
            .post(format!("{base}{}", kind.path()))
            // Not application/json: FluxOS's json middleware would eat the body.
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .header("zelidauth", zelidauth(signer, now))
            .body(message.body.clone());
        let resp = send(resp).await?;
        let status = resp.status().as_u16();
        let retry_after = crate::backend::retry_after::from_headers(resp.headers());
        let text = super::http::text(resp).await?;
        let (answer, body) =
            response::parse(status, &text).map_err(|err| err.with_retry_after(retry_after))?;
        report.response(&body);
        let data = match answer {
            Answer::Success(data) => data,
            Answer::Error { message, code } => return Err(error_for(status, message, code)),
        };
        let hash = match data.as_str() {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => h.to_string(),
            _ => {
                return Err(DeployError::Protocol(format!(
                    "expected a 64-hex message hash, got {data}"
                )))
            }
        };
        let expected = message.expected_hash();
        if hash != expected {
            return Err(DeployError::Protocol(format!(
                "the node returned message hash {hash}, but SHA-256 of the message we signed is {expected}"
            )));
        }
        Ok((message, hash, body, now))
    }

    /// Register or update, and the checks an update needs before it is signed.
    fn choose_kind(
        &self,
        spec: &AppSpec,
        registered: Option<&Value>,
        signer: &FluxSigner,
        previous: &PreviousDeploy,
        transfer: bool,
        report: &dyn Report,
    ) -> Result<MessageKind, DeployError> {
        let name = &spec.name;
        let last = previous.id.as_deref().or(previous.hash.as_deref());
        let Some(registered) = registered else {
            report.log(&match last {
                Some(hash) => format!(
                    "flux: {name} is not on the network (our message {hash} was not paid, or the app expired); registering again"
                ),
                None => format!("flux: {name} is not registered yet; registering it"),
            });
            return Ok(MessageKind::Register);
        };
        let old = Registered::from_value(registered);
        let registered_name = registered
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(name);
        if registered_name != name {
            return Err(DeployError::InvalidSpec(format!(
                "Flux App {registered_name} is already registered; FluxOS updates need the exact name, so rename {name} to {registered_name} in {SPEC_FILE}"
            )));
        }
        let owner = old.owner.clone().unwrap_or_default();
        if owner != signer.address() {
            return Err(DeployError::InvalidSpec(format!(
                "Flux App {name} is already registered by {owner}, not by the configured ZelID {}: choose another app name",
                signer.address()
            )));
        }
        let components: Vec<&str> = spec
            .compose
            .iter()
            .map(|c| c.name.as_deref().unwrap_or("undefined"))
            .collect();
        let proposed = Proposed {
            name,
            version: spec.version.value(),
            components,
        };
        check_compatible(&old, &proposed).map_err(DeployError::InvalidSpec)?;
        owner::check_transfer(name, &owner, &spec.owner, transfer)
            .map_err(DeployError::InvalidSpec)?;
        if spec.owner != owner {
            report.log(&format!(
                "flux: this update transfers {name} from {owner} to {}",
                spec.owner
            ));
        }
        report.log(&match last {
            Some(hash) => {
                format!("flux: {name} is registered (our last message {hash}); sending an update")
            }
            None => format!("flux: {name} is already registered to this ZelID; sending an update"),
        });
        Ok(MessageKind::Update)
    }
}

#[async_trait]
impl Backend for FluxClient {
    fn kind(&self) -> BackendKind {
        BackendKind::Flux
    }

    fn spec_files(&self) -> &'static [&'static str] {
        &[SPEC_FILE]
    }

    fn remote_name(&self, snapshot: &Snapshot) -> Option<String> {
        let bytes = snapshot.read(SPEC_FILE).ok()??;
        let spec: Value = crate::spec_json::parse(&bytes).ok()?;
        let name = spec.get("name")?.as_str()?;
        // FluxOS compares app names without regard to case.
        Some(format!("app {}", name.to_lowercase()))
    }

    fn ignore_profile(&self) -> IgnoreProfile {
        IgnoreProfile::default()
    }

    async fn deploy(
        &self,
        snapshot: &Snapshot,
        previous: &PreviousDeploy,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let base = self.base_url()?;
        let signer = key::load_signer(&self.config)?;
        report.state(DeployState::Packaging);
        let (spec, transfer) = self.prepare(snapshot, &signer, report)?;
        let others = snapshot
            .files()
            .filter(|(e, _)| e.path != SPEC_FILE)
            .count();
        if others > 0 {
            report.log(&format!(
                "flux: Flux runs container images, so only {SPEC_FILE} is sent; {others} other file(s) in the app folder are not uploaded"
            ));
        }

        // From the first request on: a stalled node reads `uploading`.
        report.state(DeployState::Uploading);
        let registered = self.lookup(&base, &spec.name).await?;
        let kind = self.choose_kind(
            &spec,
            registered.as_ref(),
            &signer,
            previous,
            transfer,
            report,
        )?;
        let (message, hash, body, now) = self.send(&base, kind, &spec, &signer, report).await?;
        report.id(&hash);
        let node = NodeQueries {
            http: &self.http,
            base: &base,
        };
        let due = payment::quote(&node, &spec.name, &message.spec_json, &hash, now, report).await;
        report.log(&format!(
            "flux: node accepted {} message {hash}; it is kept until {} unless its fee is paid: {}; see .pushfs/payment. pushfs never pays",
            kind.type_name(),
            due.deadline,
            what_to_send(&due),
        ));
        Ok(awaiting_payment(hash, body, &due, "message", report))
    }

    async fn watch(&self, due: &PaymentDue, report: &dyn Report) -> Result<(), DeployError> {
        let base = self.base_url()?;
        let node = NodeQueries {
            http: &self.http,
            base: &base,
        };
        watch::watch(&node, &*self.clock, due, self.watch_policy(), report).await
    }

    async fn watch_live(&self, app_name: &str, report: &dyn Report) -> Result<(), DeployError> {
        let base = self.base_url()?;
        let node = self.node(&base);
        lease::watch_live(&node, &*self.clock, app_name, self.live_policy(), report).await
    }

    /// A `fluxappupdate` of the spec the network holds, with `expire` set
    /// to `blocks` (default: the spec file's own `expire`), counted by
    /// FluxOS from the block that pays the update. The spec file is left
    /// as the user wrote it.
    async fn renew(
        &self,
        snapshot: &Snapshot,
        blocks: Option<u64>,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let base = self.base_url()?;
        let signer = key::load_signer(&self.config)?;
        let (file_spec, _) = self.prepare(snapshot, &signer, report)?;
        let name = file_spec.name.clone();
        let expire = blocks.unwrap_or(file_spec.expire.value() as u64);
        let node = self.node(&base);
        let Some(registered) = node.app_specification(&name).await? else {
            return Err(DeployError::InvalidSpec(format!(
                "renew: {name} is not on the network, so there is nothing to renew; write `deploy` to .pushfs/ctl to register it again"
            )));
        };
        let owner = registered
            .get("owner")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if owner != signer.address() {
            return Err(DeployError::InvalidSpec(format!(
                "renew: {name} is registered by {owner}, not by the configured ZelID {}: only its owner can renew it",
                signer.address()
            )));
        }
        let mut raw = registered.clone();
        if let Value::Object(fields) = &mut raw {
            // The node adds where the spec was paid; they are no spec keys.
            fields.remove("hash");
            fields.remove("height");
            fields.insert("expire".to_string(), Value::from(expire));
        }
        let spec = AppSpec::format(&raw)
            .map_err(|e| DeployError::InvalidSpec(format!("renew: {}", e.0)))?;
        validate::verify(&spec, validate::ASSUMED_CHAIN_HEIGHT)
            .map_err(|e| DeployError::InvalidSpec(format!("renew: {}", e.0)))?;
        let chain = node.block_count().await.ok();
        let now_lease = chain.and_then(|c| lease::lease_of(&registered, c, self.clock.now_ms()));
        report.log(&format!(
            "flux: renewing {name}: an update with expire {expire} blocks, counted from the block that pays it{}; {SPEC_FILE} keeps expire {}",
            match (&now_lease, chain) {
                (Some(l), Some(c)) => format!(
                    " (about height {}; now paid until height {}, the chain is at {c})",
                    c + expire,
                    l.expire_height
                ),
                _ => String::new(),
            },
            file_spec.expire
        ));
        let (message, hash, body, now) = self
            .send(&base, MessageKind::Update, &spec, &signer, report)
            .await?;
        report.id(&hash);
        let mut due = payment::quote(&node, &name, &message.spec_json, &hash, now, report).await;
        due.renewal = true;
        report.log(&format!(
            "flux: node accepted renewal {hash}; until it is paid (by {}) {name} runs on to its old expiry: {}; see .pushfs/payment",
            due.deadline,
            what_to_send(&due),
        ));
        Ok(awaiting_payment(hash, body, &due, "renewal", report))
    }
}

/// "send 1.25 FLUX to t3… with the message hash as the transaction's
/// message (OP_RETURN)", with what is known of the price and address.
fn what_to_send(due: &PaymentDue) -> String {
    format!(
        "send {} {} to {} with the message hash as the transaction's message (OP_RETURN)",
        due.price
            .map(|p| p.to_string())
            .unwrap_or_else(|| "the price".into()),
        due.currency,
        due.address.as_deref().unwrap_or("the deployment address"),
    )
}

/// A message the node accepted and keeps for an hour, waiting for `due`:
/// reported, and the outcome that shows it (`what`: message, renewal).
fn awaiting_payment(
    hash: String,
    body: Value,
    due: &PaymentDue,
    what: &str,
    report: &dyn Report,
) -> DeployOutcome {
    report.payment(due);
    DeployOutcome {
        id: Some(hash.clone()),
        hash: Some(hash),
        response: Some(body),
        warnings: vec![format!(
            "the network keeps this {what} for 1 hour, until {}, unless its fee is paid (see .pushfs/payment)",
            due.deadline
        )],
        ..DeployOutcome::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_key_is_a_wif_or_a_path() {
        let mut c = FluxConfig::default();
        c.apply_env(&Env::from([
            (
                "PUSHFS_FLUX_KEY".to_string(),
                "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn".to_string(),
            ),
            (
                "PUSHFS_FLUX_URL".to_string(),
                "http://127.0.0.1:16127".to_string(),
            ),
            (
                "PUSHFS_FLUX_ZELID".to_string(),
                "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH".to_string(),
            ),
        ]));
        assert!(c.private_key.is_some());
        assert_eq!(c.url.as_deref(), Some("http://127.0.0.1:16127"));
        assert_eq!(
            c.zelid.as_deref(),
            Some("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")
        );
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("KwDi") && debug.contains("redacted"),
            "{debug}"
        );

        c.apply_env(&Env::from([(
            "PUSHFS_FLUX_KEY".to_string(),
            "/home/me/.config/pushfs/zelid.wif".to_string(),
        )]));
        assert!(c.private_key.is_none());
        assert_eq!(
            c.private_key_file,
            Some(PathBuf::from("/home/me/.config/pushfs/zelid.wif"))
        );
    }

    #[test]
    fn the_watch_is_polite_unless_told_otherwise() {
        let policy = |interval, max| {
            let config: FluxConfig = toml::from_str(&format!(
                "watch_interval_secs = {interval}\nwatch_max_interval_secs = {max}\n"
            ))
            .unwrap();
            FluxClient::new(&config).watch_policy()
        };
        assert_eq!(
            FluxClient::new(&FluxConfig::default()).watch_policy(),
            WatchPolicy {
                interval: Duration::from_secs(30),
                max_interval: Duration::from_secs(300),
            }
        );
        assert_eq!(
            policy(0.05, 0.2),
            WatchPolicy {
                interval: Duration::from_millis(50),
                max_interval: Duration::from_millis(200),
            }
        );
        // Nonsense falls back to the defaults; the maximum is never below the interval.
        assert_eq!(policy(-1.0, 10.0).interval, Duration::from_secs(30));
        assert_eq!(policy(60.0, 10.0).max_interval, Duration::from_secs(60));
    }

    #[test]
    fn config_file_cannot_hold_the_key_inline() {
        let err = toml::from_str::<FluxConfig>("private_key = \"K...\"\n").unwrap_err();
        assert!(err.to_string().contains("private_key"), "{err}");
        let ok: FluxConfig =
            toml::from_str("url = \"http://n:16127\"\nprivate_key_file = \"/k.wif\"\n").unwrap();
        assert_eq!(ok.private_key_file, Some(PathBuf::from("/k.wif")));
    }
}
