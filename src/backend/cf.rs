//! The Cloud Foundry client: deploys a folder as `cf push` would.
//!
//! Locally first ([`plan`]): the folder's `manifest.yml` (with `vars.yml`)
//! or `spec.json` become one push plan per app, each with its source (the
//! folder, a folder or archive named by `path:`, or a docker image).
//! Through v3 ([`v3`]), the default: the manifest is applied, then each
//! app's bits become a package, staged and started (or rolled out).
//! Through v2 (the seed's flow, only where configured or v3 is missing):
//! one app's bits, `PUT /v2/apps/:guid/bits?async=true`, and its job.
//! Either way only the files the server lacks travel.

mod api;
mod apps;
mod auth;
mod bits;
mod job;
mod manifest;
mod plan;
mod source;
mod spec;
mod v3;
mod version;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tracing::Instrument;

use self::api::{CcSession, RefreshedTokens};
use self::apps::Resolution;
use self::auth::{authorization_value, cli_config_path, read_cli_config, redacted, Refresher};
use self::bits::BitsPlan;
use self::job::{JobBody, Polling};
use self::plan::{AppSource, DeployPlan};
use self::source::AppBits;
use self::spec::{AppRef, Strategy};
use self::version::{ApiVersion, RootDocument};
use super::{
    Backend, BackendKind, DeployError, DeployOutcome, DeployState, IgnoreProfile, PreviousDeploy,
    Report,
};
use crate::env::Env;
use crate::package::fingerprint::PoolWindow;
use crate::snapshot::Snapshot;

pub use self::manifest::MANIFEST_FILES;
pub use self::spec::{Strategy as CfStrategy, SPEC_FILE};
pub use self::version::ApiChoice;

/// The cf CLI's default ignore lines (`DefaultIgnoreLines`), less the
/// manifests and `.cfignore`: pushfs reads those (a `path:` folder's own
/// `.cfignore` too), so they stay in the snapshot and the packager leaves
/// them out instead (`plan::DeployPlan::is_deploy_metadata`).
pub const DEFAULT_IGNORE: &[&str] = &[".DS_Store", ".git", ".gitignore", ".hg", ".svn", "_darcs"];

/// `[cf]` in the config file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CfConfig {
    /// The Cloud Controller, e.g. `https://api.sys.example.com`
    /// (`PUSHFS_CF_URL`). Defaults to the cf CLI's target.
    pub url: Option<String>,
    /// An access token, with or without `bearer ` (`PUSHFS_CF_TOKEN`).
    /// Without one, the cf CLI's login is used.
    pub token: Option<String>,
    /// The space for apps named without a `space_guid`
    /// (`PUSHFS_CF_SPACE_GUID`). Defaults to the cf CLI's target space.
    pub space_guid: Option<String>,
    /// The directory holding the cf CLI's `.cf/config.json` (`CF_HOME`,
    /// else `HOME`).
    pub cf_home: Option<PathBuf>,
    /// How long a bits job (v2) or the package's processing (v3) may take
    /// before the deploy fails (default 900).
    pub job_timeout_secs: Option<u64>,
    /// `auto` (default), `v2` or `v3` (`PUSHFS_CF_API`).
    #[serde(default)]
    pub api: ApiChoice,
    /// v3: the pause between polls, in milliseconds (default 3000, the
    /// cf CLI's).
    pub poll_interval_ms: Option<u64>,
    /// v3: how long staging may take (default 900, `CF_STAGING_TIMEOUT`).
    pub staging_timeout_secs: Option<u64>,
    /// v3: how long until an instance runs (default 300, `CF_STARTUP_TIMEOUT`).
    pub startup_timeout_secs: Option<u64>,
    /// v3: how a started app takes a new droplet: `restart` (default, as
    /// `cf push`) or `rolling` (`cf push --strategy rolling`). A
    /// `spec.json`'s `strategy` wins.
    pub strategy: Option<Strategy>,
    /// The scheme of the apps' URLs (default `https`).
    pub route_scheme: Option<String>,
    /// The port of the apps' URLs, for a router on a port of its own.
    pub route_port: Option<u16>,
    /// The password of a private docker image's user (`CF_DOCKER_PASSWORD`,
    /// `PUSHFS_CF_DOCKER_PASSWORD`).
    pub docker_password: Option<String>,
    /// PEM certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (insecure; warned about at mount), as the
    /// cf CLI's `--skip-ssl-validation` login does.
    pub skip_ssl_validation: Option<bool>,
}

