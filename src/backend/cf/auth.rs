//! Cloud Foundry credentials: a configured token, or a logged-in cf CLI's
//! `config.json`, refreshed through UAA the way the cf CLI does it.
//!
//! The cf CLI's file is only read, never written: a token refreshed here
//! lives in this process's memory, so the user's CLI session is untouched.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;

use crate::backend::DeployError;

/// The cf CLI refreshes a token this close to its expiry.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The part of the cf CLI's `config.json` pushfs reads.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CliConfig {
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: String,
    #[serde(default)]
    pub authorization_endpoint: String,
    #[serde(default)]
    pub uaa_endpoint: String,
    #[serde(default, rename = "SSLDisabled")]
    pub ssl_disabled: bool,
    #[serde(default, rename = "UAAGrantType")]
    pub uaa_grant_type: String,
    #[serde(default, rename = "UAAOAuthClient")]
    pub uaa_oauth_client: String,
    #[serde(default, rename = "UAAOAuthClientSecret")]
    pub uaa_oauth_client_secret: String,
    #[serde(default)]
    pub space_fields: CliSpace,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CliSpace {
    #[serde(default, rename = "GUID")]
    pub guid: String,
}

impl fmt::Debug for CliConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliConfig")
            .field("target", &self.target)
            .field("access_token", &redacted(&self.access_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("authorization_endpoint", &self.authorization_endpoint)
            .field("space_fields", &self.space_fields)
            .finish_non_exhaustive()
    }
}

/// `"<redacted>"` for a present secret, `""` for an absent one.
pub fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

/// `$CF_HOME/.cf/config.json` (the caller resolves CF_HOME vs HOME).
pub fn cli_config_path(cf_home: &Path) -> PathBuf {
    cf_home.join(".cf").join("config.json")
}

/// Reads the cf CLI's config: `Ok(None)` when there is none.
pub fn read_cli_config(path: &Path) -> Result<Option<CliConfig>, DeployError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(DeployError::Io(err)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| DeployError::NotConfigured {
            backend: "cf",
            missing: format!(
                "a readable cf CLI config ({} is not valid: {err})",
                path.display()
            ),
        })
}

/// How to get a new access token when the current one expires.
#[derive(Clone)]
pub struct Refresher {
    /// UAA base URL; the token endpoint is `{endpoint}/oauth/token`.
    pub endpoint: String,
    pub refresh_token: String,
    pub client_id: String,
    pub client_secret: String,
    /// The cf CLI's `UAAGrantType`: empty (a user login) or `client_credentials`.
    pub grant_type: String,
}

impl fmt::Debug for Refresher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresher")
            .field("endpoint", &self.endpoint)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("client_id", &self.client_id)
            .field("grant_type", &self.grant_type)
            .finish_non_exhaustive()
    }
}

impl Refresher {
    /// From the cf CLI's config; `None` when it cannot refresh.
    pub fn from_cli(cli: &CliConfig) -> Option<Refresher> {
        let endpoint = if cli.authorization_endpoint.is_empty() {
            &cli.uaa_endpoint
        } else {
            &cli.authorization_endpoint
        };
        let client_credentials = cli.uaa_grant_type == "client_credentials";
        if endpoint.is_empty() || (cli.refresh_token.is_empty() && !client_credentials) {
            return None;
        }
        Some(Refresher {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            refresh_token: cli.refresh_token.clone(),
            client_id: if cli.uaa_oauth_client.is_empty() {
                "cf".into()
            } else {
                cli.uaa_oauth_client.clone()
            },
            client_secret: cli.uaa_oauth_client_secret.clone(),
            grant_type: cli.uaa_grant_type.clone(),
        })
    }

    /// Asks UAA for a new access token; returns the `Authorization` value.
    pub async fn refresh(&self, http: &reqwest::Client) -> Result<String, DeployError> {
        let url = format!("{}/oauth/token", self.endpoint);
        let request = http.post(&url).header("accept", "application/json");
        let request = if self.grant_type == "client_credentials" {
            request.form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.as_str()),
            ])
        } else {
            request
                .basic_auth(&self.client_id, Some(&self.client_secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", self.refresh_token.as_str()),
                ])
        };
        let response = crate::backend::http::send(request.timeout(Duration::from_secs(60))).await?;
        let status = response.status();
        let retry_after = crate::backend::retry_after::from_headers(response.headers());
        let body = crate::backend::http::body(response).await?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<UaaError>(&body)
                .map(|e| match e.error_description {
                    Some(d) => format!("{}: {d}", e.error),
                    None => e.error,
                })
                .unwrap_or_else(|_| "no details".into());
            // UAA may quote the token it refused; never pass it on.
            let detail = detail.replace(&self.refresh_token, "<redacted>");
            let message = format!(
                "the cf login could not be refreshed at {url} ({detail}); run `cf login` again"
            );
            return Err(
                DeployError::from_status(status.as_u16(), message).with_retry_after(retry_after)
            );
        }
        let token: UaaToken = serde_json::from_slice(&body)
            .map_err(|err| DeployError::Protocol(format!("UAA token response: {err}")))?;
        let kind = token.token_type.unwrap_or_else(|| "bearer".into());
        Ok(format!("{kind} {}", token.access_token))
    }
}

