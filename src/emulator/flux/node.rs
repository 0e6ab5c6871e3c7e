//! What an emulated FluxOS node knows and how it judges app messages, in
//! the order of `registerAppGlobalyApi` / `updateAppGlobalyApi` (flux.md §1).
//!
//! An accepted message is temporary until it is paid, like on the real
//! network; here a test pays it through [`NodeState::pay`] (no wallet), or
//! `auto_confirm` pays every message at once. Paid at least its price (by
//! FluxOS's rules for registrations and updates, `messageVerifier.js`), it
//! becomes permanent, the app joins the global list and runs (after
//! `start_delay_ms`); paid less, it is permanent and nothing else
//! (underpaid). The chain's height is set by the emulator (it advances
//! with time); an app drops out once the height passes its expiry.
//!
//! Other differences from a real node, on purpose: no peers to gossip to;
//! Docker registry lookups and enterprise secrets are not checked; only
//! v7/v8 specs are understood; the price is [`emulator_price`], not FluxOS's.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::session::verify_user_session;
use crate::backend::flux::js::{ensure_number, ensure_object, ensure_string, truthy, JsNumber};
use crate::backend::flux::lease;
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
    /// What `/apps/calculateprice` asked for this spec when it was accepted;
    /// what [`NodeState::pay`] pays unless told an amount.
    pub price: f64,
}

/// A payment as the emulator records it (there is no chain).
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatedPayment {
    pub txid: String,
    pub height: u64,
    pub value_sat: u64,
    pub paid_at_ms: u64,
    /// Whether the payment reached the price: the app was registered or
    /// updated. Below it, the message is permanent but underpaid.
    pub registered: bool,
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

    /// The chain moved to `height`: apps whose paid time is over drop out,
    /// as FluxOS's `expireGlobalApplications` does.
    pub fn advance(&mut self, height: u64) {
        self.height = height;
        self.apps
            .retain(|app| app_expire_height(app, height) >= height);
    }

    /// The price `/apps/calculateprice` gives: a registration's, or for an
    /// update FluxOS's `getAppFluxOnChainPrice` (less the unused share of
    /// the previous price) and `checkFreeAppUpdate` (free when nothing
    /// grows and the expiry grows by at most 8 blocks).
    fn quote(&self, spec: &Value) -> f64 {
        let price = emulator_price(spec);
        let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
        let Some(app) = self
            .apps
            .iter()
            .find(|a| a.spec.get("name").and_then(Value::as_str) == Some(name))
        else {
            return price;
        };
        if free_update(&app.spec, app.height, spec, self.height) {
            return 0.0;
        }
        let previous = emulator_price(&app.spec);
        let previous_expire = expire_of(&app.spec) as f64;
        let used = self.height.saturating_sub(app.height) as f64;
        let unused = (previous_expire - used) / previous_expire;
        let mut due = price;
        if unused > 0.0 {
            due -= unused * previous;
        }
        ((due * 100.0 - 1e-9).ceil() / 100.0).max(MIN_PRICE)
    }

    /// The least a payment at the current height must carry for the message
    /// to take effect (`messageVerifier.js`): a registration's price; for an
    /// update, 90 % of its price less the unused share of the previous one.
    fn required(&self, message: &AcceptedMessage) -> f64 {
        let price = emulator_price(&message.spec);
        if message.kind == MessageKind::Register {
            return price;
        }
        let name = message.spec.get("name").and_then(Value::as_str);
        let Some(app) = self
            .apps
            .iter()
            .find(|a| a.spec.get("name").and_then(Value::as_str) == name)
        else {
            return price;
        };
        let previous = emulator_price(&app.spec);
        let previous_expire = expire_of(&app.spec) as f64;
        let used = self.height.saturating_sub(app.height) as f64;
        let unused = (previous_expire - used) / previous_expire;
        let due = if unused > 0.0 {
            (price - unused * previous) * 0.9
        } else {
            price * 0.9
        };
        ((due * 100.0 - 1e-9).ceil() / 100.0).max(MIN_PRICE)
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
        let price = self.quote(&stored);
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
            price,
        });
        if self.auto_confirm {
            self.pay(&hash, now_ms, None)?;
        }
        Ok(hash)
    }

    /// As if a transaction paying `amount` FLUX (default: the price quoted
    /// when the message was accepted, at least `minPrice`), with its hash
    /// as OP_RETURN, was mined at the current height: the message becomes
    /// permanent; paid at least the price, the app joins (or changes in)
    /// the global list and runs after `start_delay_ms`.
    pub fn pay(
        &mut self,
        hash: &str,
        now_ms: u64,
        amount: Option<f64>,
    ) -> Result<EmulatedPayment, String> {
        let height = self.height;
        let running_from_ms = now_ms + self.start_delay_ms;
        let index = self
            .messages
            .iter()
            .position(|m| m.hash == hash)
            .ok_or_else(|| format!("no message {hash}"))?;
        let message = &self.messages[index];
        if message.paid.is_some() {
            return Err(format!("message {hash} is already paid"));
        }
        if now_ms >= message.expire_at_ms {
            return Err(format!("message {hash} expired unpaid"));
        }
        let amount = amount.unwrap_or(message.price.max(MIN_PRICE));
        let value_sat = (amount * 1e8).round() as u64;
        let required = self.required(message);
        let app_exists = |name: Option<&str>| {
            self.apps
                .iter()
                .any(|a| a.spec.get("name").and_then(Value::as_str) == name)
        };
        let name = message.spec.get("name").and_then(Value::as_str);
        // Below minPrice the explorer does not even record the payment.
        if amount < MIN_PRICE {
            return Err(format!(
                "a payment of {amount} FLUX is below minPrice {MIN_PRICE}: nodes ignore it"
            ));
        }
        let registered = value_sat >= (required * 1e8).round() as u64
            && (message.kind == MessageKind::Register || app_exists(name));
        let payment = EmulatedPayment {
            txid: hex::encode(Sha256::digest(format!("emulated payment {hash}"))),
            height,
            value_sat,
            paid_at_ms: now_ms,
            registered,
        };
        let message = &mut self.messages[index];
        message.paid = Some(payment.clone());
        if registered {
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
        }
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
        let flux = self.quote(&formatted);
        success(
            json!({"usd": (flux * 0.6 * 100.0).round() / 100.0, "flux": flux, "fluxDiscount": 0}),
        )
    }
}