impl fmt::Debug for CfConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CfConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_deref().map(redacted))
            .field("space_guid", &self.space_guid)
            .field("cf_home", &self.cf_home)
            .field("job_timeout_secs", &self.job_timeout_secs)
            .field("api", &self.api)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("staging_timeout_secs", &self.staging_timeout_secs)
            .field("startup_timeout_secs", &self.startup_timeout_secs)
            .field("strategy", &self.strategy)
            .field("route_scheme", &self.route_scheme)
            .field("route_port", &self.route_port)
            .field(
                "docker_password",
                &self.docker_password.as_ref().map(|_| "(redacted)"),
            )
            .field("ca_file", &self.ca_file)
            .field("skip_ssl_validation", &self.skip_ssl_validation)
            .finish()
    }
}

impl CfConfig {
    pub fn apply_env(&mut self, env: &Env) {
        if let Some(url) = env.get("PUSHFS_CF_URL") {
            self.url = Some(url.clone());
        }
        if let Some(token) = env.get("PUSHFS_CF_TOKEN") {
            self.token = Some(token.clone());
        }
        if let Some(space) = env.get("PUSHFS_CF_SPACE_GUID") {
            self.space_guid = Some(space.clone());
        }
        if let Some(api) = env.get("PUSHFS_CF_API").and_then(|a| ApiChoice::parse(a)) {
            self.api = api;
        }
        if let Some(password) = env
            .get("PUSHFS_CF_DOCKER_PASSWORD")
            .or_else(|| env.get("CF_DOCKER_PASSWORD"))
        {
            self.docker_password = Some(password.clone());
        }
        // The cf CLI's own rule: CF_HOME, else the home directory.
        if let Some(home) = env.get("CF_HOME") {
            self.cf_home = Some(home.into());
        } else if self.cf_home.is_none() {
            self.cf_home = env.get("HOME").map(PathBuf::from);
        }
    }
}

/// Where a deploy's URL and token come from.
struct Credentials {
    url: String,
    /// The `Authorization` value as configured or read from the cf CLI.
    authorization: String,
    refresher: Option<Refresher>,
    default_space: Option<String>,
    skip_tls_verification: bool,
    source: String,
}

pub struct CfClient {
    config: CfConfig,
    tokens: RefreshedTokens,
    window: PoolWindow,
}

impl CfClient {
    pub fn new(config: &CfConfig) -> Self {
        CfClient {
            config: config.clone(),
            tokens: RefreshedTokens::default(),
            window: PoolWindow::CAPI_DEFAULT,
        }
    }

    /// The configured token wins; otherwise the cf CLI's login. Read at
    /// each deploy, so a `cf login` after mounting is picked up.
    fn credentials(&self) -> Result<Credentials, DeployError> {
        let mut creds = self.find_credentials()?;
        // As pasted: surrounding blanks and a trailing slash do no harm.
        creds.url = creds.url.trim().trim_end_matches('/').to_string();
        let scheme_ok = creds.url.starts_with("https://") || creds.url.starts_with("http://");
        if !scheme_ok || reqwest::Url::parse(&creds.url).is_err() {
            return Err(DeployError::NotConfigured {
                backend: "cf",
                missing: format!(
                    "a valid Cloud Controller URL (got {:?} from {}), e.g. https://api.sys.example.com",
                    creds.url, creds.source
                ),
            });
        }
        Ok(creds)
    }

