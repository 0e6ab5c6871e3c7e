//! The ByteNite emulator: access tokens for API keys, and app pushes read,
//! checked and stored the way the fact sheet's proposal describes
//! (see `docs/bytenite.md`).
//!
//! Routes: `POST /v1/auth/access_token`, `POST /v1/dev/apps`,
//! `GET /v1/dev/apps`, `GET /v1/dev/apps/{tag}`, `POST /v1/dev/apps/{tag}/activate`,
//! `POST /v1/dev/apps/{tag}/deactivate`, `GET /v1/dev/apps/{tag}/status`, and
//! the emulator's own `GET /_emulator/apps/{id}/tar`. The only credential it
//! knows at start is [`DEMO_API_KEY`]; tests can add keys, revoke tokens and
//! shorten their life, and make activation fail.

mod archive;
mod records;
mod routes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use parking_lot::Mutex;

use super::EmulatedApi;
use crate::config::Config;
pub use records::AppRecord;

/// The API key the emulator accepts out of the box. Emulator-only: it
/// means nothing to the real ByteNite.
pub const DEMO_API_KEY: &str = "demo-api-key";
/// The user [`DEMO_API_KEY`] belongs to.
pub const DEMO_USER: &str = "demo";
const DEMO_OWNER: &str = "00000000-0000-4000-8000-00000000de70";
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUID, shown as `owner`.
    pub id: String,
    /// Shown as `userName`.
    pub name: String,
}

/// Counters for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub token_requests: u64,
    pub tokens_issued: u64,
    /// Every `POST /v1/dev/apps`, refused ones included.
    pub upload_requests: u64,
    pub uploads_accepted: u64,
    /// Length of the last archive decoded from a push, accepted or not.
    pub last_tar_len: Option<u64>,
    /// Every `POST …/activate`, refused ones included.
    pub activate_requests: u64,
    pub deactivate_requests: u64,
    /// Every `GET …/status`.
    pub status_requests: u64,
}

/// How the emulator answers activations, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationPlan {
    /// Refuse every activation: 400 `FailedPrecondition` with this message.
    pub refuse: Option<String>,
    /// Answer this many activations 503 `Unavailable`.
    pub fail_next: u32,
    /// Answer `GET …/status` 404, as a server without the route would.
    pub no_status_route: bool,
}

struct Session {
    user: User,
    expires: Instant,
}

struct State {
    api_keys: HashMap<String, User>,
    sessions: HashMap<String, Session>,
    token_lifetime: Duration,
    apps: Vec<AppRecord>,
    stats: Stats,
    hash_of_text: bool,
    activation: ActivationPlan,
}

pub struct ByteniteEmulator {
    state: Mutex<State>,
}

impl Default for ByteniteEmulator {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteniteEmulator {
    pub fn new() -> Self {
        let demo = User {
            id: DEMO_OWNER.to_string(),
            name: DEMO_USER.to_string(),
        };
        ByteniteEmulator {
            state: Mutex::new(State {
                api_keys: HashMap::from([(DEMO_API_KEY.to_string(), demo)]),
                sessions: HashMap::new(),
                token_lifetime: DEFAULT_TOKEN_LIFETIME,
                apps: Vec::new(),
                stats: Stats::default(),
                hash_of_text: false,
                activation: ActivationPlan::default(),
            }),
        }
    }

    /// Every stored app record, in creation order.
    pub fn apps(&self) -> Vec<AppRecord> {
        self.state.lock().apps.clone()
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().stats.clone()
    }

    /// The archive stored for app `id` (its latest revision).
    pub fn tar_of(&self, id: &str) -> Option<Arc<Vec<u8>>> {
        self.state
            .lock()
            .apps
            .iter()
            .find(|a| a.id == id)
            .and_then(|a| a.tar.bytes().ok())
            .map(Arc::new)
    }

    /// Registers another API key, for a user of that name.
    pub fn add_api_key(&self, key: &str, user_name: &str) -> User {
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            name: user_name.to_string(),
        };
        self.state
            .lock()
            .api_keys
            .insert(key.to_string(), user.clone());
        user
    }

    /// Issues a token for `api_key` without HTTP (for static-token tests).
    pub fn issue_token(&self, api_key: &str) -> Option<String> {
        self.state.lock().issue(api_key).map(|(token, _)| token)
    }

    /// Invalidates every token issued so far, as an expiry or a sign-out would.
    pub fn revoke_tokens(&self) {
        self.state.lock().sessions.clear();
    }

    /// Hash the base64 text of `data` instead of the decoded tar: the other
    /// reading of "checksum of the uploaded tar", to test clients against it.
    pub fn hash_base64_text(&self, on: bool) {
        self.state.lock().hash_of_text = on;
    }

    /// How activations are answered from now on.
    pub fn set_activation(&self, plan: ActivationPlan) {
        self.state.lock().activation = plan;
    }

    /// Lifetime of tokens issued from now on (`expiresIn`).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state.lock().token_lifetime = lifetime;
    }
}

impl State {
    fn issue(&mut self, api_key: &str) -> Option<(String, Duration)> {
        let user = self.api_keys.get(api_key)?.clone();
        let token = format!("bnt-{}", uuid::Uuid::new_v4().simple());
        let lifetime = self.token_lifetime;
        self.sessions.insert(
            token.clone(),
            Session {
                user,
                expires: Instant::now() + lifetime,
            },
        );
        self.stats.tokens_issued += 1;
        Some((token, lifetime))
    }

    fn user_for(&self, token: &str) -> Option<User> {
        self.sessions
            .get(token)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.user.clone())
    }
}

impl EmulatedApi for ByteniteEmulator {
    fn router(self: Arc<Self>) -> Router {
        routes::router(self)
    }

    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.bytenite.url = Some(base_url.to_string());
        config.bytenite.api_key = Some(DEMO_API_KEY.to_string());
        config.bytenite.token = None;
    }
}
