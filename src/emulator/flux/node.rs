//! What an emulated FluxOS node knows and how it judges app messages, in
//! the order of `registerAppGlobalyApi` / `updateAppGlobalyApi` (flux.md §1).
//!
//! An accepted message is temporary until it is paid, like on the real
//! network; here a test pays it through [`NodeState::pay`] (no chain, no
//! wallet), or `auto_confirm` pays every message at once. Paid, it becomes
//! permanent, the app joins the global list and runs (after `start_delay_ms`).
//!
//! Other differences from a real node, on purpose: no peers to gossip to;
//! Docker registry lookups and enterprise secrets are not checked; only
//! v7/v8 specs are understood; the price is [`emulator_price`], not FluxOS's.

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

/// FluxOS `tempMsgTtlS: 3600`.
pub const TEMPORARY_MESSAGE_TTL_MS: u64 = 3_600_000;

/// The deployment address FluxOS gives from height 1 670 000 on.
pub const DEPLOYMENT_ADDRESS: &str = "t3NryfAQLGeFs9jEoeqsxmBN2QLRaRKFLUX";

/// `minPrice` of the newest price fork in FluxOS's config.
const MIN_PRICE: f64 = 0.01;

/// The EMULATOR-ONLY price in FLUX of a formatted spec; FluxOS's real price
/// depends on USD rates and the chain. Summed over components:
/// cpu cores × 0.3 + ram MB × 0.0001 + hdd GB × 0.004, then × instances
/// × expire / 88 000 (one month), rounded up to 0.01, at least 0.01.
pub fn emulator_price(spec: &Value) -> f64 {
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let per_instance: f64 = spec
        .get("compose")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .map(|c| num(c, "cpu") * 0.3 + num(c, "ram") * 0.0001 + num(c, "hdd") * 0.004)
                .sum()
        })
        .unwrap_or(0.0);
    let expire = spec
        .get("expire")
        .and_then(Value::as_f64)
        .unwrap_or(88_000.0);
    let raw = per_instance * num(spec, "instances").max(1.0) * expire / 88_000.0;
    ((raw * 100.0 - 1e-9).ceil() / 100.0).max(MIN_PRICE)
}

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
    /// When the node received it, by the node's clock (ms).
    pub received_at_ms: u64,
    /// Unpaid, the node forgets it at this time (ms).
    pub expire_at_ms: u64,
    /// The emulated payment, once made.
    pub paid: Option<EmulatedPayment>,
}

/// A payment as the emulator records it (there is no chain).
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedPayment {
    pub txid: String,
    pub height: u64,
    pub value_sat: u64,
    pub paid_at_ms: u64,
}

/// An app in the node's global list.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredApp {
    pub spec: Value,
    pub hash: String,
    pub height: u64,
    /// Nodes report it running from this time on (ms).
    pub running_from_ms: u64,
}

#[derive(Debug, Clone)]
pub struct NodeState {
    pub height: u64,
    pub synced: bool,
    pub outgoing_peers: u32,
    pub incoming_peers: u32,
    /// Accepted messages are paid at once (no payment step).
    pub auto_confirm: bool,
    /// How long an unpaid message lives (FluxOS: 1 hour).
    pub temporary_ttl_ms: u64,
    /// How long after its payment an app starts running.
    pub start_delay_ms: u64,
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
            auto_confirm: false,
            temporary_ttl_ms: TEMPORARY_MESSAGE_TTL_MS,
            start_delay_ms: 0,
            apps: Vec::new(),
            messages: Vec::new(),
        }
    }
}

/// `messageHelper.createErrorMessage(message, 'Error')`.
pub fn error(message: impl Into<String>) -> Value {
    json!({"status": "error", "data": {"name": "Error", "message": message.into()}})
}

