//! One deploy's conversation with a Cloud Controller: authenticated
//! requests, a token refresh before expiry or after a 401, and the v2 or v3
//! error body turned into a [`DeployError`].

use std::time::SystemTime;

use parking_lot::Mutex;
use reqwest::header::AUTHORIZATION;
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;

use super::auth::{expires_soon, Refresher};
use crate::backend::http::send;
use crate::backend::{DeployError, Report};

/// Tokens refreshed in memory, kept across deploys so a cf CLI login is
/// refreshed once per expiry rather than once per deploy. Keyed by the
/// token they replace: a new `cf login` (a different token in the file)
/// wins over the cache.
#[derive(Default)]
pub struct RefreshedTokens {
    latest: Mutex<Option<(String, String)>>,
}

impl RefreshedTokens {
    /// The newest known `Authorization` value descending from `original`.
    pub fn current(&self, original: &str) -> String {
        match &*self.latest.lock() {
            Some((from, fresh)) if from == original => fresh.clone(),
            _ => original.to_string(),
        }
    }

    pub fn remember(&self, original: &str, fresh: &str) {
        *self.latest.lock() = Some((original.to_string(), fresh.to_string()));
    }
}

/// The v2 error body: `{"description", "error_code", "code"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CfErrorBody {
    pub description: String,
    pub error_code: String,
}

impl CfErrorBody {
    /// `"<description> (<error_code>)"`, the form errors are shown in.
    pub fn message(&self) -> String {
        format!("{} ({})", self.description, self.error_code)
    }
}

/// The v3 error body: `{"errors":[{"detail","title","code"}]}`.
#[derive(Debug, Clone, Deserialize)]
struct V3ErrorBody {
    errors: Vec<V3Error>,
}

#[derive(Debug, Clone, Deserialize)]
struct V3Error {
    detail: String,
    title: String,
}

impl V3ErrorBody {
    /// `"<detail> (<title>)"` for each error, joined with `"; "`.
    fn message(&self) -> Option<String> {
        let parts: Vec<String> = self
            .errors
            .iter()
            .map(|e| format!("{} ({})", e.detail, e.title))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// What nginx answers on a Cloud Foundry whose v2 API is turned off.
pub const V2_DISABLED_BODY: &str = "V2 endpoints disabled";

/// How [`error_for`] words nginx's `V2 endpoints disabled`.
const V2_DISABLED_MESSAGE: &str = "this Cloud Foundry has its v2 API turned off (V2 endpoints disabled); set [cf] api = \"auto\" or \"v3\" to deploy through v3";

/// Whether `err` is nginx's `404 V2 endpoints disabled`.
pub fn is_v2_disabled(err: &DeployError) -> bool {
    matches!(err, DeployError::Rejected { status: 404, message } if message.starts_with(V2_DISABLED_MESSAGE))
}

pub struct CcSession<'a> {
    http: reqwest::Client,
    base: String,
    /// The token as configured or read from the cf CLI's file.
    original: String,
    authorization: Mutex<String>,
    refresher: Option<Refresher>,
    tokens: &'a RefreshedTokens,
    report: &'a dyn Report,
}

impl<'a> CcSession<'a> {
    pub fn new(
        http: reqwest::Client,
        base: &str,
        original: String,
        refresher: Option<Refresher>,
        tokens: &'a RefreshedTokens,
        report: &'a dyn Report,
    ) -> CcSession<'a> {
        CcSession {
            http,
            base: base.trim().trim_end_matches('/').to_string(),
            authorization: Mutex::new(tokens.current(&original)),
            original,
            refresher,
            tokens,
            report,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends the request `build` makes (it may be called twice: again after
    /// a refresh that followed a 401) and reads a JSON answer. A non-2xx
    /// status becomes the matching [`DeployError`].
    pub async fn send<F>(&self, build: F) -> Result<(StatusCode, serde_json::Value), DeployError>
    where
        F: Fn(&reqwest::Client) -> Result<RequestBuilder, DeployError>,
    {
        let (status, body, _) = self.send_located(build).await?;
        Ok((status, body))
    }

    /// As [`CcSession::send`], with the path of the answer's `Location`
    /// (an asynchronous job's, e.g. after `apply_manifest`). Only the path
    /// is kept: the job is read from the API the session talks to, so a
    /// `Location` naming another host never receives the token.
    pub async fn send_located<F>(
        &self,
        build: F,
    ) -> Result<(StatusCode, serde_json::Value, Option<String>), DeployError>
    where
        F: Fn(&reqwest::Client) -> Result<RequestBuilder, DeployError>,
    {
        let needs_refresh = expires_soon(&self.authorization.lock(), SystemTime::now());
        if needs_refresh && self.refresher.is_some() {
            self.report
                .log("cf: the access token expires within a minute; refreshing it");
            self.refresh().await?;
        }
        let mut refreshed = false;
        loop {
            let authorization = self.authorization.lock().clone();
            let response = send(build(&self.http)?.header(AUTHORIZATION, authorization)).await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed && self.refresher.is_some() {
                self.report
                    .log("cf: the server refused the access token (401); refreshing it");
                refreshed = true;
                self.refresh().await?;
                continue;
            }
            let retry_after = crate::backend::retry_after::from_headers(response.headers());
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(location_path);
            let body = crate::backend::http::body(response).await?;
            return self
                .read(status, &body)
                .map(|(status, body)| (status, body, location))
                .map_err(|err| err.with_retry_after(retry_after));
        }
    }

    async fn refresh(&self) -> Result<(), DeployError> {
        let refresher = self.refresher.as_ref().expect("checked by the caller");
        let fresh = refresher.refresh(&self.http).await?;
        self.tokens.remember(&self.original, &fresh);
        *self.authorization.lock() = fresh;
        tracing::info!(endpoint = %refresher.endpoint, "refreshed the cf access token");
        Ok(())
    }

    fn read(
        &self,
        status: StatusCode,
        body: &[u8],
    ) -> Result<(StatusCode, serde_json::Value), DeployError> {
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok((status, serde_json::Value::Null));
            }
            let value = serde_json::from_slice(body).map_err(|err| {
                DeployError::Protocol(format!("HTTP {status} with a body that is not JSON: {err}"))
            })?;
            return Ok((status, value));
        }
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            self.report.response(&value);
        }
        Err(error_for(status, body))
    }
}

