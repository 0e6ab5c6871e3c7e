//! What an emulated FluxOS node knows and how it judges app messages, in
//! the order of `registerAppGlobalyApi` / `updateAppGlobalyApi` (flux.md §1).
//!
//! Differences from a real node, on purpose: there are no peers to gossip
//! to, so an accepted message is "confirmed" at once (no payment step,
//! unless `auto_confirm` is off); Docker registry lookups and enterprise
//! secrets are not checked; only v7/v8 specs are understood.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::session::verify_user_session;
use crate::backend::flux::js::{ensure_number, ensure_object, ensure_string, truthy, JsNumber};
use crate::backend::flux::message::MessageKind;
use crate::backend::flux::signer;
use crate::backend::flux::spec::AppSpec;
use crate::backend::flux::update::{check_compatible, Proposed, Registered};
use crate::backend::flux::validate;

/// FluxOS `config.fluxapps.minOutgoing` / `minIncoming`.
const MIN_OUTGOING: u32 = 8;
const MIN_INCOMING: u32 = 4;

/// A message the node accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedMessage {
    pub kind: MessageKind,
    pub hash: String,
    pub timestamp: f64,
    pub signature: String,
    /// The formatted spec, as the node stores it.
    pub spec: Value,
    /// `JSON.stringify` of the formatted spec: the signed bytes.
    pub spec_json: String,
}

/// An app in the node's global list.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApp {
    pub spec: Value,
    pub hash: String,
    pub height: u64,
}

#[derive(Debug, Clone)]
pub struct NodeState {
    pub height: u64,
    pub synced: bool,
    pub outgoing_peers: u32,
    pub incoming_peers: u32,
    /// Accepted messages join the global app list at once (skips payment).
    pub auto_confirm: bool,
    pub apps: Vec<StoredApp>,
    pub messages: Vec<AcceptedMessage>,
}

impl Default for NodeState {
    fn default() -> Self {
        NodeState {
            height: validate::ASSUMED_CHAIN_HEIGHT,
            synced: true,
            outgoing_peers: MIN_OUTGOING,
            incoming_peers: MIN_INCOMING,
            auto_confirm: true,
            apps: Vec::new(),
            messages: Vec::new(),
        }
    }
}

/// `messageHelper.createErrorMessage(message, 'Error')`.
pub fn error(message: impl Into<String>) -> Value {
    json!({"status": "error", "data": {"name": "Error", "message": message.into()}})
}

pub fn success(data: Value) -> Value {
    json!({"status": "success", "data": data})
}

pub fn unauthorized() -> Value {
    json!({"status": "error", "data": {"code": 401, "name": "Unauthorized", "message": "Unauthorized. Access denied."}})
}