    fn find_credentials(&self) -> Result<Credentials, DeployError> {
        let configured_token = self
            .config
            .token
            .as_deref()
            .filter(|t| !t.trim().is_empty());
        let cli_path = self.config.cf_home.as_deref().map(cli_config_path);
        let cli = match &cli_path {
            // With a configured token the cf CLI only lends its target
            // space, so a broken file of its own is no reason to fail.
            Some(path) if configured_token.is_some() => read_cli_config(path).ok().flatten(),
            Some(path) => read_cli_config(path)?,
            None => None,
        };
        let cli_space = cli
            .as_ref()
            .map(|c| c.space_fields.guid.clone())
            .filter(|g| !g.is_empty());
        let default_space = self.config.space_guid.clone().or(cli_space);
        if let Some(token) = configured_token {
            let url = self
                .config
                .url
                .clone()
                .ok_or_else(|| DeployError::NotConfigured {
                    backend: "cf",
                    missing: "[cf] url (PUSHFS_CF_URL) to go with the configured token".into(),
                })?;
            return Ok(Credentials {
                url,
                authorization: authorization_value(token),
                refresher: None,
                default_space,
                skip_tls_verification: false,
                source: "the configured token".into(),
            });
        }
        let not_configured = |why: String| {
            DeployError::NotConfigured {
            backend: "cf",
            missing: format!("[cf] url and token (PUSHFS_CF_URL, PUSHFS_CF_TOKEN), or a cf CLI login (`cf login`): {why}"),
        }
        };
        let (Some(cli), Some(path)) = (cli, cli_path) else {
            return Err(not_configured(match &self.config.cf_home {
                Some(home) => format!("no {}", cli_config_path(home).display()),
                None => "neither CF_HOME nor HOME is set".into(),
            }));
        };
        if cli.access_token.trim().is_empty() {
            return Err(not_configured(format!(
                "{} holds no login (run `cf login`)",
                path.display()
            )));
        }
        let url = match self.config.url.clone() {
            Some(url) => url,
            None if !cli.target.is_empty() => cli.target.clone(),
            None => {
                return Err(not_configured(format!(
                    "{} has no target (run `cf api`)",
                    path.display()
                )))
            }
        };
        Ok(Credentials {
            url,
            authorization: authorization_value(&cli.access_token),
            refresher: Refresher::from_cli(&cli),
            default_space,
            skip_tls_verification: cli.ssl_disabled,
            source: format!("the cf CLI login in {}", path.display()),
        })
    }

    fn http(&self, skip_tls_verification: bool) -> Result<reqwest::Client, DeployError> {
        // Each request carries its own total timeout; a client-wide read
        // timeout could fire while a large upload is still being written.
        let tls = super::http::TlsSettings {
            ca_file: self.config.ca_file.clone(),
            skip_validation: skip_tls_verification
                || self.config.skip_ssl_validation.unwrap_or(false),
        };
        super::http::client_builder_with(&tls)?
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| DeployError::Network(format!("cannot build the HTTP client: {err}")))
    }

    fn polling(&self) -> Polling {
        let timeout = self
            .config
            .job_timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(Polling::DEFAULT_TIMEOUT);
        Polling::with_timeout(timeout)
    }

    fn timing(&self) -> v3::Timing {
        let default = v3::Timing::default();
        let secs = |v: Option<u64>, d| v.map(Duration::from_secs).unwrap_or(d);
        v3::Timing {
            interval: self
                .config
                .poll_interval_ms
                .map(Duration::from_millis)
                .unwrap_or(default.interval),
            package_timeout: secs(self.config.job_timeout_secs, default.package_timeout),
            staging_timeout: secs(self.config.staging_timeout_secs, default.staging_timeout),
            startup_timeout: secs(self.config.startup_timeout_secs, default.startup_timeout),
        }
    }
}

#[async_trait]
impl Backend for CfClient {
    fn kind(&self) -> BackendKind {
        BackendKind::Cf
    }

