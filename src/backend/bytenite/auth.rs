//! Access tokens for the ByteNite API: a configured token, or one exchanged
//! for the API key at `POST /v1/auth/access_token` and cached until shortly
//! before it expires.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;

use super::endpoint::ApiRoot;
use super::wire::{error_from_response, http_error, Redactor};
use crate::backend::http::send;
use crate::backend::DeployError;

/// Renew this long before expiry, so a token does not lapse mid-upload.
const RENEW_MARGIN: Duration = Duration::from_secs(60);
/// The exchange is one small request: a server silent for this long is down.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// ByteNite's documented default lifetime, if the answer carries none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Which credentials the configuration gave.
#[derive(Clone)]
pub enum Credentials {
    /// Sent as is; never renewed.
    Token(String),
    ApiKey(String),
    /// The token first; the key when the token is refused.
    Both {
        token: String,
        api_key: String,
    },
}

impl Credentials {
    pub fn api_key(&self) -> Option<&str> {
        match self {
            Credentials::ApiKey(key) | Credentials::Both { api_key: key, .. } => Some(key),
            Credentials::Token(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: String,
    fetched: Instant,
    lifetime: Duration,
}

impl CachedToken {
    /// Still good at `now` with a margin: 60 s, or half the lifetime for a
    /// short-lived token (else it would never count as fresh).
    fn is_fresh(&self, now: Instant) -> bool {
        let margin = RENEW_MARGIN.min(self.lifetime / 2);
        now.saturating_duration_since(self.fetched) + margin < self.lifetime
    }
}

/// A token and where it came from, so a 401 can be answered properly.
#[derive(Clone)]
pub struct AccessToken {
    pub value: String,
    /// Obtained from the API key (renewable), not configured.
    pub exchanged: bool,
}

pub struct TokenSource {
    credentials: Credentials,
    cache: Mutex<Option<CachedToken>>,
    /// After the configured token was refused, use the API key instead.
    configured_refused: Mutex<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    #[serde(default)]
    token: String,
    /// int64, so a JSON string; a number is accepted too.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

impl TokenSource {
    pub fn new(credentials: Credentials) -> Self {
        TokenSource {
            credentials,
            cache: Mutex::new(None),
            configured_refused: Mutex::new(false),
        }
    }

    /// The token to send now, exchanging the API key if needed.
    pub async fn get(
        &self,
        http: &reqwest::Client,
        api: &ApiRoot,
        redactor: &Redactor,
        log: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<AccessToken, DeployError> {
        let api_key = match &self.credentials {
            Credentials::Token(token) => return Ok(configured(token)),
            Credentials::Both { token, .. } if !*self.configured_refused.lock() => {
                return Ok(configured(token))
            }
            Credentials::ApiKey(key) | Credentials::Both { api_key: key, .. } => key,
        };
        if let Some(cached) = self
            .cache
            .lock()
            .as_ref()
            .filter(|c| c.is_fresh(Instant::now()))
        {
            return Ok(AccessToken {
                value: cached.token.clone(),
                exchanged: true,
            });
        }
        log("requesting an access token for the API key");
        let fresh = exchange(http, api, api_key, redactor).await?;
        redactor.learn(&fresh.token);
        let value = fresh.token.clone();
        *self.cache.lock() = Some(fresh);
        Ok(AccessToken {
            value,
            exchanged: true,
        })
    }

    /// Called after a 401 with `token`: forget it. Returns whether a new
    /// token can be had (there is an API key).
    pub fn refused(&self, token: &AccessToken) -> bool {
        if token.exchanged {
            let mut cache = self.cache.lock();
            if cache.as_ref().is_some_and(|c| c.token == token.value) {
                *cache = None;
            }
        } else {
            *self.configured_refused.lock() = true;
        }
        self.credentials.api_key().is_some()
    }
}

/// A pasted token without its `Bearer ` prefix (ByteNite wants the bare
/// token in `Authorization`), and whether there was one to strip.
pub fn bare_token(raw: &str) -> (String, bool) {
    let raw = raw.trim();
    let rest = raw
        .get(..BEARER.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(BEARER))
        .map(|_| &raw[BEARER.len()..])
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace));
    match rest {
        Some(rest) => (rest.trim_start().to_string(), true),
        None => (raw.to_string(), false),
    }
}

const BEARER: &str = "Bearer";

fn configured(token: &str) -> AccessToken {
    AccessToken {
        value: token.to_string(),
        exchanged: false,
    }
}

async fn exchange(
    http: &reqwest::Client,
    api: &ApiRoot,
    api_key: &str,
    redactor: &Redactor,
) -> Result<CachedToken, DeployError> {
    let fetched = Instant::now();
    let request = http
        .post(api.auth("/access_token"))
        .json(&serde_json::json!({ "apiKey": api_key }))
        .timeout(EXCHANGE_TIMEOUT);
    let response = send(request).await.map_err(http_error)?;
    let status = response.status();
    let retry_after = crate::backend::retry_after::from_headers(response.headers());
    let body = crate::backend::http::body(response)
        .await
        .map_err(http_error)?;
    if !status.is_success() {
        let err =
            error_from_response(status.as_u16(), &body, redactor).with_retry_after(retry_after);
        return Err(match err {
            DeployError::Rejected { status: 401, message } => DeployError::Rejected {
                status: 401,
                message: format!(
                    "the API key was refused ({message}); check [bytenite] api_key / PUSHFS_BYTENITE_API_KEY"
                ),
            },
            DeployError::Rejected { status, message } => {
                DeployError::from_status(status, format!("access token request failed: {message}"))
            }
            DeployError::ServerFailed {
                status,
                message,
                retry_after,
            } => DeployError::from_status(status, format!("access token request failed: {message}"))
                .with_retry_after(retry_after),
            other => other,
        });
    }
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
        DeployError::Protocol(format!(
            "the access token answer is not the expected JSON: {e}"
        ))
    })?;
    if answer.token.is_empty() {
        return Err(DeployError::Protocol(
            "the access token answer has no token".into(),
        ));
    }
    Ok(CachedToken {
        token: answer.token,
        fetched,
        lifetime: parse_lifetime(answer.expires_in.as_ref()),
    })
}

fn parse_lifetime(value: Option<&serde_json::Value>) -> Duration {
    let secs = match value {
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    secs.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(lifetime_secs: u64, fetched: Instant) -> CachedToken {
        CachedToken {
            token: "t".into(),
            fetched,
            lifetime: Duration::from_secs(lifetime_secs),
        }
    }

    #[test]
    fn tokens_are_renewed_a_minute_before_expiry() {
        let t0 = Instant::now();
        let hour = token(3600, t0);
        assert!(hour.is_fresh(t0));
        assert!(hour.is_fresh(t0 + Duration::from_secs(3539)));
        assert!(!hour.is_fresh(t0 + Duration::from_secs(3540)));
        assert!(!hour.is_fresh(t0 + Duration::from_secs(4000)));
    }

    #[test]
    fn short_lived_tokens_are_used_for_half_their_life() {
        let t0 = Instant::now();
        let short = token(10, t0);
        assert!(short.is_fresh(t0 + Duration::from_secs(4)));
        assert!(!short.is_fresh(t0 + Duration::from_secs(5)));
        assert!(!token(0, t0).is_fresh(t0));
    }

    #[test]
    fn lifetimes_parse_from_strings_or_numbers() {
        assert_eq!(
            parse_lifetime(Some(&json!("3600"))),
            Duration::from_secs(3600)
        );
        assert_eq!(parse_lifetime(Some(&json!(120))), Duration::from_secs(120));
        assert_eq!(parse_lifetime(Some(&json!("soon"))), DEFAULT_LIFETIME);
        assert_eq!(parse_lifetime(None), DEFAULT_LIFETIME);
    }

    #[test]
    fn a_bearer_prefix_is_stripped_once() {
        assert_eq!(bare_token("Bearer abc.def"), ("abc.def".to_string(), true));
        assert_eq!(bare_token(" bearer   abc "), ("abc".to_string(), true));
        assert_eq!(bare_token("abc"), ("abc".to_string(), false));
        assert_eq!(bare_token("Bearerabc"), ("Bearerabc".to_string(), false));
        assert_eq!(bare_token("é"), ("é".to_string(), false));
        assert_eq!(bare_token("Bearer "), (String::new(), true));
    }

    #[test]
    fn refusal_decides_whether_to_renew() {
        let only_token = TokenSource::new(Credentials::Token("a".into()));
        assert!(!only_token.refused(&configured("a")));

        let both = TokenSource::new(Credentials::Both {
            token: "a".into(),
            api_key: "k".into(),
        });
        assert!(both.refused(&configured("a")));
        assert!(*both.configured_refused.lock());

        let key = TokenSource::new(Credentials::ApiKey("k".into()));
        *key.cache.lock() = Some(token(3600, Instant::now()));
        assert!(key.refused(&AccessToken {
            value: "t".into(),
            exchanged: true
        }));
        assert!(
            key.cache.lock().is_none(),
            "a refused token is dropped from the cache"
        );
    }
}