#[derive(Deserialize)]
struct UaaToken {
    access_token: String,
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct UaaError {
    error: String,
    error_description: Option<String>,
}

/// The `Authorization` header value for a token as a user may write it:
/// `"bearer eyJ…"` (the cf CLI's form) or a bare token.
pub fn authorization_value(token: &str) -> String {
    let token = token.trim();
    match token.split_once(' ') {
        Some((kind, rest)) if kind.eq_ignore_ascii_case("bearer") => {
            format!("bearer {}", rest.trim())
        }
        _ => format!("bearer {token}"),
    }
}

/// The `exp` claim of a JWT in an `Authorization` value, if it is one.
pub fn jwt_expiry(authorization: &str) -> Option<u64> {
    let token = authorization.rsplit(' ').next()?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_u64()
}

/// True when the token expires within [`EXPIRY_MARGIN`]. Tokens that are
/// not JWTs carry no expiry; the server's 401 tells about those.
pub fn expires_soon(authorization: &str, now: SystemTime) -> bool {
    let Some(exp) = jwt_expiry(authorization) else {
        return false;
    };
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    exp <= (now + EXPIRY_MARGIN).as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let enc = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.sig",
            enc(serde_json::json!({"alg": "RS256"})),
            enc(serde_json::json!({"exp": exp, "user_name": "u"}))
        )
    }

    #[test]
    fn authorization_values() {
        assert_eq!(authorization_value("abc"), "bearer abc");
        assert_eq!(authorization_value("bearer abc"), "bearer abc");
        assert_eq!(authorization_value("Bearer  abc "), "bearer abc");
    }

    #[test]
    fn expiry_is_read_from_the_jwt_with_a_minute_of_margin() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(expires_soon(&format!("bearer {}", jwt(999_000)), now));
        assert!(expires_soon(&format!("bearer {}", jwt(1_000_059)), now));
        assert!(!expires_soon(&format!("bearer {}", jwt(1_000_061)), now));
        assert!(!expires_soon("bearer opaque-token", now));
        assert_eq!(jwt_expiry(&jwt(42)), Some(42));
    }

    #[test]
    fn cli_config_is_read_and_debug_hides_tokens() {
        let tmp = tempfile::tempdir().unwrap();
        let path = cli_config_path(tmp.path());
        assert!(read_cli_config(&path).unwrap().is_none());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"ConfigVersion":3,"Target":"https://api.x","AccessToken":"bearer SECRET-A",
               "RefreshToken":"SECRET-R","AuthorizationEndpoint":"https://login.x/",
               "UAAOAuthClient":"cf","UAAOAuthClientSecret":"",
               "SpaceFields":{"GUID":"space-1","Name":"dev","AllowSSH":true},
               "OrganizationFields":{"GUID":"org-1","Name":"o"}}"#,
        )
        .unwrap();
        let cli = read_cli_config(&path).unwrap().unwrap();
        assert_eq!(cli.target, "https://api.x");
        assert_eq!(cli.space_fields.guid, "space-1");
        let refresher = Refresher::from_cli(&cli).unwrap();
        assert_eq!(refresher.endpoint, "https://login.x");
        assert_eq!(refresher.client_id, "cf");
        let shown = format!("{cli:?} {refresher:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    #[test]
    fn no_refresh_without_a_refresh_token_or_endpoint() {
        let cli = CliConfig {
            access_token: "bearer x".into(),
            authorization_endpoint: "https://login.x".into(),
            ..CliConfig::default()
        };
        assert!(Refresher::from_cli(&cli).is_none());
        let cli = CliConfig {
            refresh_token: "r".into(),
            ..CliConfig::default()
        };
        assert!(Refresher::from_cli(&cli).is_none());
    }
}
