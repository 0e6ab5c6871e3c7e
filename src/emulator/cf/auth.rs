//! Tokens for the emulated Cloud Controller, and the UAA token endpoint
//! that refreshes them (`POST /oauth/token`, client `cf`, empty secret).
//!
//! Access tokens are unsigned JWTs the emulator minted itself: it knows
//! each one, reads `exp` and `scope` from it, and refuses any other.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::Engine;
use serde_json::json;

use super::errors::CfApiError;
use super::CfEmulator;

/// The demo access token (expires in 2100, scopes read and write). Demo
/// only: it is published here and accepted by nothing but the emulator.
pub const DEMO_TOKEN: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJqdGkiOiJwdXNoZnMtZGVtbyIsInVzZXJfbmFtZSI6ImRlbW8iLCJjbGllbnRfaWQiOiJjZiIsInNjb3BlIjpbImNsb3VkX2NvbnRyb2xsZXIucmVhZCIsImNsb3VkX2NvbnRyb2xsZXIud3JpdGUiXSwiZXhwIjo0MTAyNDQ0ODAwfQ.ZGVtbw";

/// The demo refresh token, for a cf CLI `config.json` pointed at the emulator.
pub const DEMO_REFRESH_TOKEN: &str = "pushfs-demo-refresh-token";

/// What a developer's token may do.
pub const DEVELOPER_SCOPES: &[&str] = &["cloud_controller.read", "cloud_controller.write"];

/// The tokens the emulator has handed out.
pub(super) struct TokenBook {
    access: HashSet<String>,
    refresh: HashSet<String>,
    /// Successful refreshes, for tests.
    pub refreshes: u32,
    /// Access tokens minted by refreshes, for tests that look for leaks.
    pub issued: Vec<String>,
}

impl Default for TokenBook {
    fn default() -> Self {
        TokenBook {
            access: HashSet::from([DEMO_TOKEN.to_string()]),
            refresh: HashSet::from([DEMO_REFRESH_TOKEN.to_string()]),
            refreshes: 0,
            issued: Vec::new(),
        }
    }
}

impl TokenBook {
    /// A new access token the emulator will accept until `expires`.
    pub fn mint(&mut self, scopes: &[&str], expires: SystemTime) -> String {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let exp = expires
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let token = format!(
            "{}.{}.{}",
            enc(json!({"alg": "none", "typ": "JWT"})),
            enc(json!({
                "jti": uuid::Uuid::new_v4().to_string(),
                "user_name": "demo",
                "client_id": "cf",
                "scope": scopes,
                "exp": exp,
            })),
            enc(json!("emulator"))
        );
        self.access.insert(token.clone());
        token
    }

    pub fn add_refresh_token(&mut self, token: &str) {
        self.refresh.insert(token.to_string());
    }
}

/// An authenticated caller.
pub(super) struct Caller {
    scopes: Vec<String>,
}

impl Caller {
    fn has(&self, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| s == scope || s == "cloud_controller.admin")
    }

    pub fn can_read(&self) -> bool {
        self.has("cloud_controller.read")
    }

    pub fn can_write(&self) -> bool {
        self.has("cloud_controller.write")
    }
}

/// Checks `Authorization: bearer <token>`. `grace` extends an expired
/// token's life, as the bits upload's relaxed decoder does.
pub(super) fn authenticate(
    book: &TokenBook,
    headers: &HeaderMap,
    grace: Duration,
) -> Result<Caller, CfApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(CfApiError::not_authenticated());
    };
    let value = value
        .to_str()
        .map_err(|_| CfApiError::invalid_auth_token())?;
    let token = match value.split_once(' ') {
        Some((kind, token)) if kind.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(CfApiError::invalid_auth_token()),
    };
    if !book.access.contains(token) {
        return Err(CfApiError::invalid_auth_token());
    }
    let claims = claims(token).ok_or_else(CfApiError::invalid_auth_token)?;
    let exp = claims
        .get("exp")
        .and_then(|e| e.as_u64())
        .ok_or_else(CfApiError::invalid_auth_token)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if exp + grace.as_secs() <= now.as_secs() {
        return Err(CfApiError::invalid_auth_token());
    }
    let scopes = claims
        .get("scope")
        .and_then(|s| s.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Caller { scopes })
}

fn claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn uaa_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

/// `POST /oauth/token`: UAA's refresh grant for client `cf` (empty secret,
/// HTTP Basic), the call the cf CLI makes when its token runs out.
pub(super) async fn oauth_token(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    if basic.as_deref() != Some(b"cf:".as_slice()) {
        return uaa_error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return uaa_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only the refresh_token grant is emulated",
        );
    }
    let refresh_token = form.get("refresh_token").cloned().unwrap_or_default();
    let mut state = emu.state.lock();
    if !state.tokens.refresh.contains(&refresh_token) {
        return uaa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid refresh token",
        );
    }
    let lifetime = state.settings.token_lifetime;
    let access = state
        .tokens
        .mint(DEVELOPER_SCOPES, SystemTime::now() + lifetime);
    state.tokens.refreshes += 1;
    state.tokens.issued.push(access.clone());
    drop(state);
    Json(json!({
        "access_token": access,
        "token_type": "bearer",
        "refresh_token": refresh_token,
        "expires_in": lifetime.as_secs(),
        "scope": DEVELOPER_SCOPES.join(" "),
        "jti": uuid::Uuid::new_v4().to_string(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn demo_token_is_accepted_and_others_are_not() {
        let book = TokenBook::default();
        let caller = authenticate(
            &book,
            &headers(&format!("bearer {DEMO_TOKEN}")),
            Duration::ZERO,
        )
        .unwrap();
        assert!(caller.can_read() && caller.can_write());
        let err = authenticate(&book, &HeaderMap::new(), Duration::ZERO)
            .err()
            .unwrap();
        assert_eq!(err.error_code, "CF-NotAuthenticated");
        let err = authenticate(&book, &headers("bearer garbage"), Duration::ZERO)
            .err()
            .unwrap();
        assert_eq!(err.error_code, "CF-InvalidAuthToken");
    }

    #[test]
    fn expired_tokens_pass_only_within_the_grace_period() {
        let mut book = TokenBook::default();
        let token = book.mint(
            DEVELOPER_SCOPES,
            SystemTime::now() - Duration::from_secs(100),
        );
        let h = headers(&format!("bearer {token}"));
        assert!(authenticate(&book, &h, Duration::ZERO).is_err());
        assert!(authenticate(&book, &h, Duration::from_secs(1200)).is_ok());
    }
}
