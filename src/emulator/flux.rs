//! An emulated FluxOS node: app registration and update, by FluxOS's rules.
//!
//! Routes: `POST /apps/appregister`, `POST /apps/appupdate`,
//! `GET /apps/appspecifications/{name}`, `POST /apps/verifyappregistrationspecifications`,
//! and after a message is accepted: `GET /apps/deploymentinformation`,
//! `POST /apps/calculateprice`, `GET /apps/temporarymessages/{hash}`,
//! `GET /apps/permanentmessages?hash=`, `GET /apps/location/{name}`; and
//! `GET /daemon/getblockcount`: the chain's height, which advances one
//! block every 30 s as on the network, or as fast as a test sets
//! ([`FluxEmulator::set_block_time_ms`]); apps drop out past their expiry.
//! Every answer is HTTP 200 with FluxOS's `{status, data}` envelope. The
//! node's judgement lives in [`node`]; this file is the HTTP side, the
//! request log the tests assert on, and the knobs (clock skew, sync, peers,
//! message lifetime, start delay).
//!
//! Test hook, emulator only: `POST /_emulator/flux/pay/{hash}` marks a
//! message paid, as if its fee was mined (the emulator listens on loopback
//! only, like `/_emulator/faults`). `curl -X POST URL/_emulator/flux/pay/<hash>`;
//! `?amount=<FLUX>` pays that much instead of the price (less: underpaid).

mod node;
mod session;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::Value;

use super::EmulatedApi;
use crate::backend::flux::clock::{Clock, SystemClock};
use crate::backend::flux::key::WifSecret;
use crate::backend::flux::message::MessageKind;
use crate::backend::flux::validate;
use crate::config::Config;

pub use node::{
    emulator_price, AcceptedMessage, EmulatedPayment, StoredApp, DEPLOYMENT_ADDRESS,
    TEMPORARY_MESSAGE_TTL_MS,
};

/// A PUBLIC, DEMO-ONLY ZelID key (WIF) that `configure_client` hands to the
/// client so `pushfs demo` works out of the box. Anyone can read it here:
/// NEVER use it, or anything derived from it, on the real Flux network.
/// Its ZelID is `DEMO_ONLY_ZELID`.
pub const DEMO_ONLY_WIF: &str = "KxYt5mLtncr4y8WSwoW26TGYND1dP58YLmJyjz8YGsSZGFDC8Fz9";

/// The ZelID (address) of [`DEMO_ONLY_WIF`].
pub const DEMO_ONLY_ZELID: &str = "12GqMDjcnratJtaDvGmrnk541eBLsgN5gq";

/// One request as the emulator received it (after fault injection).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// The `zelidauth` header, kept so tests can check what a client sends.
    pub zelidauth: Option<String>,
    pub body: String,
}

/// Where the emulated chain stands: `base_height` at `base_ms`, one block
/// every `block_ms` since.
#[derive(Debug, Clone, Copy)]
struct Chain {
    base_height: u64,
    base_ms: u64,
    block_ms: u64,
}

/// FluxOS's block time since the PON fork.
pub const BLOCK_TIME_MS: u64 = 30_000;

pub struct FluxEmulator {
    state: Mutex<node::NodeState>,
    chain: Mutex<Option<Chain>>,
    requests: Mutex<Vec<RecordedRequest>>,
    clock: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl Default for FluxEmulator {
    fn default() -> Self {
        Self::new()
    }
}

impl FluxEmulator {
    pub fn new() -> Self {
        FluxEmulator {
            state: Mutex::new(node::NodeState::default()),
            chain: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            clock: Arc::new(SystemClock),
            offset_ms: AtomicI64::new(0),
        }
    }

    /// The node's time: its clock plus the skew set by [`Self::set_clock_offset_ms`].
    pub fn now_ms(&self) -> u64 {
        let now = self.clock.now_ms() as i64 + self.offset_ms.load(Ordering::SeqCst);
        now.max(0) as u64
    }

    /// Skews the node's clock, to test timestamp freshness.
    pub fn set_clock_offset_ms(&self, offset: i64) {
        self.offset_ms.store(offset, Ordering::SeqCst);
    }

    /// A node that is not synced answers `Daemon not yet synced.`.
    pub fn set_synced(&self, synced: bool) {
        self.state.lock().synced = synced;
    }

