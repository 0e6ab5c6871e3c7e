//! An emulated FluxOS node: app registration and update, by FluxOS's rules.
//!
//! Routes: `POST /apps/appregister`, `POST /apps/appupdate`,
//! `GET /apps/appspecifications/{name}`, `POST /apps/verifyappregistrationspecifications`.
//! Every answer is HTTP 200 with FluxOS's `{status, data}` envelope. The
//! node's judgement lives in [`node`]; this file is the HTTP side, the
//! request log the tests assert on, and the knobs (clock skew, sync, peers).

mod node;
mod session;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde_json::Value;

use super::EmulatedApi;
use crate::backend::flux::clock::{Clock, SystemClock};
use crate::backend::flux::key::WifSecret;
use crate::backend::flux::message::MessageKind;
use crate::config::Config;

pub use node::{AcceptedMessage, StoredApp};

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

pub struct FluxEmulator {
    state: Mutex<node::NodeState>,
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

    /// Off: accepted messages stay unpaid and apps never join the global list.
    pub fn set_auto_confirm(&self, on: bool) {
        self.state.lock().auto_confirm = on;
    }

    pub fn set_height(&self, height: u64) {
        self.state.lock().height = height;
    }

    /// Every request that reached the API (faulted ones never do).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().clone()
    }

    pub fn accepted_messages(&self) -> Vec<AcceptedMessage> {
        self.state.lock().messages.clone()
    }

    pub fn apps(&self) -> Vec<StoredApp> {
        self.state.lock().apps.clone()
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
        self.state
            .lock()
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
    Json(api.state.lock().app_specification(&name))
}

async fn verify_registration(
    State(api): State<Arc<FluxEmulator>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    api.record(&method, &uri, &headers, &body);
    Json(api.state.lock().verify_registration(&body))
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
