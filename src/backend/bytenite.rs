//! The ByteNite backend: pushes an app as `{"data": base64(tar)}` to
//! `POST {url}/v1/dev/apps` and reads back the `appApp` (id, hash, revision).
//!
//! One deploy: read and check the manifest ([`bundle`]), plan the tar,
//! get a token ([`auth`]), stream the body ([`upload`]) and read the answer
//! ([`wire`]); then, if asked, activate the pushed version ([`activation`],
//! over the management calls in [`apps`]). A refused token (401) is renewed
//! and the request retried once; every other failure is returned for the
//! deploy layer to retry or not.

mod activation;
mod apps;
mod auth;
pub mod bundle;
pub mod endpoint;
pub mod manifest;
pub(crate) mod upload;
mod wire;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use serde::Deserialize;

use super::http::{send, TlsSettings};
use super::metered::metered;
use super::{
    Backend, BackendKind, DeployError, DeployOutcome, DeployState, IgnoreProfile, PreviousDeploy,
    ProgressPhase, Report,
};
use crate::env::{Env, EnvError};
use crate::package::tar::TarPackage;
use crate::snapshot::Snapshot;
pub use activation::status_word;
use activation::PendingActivations;
use auth::{bare_token, AccessToken, Credentials, TokenSource};
use bundle::{BundleError, Layout};
use endpoint::ApiRoot;
use upload::{TarDigest, WriteFailure};
use wire::{body_as_json, error_from_response, http_error, PushedApp, Redactor};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server may take to answer once the whole body is sent, and
/// to send the answer. Not a read timeout on the socket: a long upload of a
/// big app reads nothing for minutes and must not time out.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// How long to wait for the body writer once the answer is in.
const WRITER_GRACE: Duration = Duration::from_secs(10);

/// `[bytenite]` in the config file; `PUSHFS_BYTENITE_*` override it.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteniteConfig {
    /// The API's root, e.g. `https://api.bytenite.com`; the server URL of
    /// ByteNite's OpenAPI document (`…/v1/dev`) works too.
    pub url: Option<String>,
    /// Exchanged for access tokens as needed (renewed before expiry).
    pub api_key: Option<String>,
    /// An access token used as is (it expires after an hour by default);
    /// a pasted `Bearer ` prefix is dropped.
    pub token: Option<String>,
    /// Activate every app after its push, as `bytenite app activate` does;
    /// an app's own `"activate"` key overrides it. Default false.
    pub activate: Option<bool>,
    /// PEM certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (insecure; warned about at mount).
    pub skip_ssl_validation: Option<bool>,
}

impl fmt::Debug for ByteniteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ByteniteConfig")
            .field("url", &self.url)
            .field("api_key", &secret(&self.api_key))
            .field("token", &secret(&self.token))
            .field("activate", &self.activate)
            .field("ca_file", &self.ca_file)
            .field("skip_ssl_validation", &self.skip_ssl_validation)
            .finish()
    }
}

impl ByteniteConfig {
    pub fn apply_env(&mut self, env: &Env) -> Result<(), EnvError> {
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();
        if let Some(url) = var("PUSHFS_BYTENITE_URL") {
            self.url = Some(url);
        }
        if let Some(key) = var("PUSHFS_BYTENITE_API_KEY") {
            self.api_key = Some(key);
        }
        if let Some(token) = var("PUSHFS_BYTENITE_TOKEN") {
            self.token = Some(token);
        }
        if let Some(value) = var("PUSHFS_BYTENITE_ACTIVATE") {
            self.activate = Some(crate::env::parse_flag("PUSHFS_BYTENITE_ACTIVATE", &value)?);
        }
        Ok(())
    }

    pub fn tls(&self) -> TlsSettings {
        TlsSettings {
            ca_file: self.ca_file.clone(),
            skip_validation: self.skip_ssl_validation.unwrap_or(false),
        }
    }