impl NodeState {
    fn find_app(&self, name: &str) -> Option<&StoredApp> {
        let lower = name.to_lowercase();
        self.apps.iter().find(|a| {
            a.spec
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.to_lowercase() == lower)
        })
    }

    /// `GET /apps/appspecifications/<name>`.
    pub fn app_specification(&self, name: &str) -> Value {
        if !self.synced {
            return error("Daemon not yet synced.");
        }
        match self.find_app(name) {
            Some(app) => {
                let mut spec = app.spec.clone();
                spec["hash"] = json!(app.hash);
                spec["height"] = json!(app.height);
                success(spec)
            }
            None => error(format!("Application: {name} not found")),
        }
    }

    /// Steps 9–14 shared by the dry run, register and update: sync, format,
    /// validate; and for registrations, the name conflict check.
    fn formatted(&self, raw: &Value, register: bool) -> Result<AppSpec, String> {
        if !self.synced {
            return Err("Daemon not yet synced.".into());
        }
        let spec = AppSpec::format(raw).map_err(|e| e.0)?;
        validate::verify(&spec, self.height).map_err(|e| e.0)?;
        if register {
            if self.find_app(&spec.name).is_some() {
                return Err(format!(
                    "Flux App {} already registered. Flux App has to be registered under different name.",
                    spec.name
                ));
            }
            if spec.name.to_lowercase() == "share" {
                return Err(format!(
                    "Flux App {} already assigned to Flux main application. Flux App has to be registered under different name.",
                    spec.name
                ));
            }
        }
        Ok(spec)
    }

    /// `POST /apps/verifyappregistrationspecifications`: the body is the spec.
    pub fn verify_registration(&self, body: &str) -> Value {
        let raw = ensure_object(Some(&Value::String(body.to_string())));
        match self.formatted(&raw, true) {
            Ok(spec) => {
                success(serde_json::from_str(&spec.canonical_json()).unwrap_or(Value::Null))
            }
            Err(message) => error(message),
        }
    }

    /// `POST /apps/appregister` or `/apps/appupdate`, handled in FluxOS's order.
    pub fn app_message(
        &mut self,
        kind: MessageKind,
        zelidauth: Option<&str>,
        json_content_type: bool,
        body: &str,
        now_ms: u64,
    ) -> Value {
        if !verify_user_session(zelidauth, now_ms) {
            return unauthorized();
        }
        match self.judge(kind, json_content_type, body, now_ms) {
            Ok(hash) => success(json!(hash)),
            Err(message) => error(message),
        }
    }

    fn judge(
        &mut self,
        kind: MessageKind,
        json_content_type: bool,
        body: &str,
        now_ms: u64,
    ) -> Result<String, String> {
        let action = match kind {
            MessageKind::Register => "registration",
            MessageKind::Update => "update",
        };
        if self.outgoing_peers < MIN_OUTGOING {
            return Err(format!(
                "Sorry, This Flux does not have enough outgoing peers for safe application {action}"
            ));
        }
        if self.incoming_peers < MIN_INCOMING {
            return Err(format!(
                "Sorry, This Flux does not have enough incoming peers for safe application {action}"
            ));
        }
        // express.json() has already consumed a JSON body: the raw stream is empty.
        let body = if json_content_type { "" } else { body };
        let processed = ensure_object(Some(&Value::String(body.to_string())));
        let field = |k: &str| processed.get(k);
        let complete = [
            "appSpecification",
            "timestamp",
            "signature",
            "type",
            "version",
        ]
        .iter()
        .all(|k| truthy(field(k)));
        if !complete {
            return Err(match kind {
                MessageKind::Register => "Incomplete message received. Check if appSpecification, type, version, timestamp and signature are provided.",
                MessageKind::Update => "Incomplete message received. Check if appSpecification, timestamp, type, version and signature are provided.",
            }.into());
        }
        let type_name = field("type").and_then(Value::as_str).unwrap_or_default();
        let allowed = match kind {
            MessageKind::Register => ["zelappregister", "fluxappregister"],
            MessageKind::Update => ["zelappupdate", "fluxappupdate"],
        };
        if !allowed.contains(&type_name) {
            return Err("Invalid type of message".into());
        }
        if field("version").and_then(Value::as_f64) != Some(1.0) {
            return Err("Invalid version of message".into());
        }
        let raw_spec = ensure_object(field("appSpecification"));
        let timestamp = ensure_number(field("timestamp"));
        let signature = ensure_string(field("signature")).unwrap_or_default();

        let now = now_ms as f64;
        if timestamp.value() < now - 3_600_000.0 {
            return Err("Message timestamp is over 1 hour old, not valid. Check if your computer clock is synced and restart the registration process.".into());
        }
        if timestamp.value() > now + 300_000.0 {
            return Err("Message timestamp from future, not valid. Check if your computer clock is synced and restart the registration process.".into());
        }

        let spec = self.formatted(&raw_spec, kind == MessageKind::Register)?;
        let spec_json = spec.canonical_json();
        let payload = format!("{type_name}1{spec_json}{}", JsNumber(timestamp.value()));

        match kind {
            MessageKind::Register => {
                if !signer::verify(&payload, &spec.owner, &signature) {
                    return Err("Received signature is invalid or Flux App specifications are not properly formatted".into());
                }
            }
            MessageKind::Update => {
                // Exact, case-sensitive name: FluxOS queries `{ name }` here.
                let Some(app) = self
                    .apps
                    .iter()
                    .find(|a| a.spec.get("name").and_then(Value::as_str) == Some(&spec.name))
                else {
                    return Err(
                        "Flux App update received but application to update does not exist!".into(),
                    );
                };
                let old = Registered::from_value(&app.spec);
                let owner = old.owner.clone().unwrap_or_default();
                if !signer::verify(&payload, &owner, &signature) {
                    return Err("Received signature does not correspond with Flux App owner or Flux App specifications are not properly formatted".into());
                }
                let proposed = Proposed {
                    name: &spec.name,
                    version: spec.version.value(),
                    components: spec
                        .compose
                        .iter()
                        .map(|c| c.name.as_deref().unwrap_or("undefined"))
                        .collect(),
                };
                check_compatible(&old, &proposed)?;
            }
        }

        let hash = hex::encode(Sha256::digest(format!("{payload}{signature}")));
        let stored: Value = serde_json::from_str(&spec_json).unwrap_or(Value::Null);
        self.messages.push(AcceptedMessage {
            kind,
            hash: hash.clone(),
            timestamp: timestamp.value(),
            signature,
            spec: stored.clone(),
            spec_json,
        });
        if self.auto_confirm {
            self.confirm(&spec.name, stored, hash.clone());
        }
        Ok(hash)
    }

    /// As if the message's payment was mined: the app joins (or changes in)
    /// the global list.
    fn confirm(&mut self, name: &str, spec: Value, hash: String) {
        let height = self.height;
        self.apps
            .retain(|a| a.spec.get("name").and_then(Value::as_str) != Some(name));
        self.apps.push(StoredApp { spec, hash, height });
    }
}