    fn spec_files(&self) -> &'static [&'static str] {
        &["spec.json", "manifest.yml", "manifest.yaml"]
    }

    fn remote_name(&self, snapshot: &Snapshot) -> Option<String> {
        let plan = DeployPlan::new(snapshot).ok()?;
        let space = plan
            .space_guid
            .clone()
            .or_else(|| self.config.space_guid.clone())
            .unwrap_or_else(|| "the targeted space".into());
        let names: Vec<String> = plan
            .apps
            .iter()
            .map(|p| match &p.app {
                AppRef::Guid(guid) => format!("app {guid}"),
                AppRef::Name { name, .. } => format!("app {name} in space {space}"),
            })
            .collect();
        Some(names.join(", "))
    }

    fn ignore_profile(&self) -> IgnoreProfile {
        IgnoreProfile {
            ignore_files: &[".cfignore"],
            default_patterns: DEFAULT_IGNORE,
        }
    }

    async fn deploy(
        &self,
        snapshot: &Snapshot,
        _previous: &PreviousDeploy,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        // Everything local first: a bad spec or manifest sends nothing.
        report.state(DeployState::Packaging);
        let plan = DeployPlan::new(snapshot)?;
        if plan.spec_json_travels {
            report.log("cf: spec.json holds none of pushfs's keys: it is the app's own file and is packaged");
        }
        let creds = self.credentials()?;
        let span = tracing::info_span!("cf_deploy", app = %snapshot.app, digest = %snapshot.digest);
        self.deploy_with(snapshot, &plan, creds, report)
            .instrument(span)
            .await
    }
}

impl CfClient {
    /// The networked part of a deploy, after every local check passed:
    /// picks the API, then pushes through it.
    async fn deploy_with(
        &self,
        snapshot: &Snapshot,
        plan: &DeployPlan,
        creds: Credentials,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        report.log(&format!(
            "cf: {} at {} with {}",
            plan.named_by, creds.url, creds.source
        ));
        if creds.skip_tls_verification {
            report.log("cf: TLS certificates are not verified (the cf CLI target was set with --skip-ssl-validation)");
        }
        let http = self.http(creds.skip_tls_verification)?;
        // Packaging (the spec, the manifest) is done. From here on pushfs
        // waits on the server: the root document, the manifest, the app,
        // the resource match, then the upload itself; the zip of the files
        // the server lacks is written in between, as part of sending them.
        // A stall anywhere here must read as uploading, never as packaging.
        report.state(DeployState::Uploading);
        let session = CcSession::new(
            http.clone(),
            &creds.url,
            creds.authorization.clone(),
            creds.refresher.clone(),
            &self.tokens,
            report,
        );
        let default_space = creds.default_space.as_deref();
        let root = match self.config.api {
            ApiChoice::V2 => RootDocument::default(),
            ApiChoice::Auto => version::detect(&http, &creds.url).await?,
            // Only for the log-cache link: a v3 push goes on without it.
            ApiChoice::V3 => version::detect(&http, &creds.url).await.unwrap_or_default(),
        };
        let version = match self.config.api {
            ApiChoice::V2 => ApiVersion::V2,
            ApiChoice::V3 => ApiVersion::V3,
            ApiChoice::Auto => match root.version {
                Some(found) => {
                    report.log(&format!(
                        "cf: api auto: the root document {}",
                        match found {
                            ApiVersion::V2 => "offers no v3; using v2",
                            ApiVersion::V3 => "offers v3; using v3",
                        }
                    ));
                    found
                }
                None => ApiVersion::V2,
            },
        };
        if version == ApiVersion::V2 {
            match self
                .upload_v2(snapshot, plan, &session, default_space, report)
                .await
            {
                Err(err) if self.config.api == ApiChoice::Auto && api::is_v2_disabled(&err) => {
                    report.log("cf: api auto: V2 endpoints disabled; using v3");
                }
                other => return other,
            }
        }
        let route_urls = v3::RouteUrls {
            scheme: self
                .config
                .route_scheme
                .clone()
                .unwrap_or_else(|| v3::RouteUrls::default().scheme),
            port: self.config.route_port,
        };
        let push = v3::Push {
            session: &session,
            default_space,
            window: self.window,
            timing: self.timing(),
            report,
            strategy: plan.strategy.or(self.config.strategy).unwrap_or_default(),
            log_cache: root.log_cache,
            routes: route_urls,
            docker_password: self.config.docker_password.as_deref(),
            profile: self.ignore_profile(),
        };
        let outcome = push.run(snapshot, plan).await?;
        tracing::info!(app = %snapshot.app, guid = ?outcome.id, "cf v3 push finished");
        Ok(outcome)
    }