    /// The credentials, with a pasted `Bearer ` prefix taken off the token;
    /// the flag says whether there was one.
    fn credentials(&self) -> (Option<Credentials>, bool) {
        let set = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        let (token, stripped) = match set(&self.token).map(|raw| bare_token(&raw)) {
            Some((token, stripped)) => (Some(token).filter(|t| !t.is_empty()), stripped),
            None => (None, false),
        };
        let credentials = match (token, set(&self.api_key)) {
            (Some(token), Some(api_key)) => Some(Credentials::Both { token, api_key }),
            (Some(token), None) => Some(Credentials::Token(token)),
            (None, Some(key)) => Some(Credentials::ApiKey(key)),
            (None, None) => None,
        };
        (credentials, stripped)
    }
}

pub struct ByteniteClient {
    api: Option<ApiRoot>,
    tokens: Option<TokenSource>,
    redactor: Redactor,
    http: reqwest::Client,
    answer_timeout: Duration,
    /// `[bytenite] activate`: activate after every push unless the app says no.
    activate: bool,
    pending: PendingActivations,
}

/// A push's HTTP answer, with the digest of what was sent when known.
struct Answer {
    status: u16,
    body: bytes::Bytes,
    /// The wait a `Retry-After` header asked for.
    retry_after: Option<std::time::Duration>,
    digest: Option<TarDigest>,
}

impl ByteniteClient {
    pub fn new(config: &ByteniteConfig) -> Self {
        let secrets = [config.api_key.clone(), config.token.clone()];
        let http = super::http::tls_client_builder(&config.tls())
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(TCP_KEEPALIVE)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let api = config.url.as_deref().and_then(ApiRoot::parse);
        if let Some(api) = api.as_ref().filter(|a| a.was_trimmed()) {
            tracing::info!(
                root = api.as_str(),
                "[bytenite] url names an API path; using its root"
            );
        }
        let (tokens, stripped) = config.credentials();
        if stripped {
            tracing::info!(
                "[bytenite] token starts with \"Bearer \"; ByteNite wants the bare token, so pushfs sends it without the prefix"
            );
        }
        // The bare token too, should the pasted one differ from it.
        let bare = tokens.as_ref().and_then(|c| match c {
            Credentials::Token(t) | Credentials::Both { token: t, .. } => Some(t.clone()),
            Credentials::ApiKey(_) => None,
        });
        ByteniteClient {
            api,
            tokens: tokens.map(TokenSource::new),
            redactor: Redactor::new(secrets.into_iter().flatten().chain(bare)),
            http,
            answer_timeout: ANSWER_TIMEOUT,
            activate: config.activate.unwrap_or(false),
            pending: PendingActivations::default(),
        }
    }

    /// The API and the token source, or the error naming what is missing.
    fn endpoints(&self) -> Result<(&ApiRoot, &TokenSource), DeployError> {
        let api = self.api.as_ref().ok_or_else(|| {
            not_configured("[bytenite] url / PUSHFS_BYTENITE_URL (e.g. https://api.bytenite.com)")
        })?;
        let tokens = self.tokens.as_ref().ok_or_else(|| {
            not_configured("[bytenite] api_key or token / PUSHFS_BYTENITE_API_KEY")
        })?;
        Ok((api, tokens))
    }