/// A spec's `expire`, or FluxOS's default month after the PON fork.
fn expire_of(spec: &Value) -> u64 {
    spec.get("expire")
        .and_then(Value::as_u64)
        .filter(|e| *e > 0)
        .unwrap_or(88_000)
}

/// The height after which the network drops `app`.
pub fn app_expire_height(app: &StoredApp, chain_height: u64) -> u64 {
    lease::expire_height(
        app.height,
        app.spec.get("expire").and_then(Value::as_u64),
        chain_height,
    )
}

/// FluxOS's `checkFreeAppUpdate`, but for its rate limit (at most a few
/// free updates a day): same instances, nodes and static IP, no component
/// grows, and the expiry moves by at most 8 blocks.
fn free_update(old: &Value, old_height: u64, new: &Value, height: u64) -> bool {
    let old_end = lease::expire_height(old_height, Some(expire_of(old)), height);
    let new_end = height + expire_of(new);
    let same = |key: &str| old.get(key) == new.get(key);
    let nodes = |v: &Value| v.get("nodes").and_then(Value::as_array).map_or(0, Vec::len);
    if new_end as i64 - old_end as i64 > 8
        || !same("instances")
        || nodes(old) != nodes(new)
        || old
            .get("staticip")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            != new
                .get("staticip")
                .and_then(Value::as_bool)
                .unwrap_or(false)
    {
        return false;
    }
    let components = |v: &Value| {
        v.get("compose")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_c, new_c) = (components(old), components(new));
    if old_c.len() != new_c.len() {
        return false;
    }
    let num = |c: &Value, k: &str| c.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    new_c.iter().all(|c| {
        old_c
            .iter()
            .find(|o| o.get("name") == c.get("name"))
            .is_some_and(|o| ["cpu", "ram", "hdd"].iter().all(|k| num(c, k) <= num(o, k)))
    })
}