    pub fn set_peers(&self, outgoing: u32, incoming: u32) {
        let mut state = self.state.lock();
        state.outgoing_peers = outgoing;
        state.incoming_peers = incoming;
    }

    /// On: accepted messages are paid at once. Off (the default, as on the
    /// real network): they stay temporary until [`Self::pay`].
    pub fn set_auto_confirm(&self, on: bool) {
        self.state.lock().auto_confirm = on;
    }

    /// How long an unpaid message lives (default 1 hour, as FluxOS); short in tests.
    pub fn set_temporary_ttl_ms(&self, ttl: u64) {
        self.state.lock().temporary_ttl_ms = ttl;
    }

    /// How long after its payment an app starts running (default 0).
    pub fn set_start_delay_ms(&self, delay: u64) {
        self.state.lock().start_delay_ms = delay;
    }

    /// Marks message `hash` paid, as if its fee was mined with the hash as
    /// OP_RETURN. Errors if unknown, already paid or expired.
    pub fn pay(&self, hash: &str) -> Result<EmulatedPayment, String> {
        self.pay_amount(hash, None)
    }

    /// [`Self::pay`] with `amount` FLUX (default: the price); below the
    /// price the message is permanent but underpaid.
    pub fn pay_amount(&self, hash: &str, amount: Option<f64>) -> Result<EmulatedPayment, String> {
        let now = self.now_ms();
        self.node().pay(hash, now, amount)
    }

    /// Puts the chain at `height` now; it goes on advancing from there.
    pub fn set_height(&self, height: u64) {
        let now = self.now_ms();
        let mut chain = self.chain.lock();
        let block_ms = chain.map_or(BLOCK_TIME_MS, |c| c.block_ms);
        *chain = Some(Chain {
            base_height: height,
            base_ms: now,
            block_ms,
        });
        drop(chain);
        drop(self.node());
    }

    /// One block every `ms` from now on (default 30 s, as FluxOS since the
    /// PON fork); short in tests, to reach an expiry in seconds.
    pub fn set_block_time_ms(&self, ms: u64) {
        let height = self.height();
        let now = self.now_ms();
        *self.chain.lock() = Some(Chain {
            base_height: height,
            base_ms: now,
            block_ms: ms.max(1),
        });
    }

    /// The chain's height now.
    pub fn height(&self) -> u64 {
        let now = self.now_ms();
        let mut chain = self.chain.lock();
        let c = chain.get_or_insert(Chain {
            base_height: validate::ASSUMED_CHAIN_HEIGHT,
            base_ms: now,
            block_ms: BLOCK_TIME_MS,
        });
        c.base_height + now.saturating_sub(c.base_ms) / c.block_ms
    }

    /// The node's state, with the chain moved to now (expired apps dropped).
    fn node(&self) -> parking_lot::MutexGuard<'_, node::NodeState> {
        let height = self.height();
        let mut state = self.state.lock();
        state.advance(height);
        state
    }

    /// Every request that reached the API (faulted ones never do).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().clone()
    }

    pub fn accepted_messages(&self) -> Vec<AcceptedMessage> {
        self.state.lock().messages.clone()
    }

    pub fn apps(&self) -> Vec<StoredApp> {
        self.node().apps.clone()
    }

    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &str) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        self.requests.lock().push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            content_type: header("content-type"),
            zelidauth: header("zelidauth"),
            body: body.to_string(),
        });
    }

    fn app_message(&self, kind: MessageKind, headers: &HeaderMap, body: &str) -> Value {
        let zelidauth = headers.get("zelidauth").and_then(|v| v.to_str().ok());
        let json_body = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
        let now = self.now_ms();
        self.node()
            .app_message(kind, zelidauth, json_body, body, now)
    }
}

async fn register(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    api.record(&method, &uri, &headers, &body);
    Json(api.app_message(MessageKind::Register, &headers, &body))
}

async fn update(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    api.record(&method, &uri, &headers, &body);
    Json(api.app_message(MessageKind::Update, &headers, &body))
}

async fn app_specification(
    State(api): State<Arc<FluxEmulator>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(&method, &uri, &headers, "");
    Json(api.node().app_specification(&name))
}