/// The error for a failed Cloud Controller request, from its v2 or v3 body
/// when there is one (nginx and load balancers answer in plain text).
/// The path (and query) of a `Location`, absolute or relative.
fn location_path(location: &str) -> Option<String> {
    let path = match reqwest::Url::parse(location) {
        Ok(url) => match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        },
        Err(_) if location.starts_with('/') => location.to_string(),
        Err(_) => return None,
    };
    Some(path)
}

pub fn error_for(status: StatusCode, body: &[u8]) -> DeployError {
    let v3 = serde_json::from_slice::<V3ErrorBody>(body)
        .ok()
        .and_then(|b| b.message());
    let mut message = match (v3, serde_json::from_slice::<CfErrorBody>(body)) {
        (Some(message), _) => message,
        (None, Ok(err)) => err.message(),
        (None, Err(_)) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if status == StatusCode::NOT_FOUND && text == V2_DISABLED_BODY {
                V2_DISABLED_MESSAGE.to_string()
            } else if text.is_empty() {
                status
                    .canonical_reason()
                    .unwrap_or("no details")
                    .to_string()
            } else {
                text.chars().take(300).collect()
            }
        }
    };
    if status == StatusCode::UNAUTHORIZED {
        message.push_str("; log in again with `cf login`, or set [cf] token");
    }
    DeployError::from_status(status.as_u16(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_the_v2_body_or_the_text() {
        let body = br#"{"description":"The app could not be found: x","error_code":"CF-AppNotFound","code":100004}"#;
        let err = error_for(StatusCode::NOT_FOUND, body);
        assert!(!err.is_retryable());
        assert!(
            err.to_string()
                .contains("The app could not be found: x (CF-AppNotFound)"),
            "{err}"
        );

        let err = error_for(StatusCode::NOT_FOUND, b"V2 endpoints disabled");
        assert!(err.to_string().contains("v2 API turned off"), "{err}");
        assert!(is_v2_disabled(&err));
        assert!(!is_v2_disabled(&error_for(StatusCode::NOT_FOUND, b"nope")));

        let body = br#"{"errors":[{"detail":"Package not found","title":"CF-ResourceNotFound","code":10010}]}"#;
        let err = error_for(StatusCode::NOT_FOUND, body);
        assert!(
            err.to_string()
                .contains("Package not found (CF-ResourceNotFound)"),
            "{err}"
        );

        let err = error_for(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(err.is_retryable());

        let err = error_for(StatusCode::UNAUTHORIZED, br#"{"description":"Invalid Auth Token","error_code":"CF-InvalidAuthToken","code":1000}"#);
        assert!(err.to_string().contains("cf login"), "{err}");
    }

    #[test]
    fn refreshed_tokens_follow_their_original() {
        let tokens = RefreshedTokens::default();
        assert_eq!(tokens.current("a"), "a");
        tokens.remember("a", "a2");
        assert_eq!(tokens.current("a"), "a2");
        assert_eq!(tokens.current("b"), "b", "a new login is not replaced");
    }
}