    /// The v2 flow: the bits only, as the seed did.
    /// v2 has no manifest to apply, no `path:`, and one app per upload.
    async fn upload_v2(
        &self,
        snapshot: &Snapshot,
        deploy: &DeployPlan,
        session: &CcSession<'_>,
        default_space: Option<&str>,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let [app] = deploy.apps.as_slice() else {
            return Err(DeployError::InvalidSpec(format!(
                "{} lists {} apps; the v2 API uploads one app's bits: set [cf] api = \"v3\" (or \"auto\")",
                deploy.named_by,
                deploy.apps.len()
            )));
        };
        if app.source != AppSource::Folder(String::new()) {
            return Err(DeployError::InvalidSpec(format!(
                "{} gives {:?} a path or a docker image, which the v2 API cannot push: set [cf] api = \"v3\" (or \"auto\")",
                deploy.named_by,
                app.label()
            )));
        }
        if deploy.manifest.is_some() {
            report.log("cf: v2: the manifest's settings and routes are not applied (v2 uploads bits only; v3 applies them)");
        }
        let profile = self.ignore_profile();
        let bits = AppBits::gather(snapshot, deploy, &app.source, &profile).await?;
        let plan = BitsPlan::new(bits.entries());
        let app_ref = &app.app;
        let (guid, how) = apps::resolve(session, app_ref, default_space).await?;
        report.id(&guid);
        report.log(&match (app_ref, how) {
            (AppRef::Name { name, .. }, Resolution::Found) => {
                format!("cf: app {name:?} is {guid}")
            }
            (AppRef::Name { name, .. }, Resolution::Created) => {
                format!("cf: created app {name:?} as {guid}")
            }
            _ => format!("cf: app {guid}"),
        });

        let candidates = plan.candidates(&self.window);
        let known = if candidates.is_empty() {
            Default::default()
        } else {
            match bits::match_resources(session, &candidates).await {
                Ok(known) => known,
                Err(err) => {
                    report.log(&format!(
                        "cf: resource match failed ({err}); uploading every file"
                    ));
                    Default::default()
                }
            }
        };
        let (matched, to_zip) = plan.split(&known, &self.window);
        let matched_bytes: u64 = matched.iter().map(|f| f.size).sum();
        report.log(&format!(
            "cf: {} files fingerprinted, {} asked about, {} already on the server ({} bytes not sent)",
            plan.fingerprints.len(),
            candidates.len(),
            matched.len(),
            matched_bytes
        ));
        let zip = bits::zip_if_needed(&to_zip, report).await?;
        let (status, body) = bits::upload(session, &guid, &matched, zip.as_ref(), report).await?;
        report.response(&body);
        let hash = zip.as_ref().map(|(_, summary)| summary.sha256.clone());
        drop(zip);
        let Some(job) = JobBody::from_upload(&body)? else {
            report.log(&format!("cf: bits stored synchronously (HTTP {status})"));
            return Ok(DeployOutcome {
                id: Some(guid),
                hash,
                revision: None,
                job: None,
                response: Some(body),
                warnings: Vec::new(),
            });
        };
        report.log(&format!(
            "cf: bits accepted (HTTP {status}), job {} {}",
            job.metadata.guid, job.entity.status
        ));
        job::report_status(report, &job.metadata.guid, &job.entity.status);
        let (final_job, last) = job::wait(session, job, self.polling(), report).await?;
        tracing::info!(app = %snapshot.app, %guid, "cf deploy finished");
        Ok(DeployOutcome {
            id: Some(guid),
            hash,
            revision: None,
            job: Some(final_job),
            response: Some(if last.is_null() { body } else { last }),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_and_cf_home_falls_back_to_home() {
        let mut c = CfConfig::default();
        c.apply_env(&env(&[
            ("PUSHFS_CF_URL", "https://api.x"),
            ("PUSHFS_CF_TOKEN", "t0ken"),
            ("PUSHFS_CF_SPACE_GUID", "s"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(c.url.as_deref(), Some("https://api.x"));
        assert_eq!(c.token.as_deref(), Some("t0ken"));
        assert_eq!(c.space_guid.as_deref(), Some("s"));
        assert_eq!(c.cf_home, Some(PathBuf::from("/home/u")));

        let mut c = CfConfig::default();
        c.apply_env(&env(&[("CF_HOME", "/cfh"), ("HOME", "/home/u")]));
        assert_eq!(c.cf_home, Some(PathBuf::from("/cfh")));

        let mut c = CfConfig {
            cf_home: Some("/from-file".into()),
            ..CfConfig::default()
        };
        c.apply_env(&env(&[("HOME", "/home/u")]));
        assert_eq!(
            c.cf_home,
            Some(PathBuf::from("/from-file")),
            "HOME does not override the file"
        );
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c = CfConfig {
            token: Some("bearer SECRET".into()),
            ..CfConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn config_file_keys() {
        let c: CfConfig = toml::from_str("url = \"https://api.x\"\ntoken = \"t\"\nspace_guid = \"s\"\ncf_home = \"/h\"\njob_timeout_secs = 60\n").unwrap();
        assert_eq!(c.job_timeout_secs, Some(60));
        assert!(toml::from_str::<CfConfig>("tokn = \"t\"").is_err());
    }

    #[test]
    fn api_choice_and_v3_timing_keys() {
        let c: CfConfig = toml::from_str(
            "api = \"v3\"\npoll_interval_ms = 500\nstaging_timeout_secs = 60\nstartup_timeout_secs = 30\n",
        )
        .unwrap();
        assert_eq!(c.api, ApiChoice::V3);
        let timing = CfClient::new(&c).timing();
        assert_eq!(timing.interval, Duration::from_millis(500));
        assert_eq!(timing.staging_timeout, Duration::from_secs(60));
        assert_eq!(timing.startup_timeout, Duration::from_secs(30));
        assert_eq!(timing.package_timeout, Duration::from_secs(900));
        assert!(toml::from_str::<CfConfig>("api = \"v4\"").is_err());

        let defaults = CfClient::new(&CfConfig::default()).timing();
        assert_eq!(defaults, v3::Timing::default());
        assert_eq!(defaults.interval, Duration::from_secs(3), "the cf CLI's");
        assert_eq!(defaults.startup_timeout, Duration::from_secs(300));
        assert_eq!(CfConfig::default().api, ApiChoice::Auto);

        let mut c = CfConfig::default();
        c.apply_env(&env(&[("PUSHFS_CF_API", "V2")]));
        assert_eq!(c.api, ApiChoice::V2);
    }

    #[test]
    fn a_pasted_url_loses_its_trailing_slash() {
        let client = CfClient::new(&CfConfig {
            token: Some("Bearer t".into()),
            url: Some(" https://api.example.com/ \n".into()),
            ..CfConfig::default()
        });
        let creds = client.credentials().unwrap();
        assert_eq!(creds.url, "https://api.example.com");
        assert_eq!(creds.authorization, "bearer t");
    }

    #[test]
    fn missing_credentials_say_what_to_set() {
        let tmp = tempfile::tempdir().unwrap();
        let client = CfClient::new(&CfConfig {
            cf_home: Some(tmp.path().to_path_buf()),
            ..CfConfig::default()
        });
        let err = client.credentials().err().unwrap();
        let text = err.to_string();
        assert!(
            text.contains("PUSHFS_CF_TOKEN") && text.contains("cf login"),
            "{text}"
        );

        let client = CfClient::new(&CfConfig {
            token: Some("t".into()),
            ..CfConfig::default()
        });
        let text = client.credentials().err().unwrap().to_string();
        assert!(text.contains("[cf] url"), "{text}");

        let client = CfClient::new(&CfConfig {
            token: Some("t".into()),
            url: Some("api.example.com".into()),
            ..CfConfig::default()
        });
        let err = client.credentials().err().unwrap();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("e.g. https://"), "{err}");
    }
}