/// A MongoDB date as FluxOS's JSON shows it.
fn iso(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
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
            spec: stored,
            spec_json,
            received_at_ms: now_ms,
            expire_at_ms: now_ms + self.temporary_ttl_ms,
            paid: None,
        });
        if self.auto_confirm {
            self.pay(&hash, now_ms)?;
        }
        Ok(hash)
    }

    /// As if a transaction paying the message's price, with its hash as
    /// OP_RETURN, was mined: the message becomes permanent and the app
    /// joins (or changes in) the global list, running after `start_delay_ms`.
    pub fn pay(&mut self, hash: &str, now_ms: u64) -> Result<EmulatedPayment, String> {
        let height = self.height;
        let running_from_ms = now_ms + self.start_delay_ms;
        let message = self
            .messages
            .iter_mut()
            .find(|m| m.hash == hash)
            .ok_or_else(|| format!("no message {hash}"))?;
        if message.paid.is_some() {
            return Err(format!("message {hash} is already paid"));
        }
        if now_ms >= message.expire_at_ms {
            return Err(format!("message {hash} expired unpaid"));
        }
        let price = emulator_price(&message.spec);
        let payment = EmulatedPayment {
            txid: hex::encode(Sha256::digest(format!("emulated payment {hash}"))),
            height,
            value_sat: (price * 1e8).round() as u64,
            paid_at_ms: now_ms,
        };
        message.paid = Some(payment.clone());
        let spec = message.spec.clone();
        let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
        self.apps
            .retain(|a| a.spec.get("name").and_then(Value::as_str) != Some(name));
        self.apps.push(StoredApp {
            spec,
            hash: hash.to_string(),
            height,
            running_from_ms,
        });
        Ok(payment)
    }

    /// `GET /apps/temporarymessages/<hash>`: unexpired messages, paid or not.
    pub fn temporary_messages(&self, hash: Option<&str>, now_ms: u64) -> Value {
        let list: Vec<Value> = self
            .messages
            .iter()
            .filter(|m| hash.is_none_or(|h| m.hash == h) && now_ms < m.expire_at_ms)
            .map(|m| {
                json!({
                    "appSpecifications": m.spec,
                    "type": m.kind.type_name(),
                    "version": 1,
                    "hash": m.hash,
                    "timestamp": JsNumber(m.timestamp).to_string().parse::<Value>().unwrap_or(Value::Null),
                    "signature": m.signature,
                    "receivedAt": iso(m.received_at_ms),
                    "expireAt": iso(m.expire_at_ms),
                    "arcaneSender": false,
                })
            })
            .collect();
        success(json!(list))
    }

    /// `GET /apps/permanentmessages?hash=`: paid messages.
    pub fn permanent_messages(&self, hash: Option<&str>) -> Value {
        let list: Vec<Value> = self
            .messages
            .iter()
            .filter(|m| hash.is_none_or(|h| m.hash == h))
            .filter_map(|m| {
                let paid = m.paid.as_ref()?;
                Some(json!({
                    "type": m.kind.type_name(),
                    "version": 1,
                    "appSpecifications": m.spec,
                    "hash": m.hash,
                    "timestamp": JsNumber(m.timestamp).to_string().parse::<Value>().unwrap_or(Value::Null),
                    "signature": m.signature,
                    "txid": paid.txid,
                    "height": paid.height,
                    "valueSat": paid.value_sat,
                }))
            })
            .collect();
        success(json!(list))
    }

    /// `GET /apps/location/<name>`: one entry per instance once the app runs.
    pub fn location(&self, name: Option<&str>, now_ms: u64) -> Value {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return error("No Flux App name specified");
        };
        let list: Vec<Value> = self
            .find_app(name)
            .filter(|app| now_ms >= app.running_from_ms)
            .map(|app| {
                let instances = app
                    .spec
                    .get("instances")
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
                (1..=instances.min(3))
                    .map(|i| {
                        json!({
                            "name": app.spec.get("name"),
                            "hash": app.hash,
                            "ip": format!("10.0.0.{i}:16127"),
                            "broadcastedAt": iso(app.running_from_ms),
                            "expireAt": iso(app.running_from_ms + 125 * 60 * 1000),
                            "runningSince": iso(app.running_from_ms),
                            "osUptime": 1000,
                            "staticIp": false,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        success(json!(list))
    }

    /// `GET /apps/deploymentinformation`, trimmed to what clients use.
    pub fn deployment_information(&self) -> Value {
        success(json!({
            "price": [
                {"height": -1, "cpu": 3, "ram": 1, "hdd": 0.5, "minPrice": 1, "port": 2, "scope": 6, "staticip": 3},
                {"height": 1_597_156, "cpu": 0.03, "ram": 0.01, "hdd": 0.004, "minPrice": MIN_PRICE, "port": 0.4, "scope": 0.8, "staticip": 0.4},
            ],
            "appSpecsEnforcementHeights": {"1": 0, "2": 0, "3": 983_000, "4": 1_004_000, "5": 1_142_000, "6": 1_300_000, "7": 1_420_000, "8": 1_932_380},
            "address": DEPLOYMENT_ADDRESS,
            "portMin": 1,
            "portMax": 65535,
            "maxImageSize": 5_000_000_000u64,
            "minimumInstances": 3,
            "maximumInstances": 100,
            "blocksLasting": 22000,
            "minBlocksAllowance": 5000,
            "maxBlocksAllowance": 1_056_000,
            "blocksAllowanceInterval": 1000,
        }))
    }

    /// `POST /apps/calculateprice`: the body is the bare spec, read raw.
    pub fn calculate_price(&self, body: &str) -> Value {
        if !self.synced {
            return error("Daemon not yet synced.");
        }
        let raw = ensure_object(Some(&Value::String(body.to_string())));
        let spec = match AppSpec::format(&raw) {
            Ok(spec) => spec,
            Err(e) => return error(e.0),
        };
        let formatted: Value = serde_json::from_str(&spec.canonical_json()).unwrap_or(Value::Null);
        let flux = emulator_price(&formatted);
        success(
            json!({"usd": (flux * 0.6 * 100.0).round() / 100.0, "flux": flux, "fluxDiscount": 0}),
        )
    }
}