async fn verify_registration(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    api.record(&method, &uri, &headers, &body);
    Json(api.node().verify_registration(&body))
}

async fn deployment_information(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(&method, &uri, &headers, "");
    Json(api.node().deployment_information())
}

async fn calculate_price(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    api.record(&method, &uri, &headers, &body);
    // Read raw like appregister: express.json() would have eaten a JSON body.
    let json_body = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("application/json"));
    let body = if json_body { "" } else { body.as_str() };
    Json(api.node().calculate_price(body))
}

/// A route's `{param}`, or the same name in the query string (FluxOS takes both).
fn param(path: Option<Path<String>>, query: &HashMap<String, String>, key: &str) -> Option<String> {
    path.map(|Path(p)| p).or_else(|| query.get(key).cloned())
}

async fn temporary_messages(
    State(api): State<Arc<FluxEmulator>>,
    path: Option<Path<String>>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(&method, &uri, &headers, "");
    let hash = param(path, &query, "hash");
    let now = api.now_ms();
    Json(api.node().temporary_messages(hash.as_deref(), now))
}

async fn permanent_messages(
    State(api): State<Arc<FluxEmulator>>,
    path: Option<Path<String>>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(&method, &uri, &headers, "");
    let hash = param(path, &query, "hash");
    Json(api.node().permanent_messages(hash.as_deref()))
}

async fn location(
    State(api): State<Arc<FluxEmulator>>,
    path: Option<Path<String>>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(&method, &uri, &headers, "");
    let name = param(path, &query, "appname");
    let now = api.now_ms();
    Json(api.node().location(name.as_deref(), now))
}

/// `GET /daemon/getblockcount`: the chain's height.
async fn block_count(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(&method, &uri, &headers, "");
    Json(node::success(serde_json::json!(api.height())))
}

/// `POST /_emulator/flux/pay/{hash}[?amount=<FLUX>]`: the test hook; not a FluxOS route.
async fn pay(
    State(api): State<Arc<FluxEmulator>>,
    Path(hash): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let amount = match query.get("amount").map(|a| a.parse::<f64>()) {
        None => None,
        Some(Ok(a)) if a.is_finite() && a > 0.0 => Some(a),
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(node::error("amount must be a positive number of FLUX")),
            )
                .into_response()
        }
    };
    match api.pay_amount(&hash, amount) {
        Ok(payment) => Json(serde_json::json!({
            "status": "success",
            "data": {"hash": hash, "txid": payment.txid, "height": payment.height, "valueSat": payment.value_sat, "registered": payment.registered},
        }))
        .into_response(),
        Err(message) => (
            StatusCode::NOT_FOUND,
            Json(node::error(message)),
        )
            .into_response(),
    }
}

impl EmulatedApi for FluxEmulator {
    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/apps/appregister", post(register))
            .route("/apps/appupdate", post(update))
            .route("/apps/appspecifications/{name}", get(app_specification))
            .route(
                "/apps/verifyappregistrationspecifications",
                post(verify_registration),
            )
            .route("/apps/deploymentinformation", get(deployment_information))
            .route("/apps/calculateprice", post(calculate_price))
            .route("/apps/temporarymessages", get(temporary_messages))
            .route("/apps/temporarymessages/{hash}", get(temporary_messages))
            .route("/apps/permanentmessages", get(permanent_messages))
            .route("/apps/permanentmessages/{hash}", get(permanent_messages))
            .route("/apps/location", get(location))
            .route("/apps/location/{name}", get(location))
            .route("/daemon/getblockcount", get(block_count))
            .route("/_emulator/flux/pay/{hash}", post(pay))
            .with_state(self)
    }

    /// Points the client here with the DEMO-ONLY key, held in memory (no
    /// key file is written), and the key's own ZelID as default owner.
    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.flux.url = Some(base_url.to_string());
        config.flux.private_key = Some(WifSecret::new(DEMO_ONLY_WIF));
        config.flux.zelid = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::flux::signer::FluxSigner;

    #[test]
    fn demo_key_matches_its_documented_zelid() {
        let signer = FluxSigner::from_wif(DEMO_ONLY_WIF).unwrap();
        assert_eq!(signer.address(), DEMO_ONLY_ZELID);
    }
}