    /// Changes how long a push may wait for the answer once its body is
    /// sent (default 300 s).
    pub fn with_answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout;
        self
    }

    fn log(&self, report: &dyn Report, line: &str) {
        report.log(&self.redactor.text(line));
    }

    async fn token(
        &self,
        tokens: &TokenSource,
        api: &ApiRoot,
        report: &dyn Report,
    ) -> Result<AccessToken, DeployError> {
        tokens
            .get(&self.http, api, &self.redactor, &|line| {
                self.log(report, line)
            })
            .await
    }

    /// One POST of the package; the answer whatever its status.
    async fn push(
        &self,
        api: &ApiRoot,
        token: &AccessToken,
        package: Arc<TarPackage>,
        tar_len: u64,
        report: &dyn Report,
    ) -> Result<Answer, DeployError> {
        let streamed = upload::stream_body(package, tar_len);
        let url = api.dev("/apps");
        self.log(
            report,
            &format!(
                "upload: POST {url}, {} bytes (tar {tar_len} bytes, base64 in JSON)",
                streamed.content_length
            ),
        );
        report.state(DeployState::Uploading);
        let request = self
            .http
            .post(&url)
            .header(AUTHORIZATION, token.value.as_str())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_LENGTH, streamed.content_length)
            .body(streamed.body);
        let mut writer = streamed.writer;
        let mut written = None;
        let answered = async {
            let response = send(request).await.map_err(http_error)?;
            let status = response.status().as_u16();
            let retry_after = crate::backend::retry_after::from_headers(response.headers());
            let body = super::http::body(response).await.map_err(http_error)?;
            Ok::<_, DeployError>((status, body, retry_after))
        };
        let answered = metered(
            report,
            ProgressPhase::Uploading,
            &streamed.sent,
            streamed.content_length,
            answered,
        );
        tokio::pin!(answered);
        // The clock for the answer starts once the writer has handed over
        // the whole body.
        let answer = loop {
            tokio::select! {
                answer = &mut answered => break answer,
                result = &mut writer, if written.is_none() => written = Some(result),
                _ = tokio::time::sleep(self.answer_timeout), if written.is_some() => {
                    break Err(DeployError::Network(format!(
                        "no answer from {url} within {} s of sending the app",
                        self.answer_timeout.as_secs_f32()
                    )));
                }
            }
        };
        let written = match written {
            Some(result) => Some(result),
            None => tokio::time::timeout(WRITER_GRACE, writer).await.ok(),
        };
        let written = written.map(|joined| {
            joined.unwrap_or_else(|join| {
                Err(WriteFailure::Io(std::io::Error::other(join.to_string())))
            })
        });
        match (answer, written) {
            // A blob that cannot be read is the cause, whatever the network said.
            (_, Some(Err(WriteFailure::Io(err)))) => Err(DeployError::Io(err)),
            (Err(DeployError::Network(message)), _) => {
                Err(DeployError::Network(self.redactor.text(&message)))
            }
            (Err(err), _) => Err(err),
            (Ok((status, body, retry_after)), written) => Ok(Answer {
                status,
                body,
                retry_after,
                digest: written.and_then(Result::ok),
            }),
        }
    }

    fn accepted(
        &self,
        answer: Answer,
        tar_len: u64,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let value: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
            DeployError::Protocol(format!(
                "the push answer (HTTP {}) is not JSON: {e}",
                answer.status
            ))
        })?;
        let shown = self.redactor.json(&value);
        report.response(&shown);
        let app = PushedApp::from_json(&value)?;
        report.id(&app.id);

        let ours = answer.digest.as_ref().map(|d| d.sha256_base64.clone());
        let mut warnings = Vec::new();
        match (&app.hash, &ours) {
            (Some(theirs), Some(ours)) if theirs != ours => {
                tracing::warn!(server = %theirs, ours = %ours, "ByteNite hash differs from the tar's SHA-256");
                let warning = format!(
                    "the server's hash {theirs} differs from base64(SHA-256) of the tar we sent ({ours}); \
                     the deploy stands, but the server may have hashed something else"
                );
                self.log(report, &format!("warning: {warning}"));
                warnings.push(warning);
            }
            (Some(theirs), Some(_)) => self.log(
                report,
                &format!("hash {theirs} matches the tar we sent ({tar_len} bytes)"),
            ),
            (None, Some(ours)) => self.log(
                report,
                &format!("the server returned no hash; ours (base64 SHA-256 of the tar) is {ours}"),
            ),
            (_, None) => self.log(
                report,
                "could not compute the tar's hash to compare with the server's",
            ),
        }
        let shown_field = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        self.log(
            report,
            &format!(
                "pushed {}@{}: id {}, revision {}, status {}",
                shown_field(&app.name),
                shown_field(&app.version),
                app.id,
                shown_field(&app.revision),
                shown_field(&app.status),
            ),
        );
        Ok(DeployOutcome {
            id: Some(app.id),
            hash: app.hash.or(ours),
            revision: app.revision,
            job: None,
            response: Some(shown),
            warnings,
        })
    }

    fn refused(&self, answer: &Answer, report: &dyn Report) -> DeployError {
        report.response(&self.redactor.json(&body_as_json(&answer.body)));
        error_from_response(answer.status, &answer.body, &self.redactor)
            .with_retry_after(answer.retry_after)
    }
}

fn not_configured(missing: &str) -> DeployError {
    DeployError::NotConfigured {
        backend: "bytenite",
        missing: missing.to_string(),
    }
}

fn bundle_error(err: BundleError) -> DeployError {
    match err {
        BundleError::Read(err) => err.into(),
        other => DeployError::InvalidSpec(other.to_string()),
    }
}

#[async_trait]
impl Backend for ByteniteClient {
    fn kind(&self) -> BackendKind {
        BackendKind::Bytenite
    }

    fn spec_files(&self) -> &'static [&'static str] {
        &[manifest::SPEC_FILE, manifest::MANIFEST_FILE]
    }

    fn remote_name(&self, snapshot: &Snapshot) -> Option<String> {
        let bundle = bundle::bundle(snapshot).ok()?;
        Some(format!("{}@{}", bundle.app.name, bundle.app.version))
    }

    fn ignore_profile(&self) -> IgnoreProfile {
        IgnoreProfile::default()
    }

    async fn deploy(
        &self,
        snapshot: &Snapshot,
        _previous: &PreviousDeploy,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let bundle = bundle::bundle(snapshot).map_err(bundle_error)?;
        let (api, tokens) = self.endpoints()?;
        let activate = bundle.app.activate.unwrap_or(self.activate);
        let tag = format!("{}@{}", bundle.app.name, bundle.app.version);
        let pending_key = format!("{}\n{}", snapshot.app, snapshot.digest);

        let owed = activate.then(|| self.pending.take(&pending_key)).flatten();
        let pushed = match owed {
            Some(pushed) => {
                self.log(
                    report,
                    &format!(
                        "{tag} is already pushed (revision {}); activating it without pushing again",
                        pushed.revision.as_deref().unwrap_or("?")
                    ),
                );
                if let Some(id) = &pushed.id {
                    report.id(id);
                }
                pushed
            }
            None => self.push_bundle(bundle, api, tokens, report).await?,
        };
        if !activate {
            return Ok(pushed);
        }
        let revision = pushed.revision.clone().unwrap_or_else(|| "?".into());
        match activation::activate(self, &tag, &revision, report).await {
            Ok(activated) => {
                let mut outcome = pushed;
                if !activated.response.is_null() {
                    report.response(&activated.response);
                    outcome.response = Some(activated.response);
                }
                outcome.warnings.extend(activated.warnings);
                Ok(outcome)
            }
            Err(err) => {
                if err.is_retryable() {
                    self.pending.remember(&pending_key, pushed);
                }
                Err(err)
            }
        }
    }
}

impl ByteniteClient {
    /// Packs and pushes the app; the `appApp` answer as an outcome.
    async fn push_bundle(
        &self,
        bundle: bundle::Bundle,
        api: &ApiRoot,
        tokens: &TokenSource,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        report.state(DeployState::Packaging);
        let layout = match bundle.layout {
            Layout::AppDir => "app/ folder",
            Layout::Flat => "flat folder, packed under app/",
        };
        self.log(
            report,
            &format!(
                "manifest from {}: {}@{}, entrypoint app/{}, image {} ({layout})",
                bundle.sources.join(" + "),
                bundle.app.name,
                bundle.app.version,
                bundle.app.entrypoint,
                bundle.app.platform_config.container,
            ),
        );
        let package = Arc::new(bundle.package);
        let sizing = package.clone();
        let tar_len = tokio::task::spawn_blocking(move || sizing.size())
            .await
            .map_err(|e| DeployError::Io(std::io::Error::other(e.to_string())))??;
        self.log(
            report,
            &format!(
                "package: tar of {} entries, {} bytes of files, {tar_len} bytes",
                package.len(),
                package.content_bytes()
            ),
        );

        // From here on pushfs waits on the server (the token, then the
        // push): a stall there must not read as packaging.
        report.state(DeployState::Uploading);
        let mut token = self.token(tokens, api, report).await?;
        let mut renewed = false;
        loop {
            let answer = self
                .push(api, &token, package.clone(), tar_len, report)
                .await?;
            match answer.status {
                200..=299 => return self.accepted(answer, tar_len, report),
                401 if !renewed && tokens.refused(&token) => {
                    self.log(
                        report,
                        "the access token was refused (HTTP 401); renewing it and retrying once",
                    );
                    renewed = true;
                    token = self.token(tokens, api, report).await?;
                }
                401 => {
                    let err = self.refused(&answer, report);
                    let hint = if renewed {
                        "a freshly issued token was refused too; check the API key's rights"
                    } else {
                        "set a fresh [bytenite] token (PUSHFS_BYTENITE_TOKEN) or an api_key"
                    };
                    return Err(match err {
                        DeployError::Rejected { status, message } => DeployError::Rejected {
                            status,
                            message: format!("{message}; {hint}"),
                        },
                        other => other,
                    });
                }
                _ => return Err(self.refused(&answer, report)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file_and_debug_hides_secrets() {
        let mut config = ByteniteConfig {
            url: Some("http://file".into()),
            api_key: Some("file-key".into()),
            token: None,
            ..ByteniteConfig::default()
        };
        let env = Env::from([
            ("PUSHFS_BYTENITE_URL".to_string(), "http://env".to_string()),
            (
                "PUSHFS_BYTENITE_TOKEN".to_string(),
                "env-token-1".to_string(),
            ),
            ("PUSHFS_BYTENITE_API_KEY".to_string(), String::new()),
        ]);
        config.apply_env(&env).unwrap();
        assert_eq!(config.url.as_deref(), Some("http://env"));
        assert_eq!(config.api_key.as_deref(), Some("file-key"));
        assert_eq!(config.token.as_deref(), Some("env-token-1"));
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("file-key") && !debug.contains("env-token-1"),
            "{debug}"
        );
        assert!(debug.contains("http://env"), "{debug}");
    }

    #[test]
    fn a_bearer_token_is_used_bare_and_said_to_be() {
        let config = ByteniteConfig {
            token: Some("Bearer tok-123".into()),
            ..ByteniteConfig::default()
        };
        let (credentials, stripped) = config.credentials();
        assert!(stripped);
        assert!(matches!(credentials, Some(Credentials::Token(t)) if t == "tok-123"));
        let config = ByteniteConfig {
            token: Some("Bearer ".into()),
            api_key: Some("k".into()),
            ..ByteniteConfig::default()
        };
        assert!(matches!(
            config.credentials().0,
            Some(Credentials::ApiKey(_))
        ));
        let plain = ByteniteConfig {
            token: Some("tok-123".into()),
            ..ByteniteConfig::default()
        };
        assert!(!plain.credentials().1);
    }

    #[test]
    fn config_file_keys() {
        let config: ByteniteConfig = toml::from_str(
            "url = \"https://api.bytenite.com/v1/dev/\"\napi_key = \"k\"\nactivate = true\n",
        )
        .unwrap();
        assert_eq!(config.activate, Some(true));
        let client = ByteniteClient::new(&config);
        assert_eq!(
            client.api.as_ref().map(ApiRoot::as_str),
            Some("https://api.bytenite.com")
        );
        assert!(toml::from_str::<ByteniteConfig>("apikey = \"k\"").is_err());
    }
}
