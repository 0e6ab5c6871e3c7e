//! Typed configuration, built once from the CLI, the config file and the
//! environment, then passed down. Nothing reads the environment elsewhere.
//!
//! The file is TOML (`~/.config/pushfs/config.toml` or `--config FILE`):
//! top-level keys for the mount, one table per backend. Each backend's
//! table is its own struct, defined beside its client.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use crate::backend::bytenite::ByteniteConfig;
use crate::backend::cf::CfConfig;
use crate::backend::flux::FluxConfig;
use crate::backend::http::{read_ca_file, TlsSettings};

/// The process environment, captured once in `main` (tests pass their own).
pub use crate::env::{parse_flag, Env, EnvError};

pub const DEFAULT_SETTLE: Duration = Duration::from_millis(1000);

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name} must be one of {choices}, got {value:?}")]
    BadChoice {
        name: &'static str,
        value: String,
        choices: &'static str,
    },
    #[error("{name} must be a whole number of milliseconds, got {value:?}")]
    BadNumber { name: &'static str, value: String },
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("[{section}] {source}")]
    Tls {
        section: &'static str,
        source: crate::backend::http::HttpError,
    },
}

/// Whether FUSE requests travel over io_uring (Linux 6.14+, with
/// `/sys/module/fuse/parameters/enable_uring` set to 1) or over /dev/fuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoUringMode {
    /// io_uring when the kernel allows it, else /dev/fuse.
    Auto,
    /// io_uring or no mount.
    On,
    /// Always /dev/fuse: the default, because pushfs's ring transport is
    /// still slower than /dev/fuse here (its ring threads hand each request
    /// on to another thread; BENCHMARKS.md has the figures).
    #[default]
    Off,
}

impl IoUringMode {
    pub fn parse(text: &str) -> Option<IoUringMode> {
        match text.trim() {
            "auto" => Some(IoUringMode::Auto),
            "on" => Some(IoUringMode::On),
            "off" => Some(IoUringMode::Off),
            _ => None,
        }
    }
}

/// How transient failures (5xx, 429, network) are retried: with
/// exponential backoff up to `max_backoff`, until `deadline` has passed
/// since the first failure of the content (or `attempts` ran out, if set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; `None`: only the deadline counts.
    pub attempts: Option<u32>,
    pub initial_backoff: Duration,
    /// The longest wait between attempts; caps `Retry-After` too.
    pub max_backoff: Duration,
    /// How long after the first failure pushfs keeps trying.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: None,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5 * 60),
            deadline: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff before attempt `attempt` (1-based; attempt 1 has none).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(2).min(16);
        self.initial_backoff
            .saturating_mul(1 << exp)
            .min(self.max_backoff)
    }

    /// The wait before attempt `next` after a retryable failure, or `None`
    /// when there is to be no such attempt: the attempts ran out, or it
    /// would start after the deadline. `failing_for` is the time since the
    /// first failure; `retry_after` is what the server asked for, which
    /// replaces the backoff, within `max_backoff`.
    pub fn next_wait(
        &self,
        next: u32,
        failing_for: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if self.attempts.is_some_and(|n| next > n) {
            return None;
        }
        let wait = retry_after
            .map(|w| w.min(self.max_backoff))
            .unwrap_or_else(|| self.backoff(next));
        (failing_for.saturating_add(wait) <= self.deadline).then_some(wait)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Blobs, manifests, deploy states (default `~/.local/share/pushfs`).
    pub state_dir: PathBuf,
    /// Quiet time after the last change before a deploy starts.
    pub settle: Duration,
    /// Let other users see the mount (needs `user_allow_other` for non-root).
    pub allow_other: bool,
    /// Let the kernel write files straight to disk (FUSE passthrough, root
    /// and Linux 6.9+); pushfs falls back to handling writes itself.
    pub passthrough: bool,
    /// How requests travel between the kernel and pushfs (`io_uring`).
    pub io_uring: IoUringMode,
    pub retry: RetryPolicy,
    /// How many deployed trees each app keeps for `rollback` (`[history] keep`).
    pub history_keep: usize,
    /// Start a new metadata database beside stored files whose database is
    /// gone (`--new-state`); they go to lost+found. Never from the file.
    pub new_state: bool,
    pub bytenite: ByteniteConfig,
    pub flux: FluxConfig,
    pub cf: CfConfig,
    /// What the user should hear about the configuration, once, when it is
    /// used (e.g. a config file holding secrets that others can read).
    pub warnings: Vec<String>,
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    state_dir: Option<PathBuf>,
    settle_ms: Option<u64>,
    allow_other: Option<bool>,
    passthrough: Option<bool>,
    io_uring: Option<IoUringMode>,
    #[serde(default)]
    retry: RetryFile,
    #[serde(default)]
    history: HistoryFile,
    #[serde(default)]
    bytenite: ByteniteConfig,
    #[serde(default)]
    flux: FluxConfig,
    #[serde(default)]
    cf: CfConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryFile {
    attempts: Option<u32>,
    /// A humantime duration: `24h`, `90m`, `1day 2h`.
    #[serde(default, with = "humantime_serde_opt")]
    deadline: Option<Duration>,
    initial_ms: Option<u64>,
    max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryFile {
    keep: Option<usize>,
}

/// Deployed trees kept per app when the config does not say.
pub const DEFAULT_HISTORY_KEEP: usize = 10;

impl Config {
    /// Reads `path` (or the default file if it exists), then applies the
    /// environment (`PUSHFS_*`). A missing default file is not an error.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<Config, ConfigError> {
        let home = env
            .get("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/root".into());
        let default_path = env
            .get("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"))
            .join("pushfs/config.toml");
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (default_path, false),
        };
        let mut warnings = Vec::new();
        let file = if required || path.exists() {
            let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file = toml::from_str::<ConfigFile>(&text).map_err(|e| ConfigError::Parse {
                path: path.clone(),
                message: e.message().to_string(),
            })?;
            if let Ok(meta) = fs::metadata(&path) {
                let mode = meta.permissions().mode();
                warnings.extend(exposed_secrets_warning(&path, mode, &file.secrets()));
            }
            file
        } else {
            ConfigFile::default()
        };
        let default_state = env
            .get("XDG_DATA_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".local/share"))
            .join("pushfs");
        let mut config = Config {
            state_dir: file.state_dir.unwrap_or(default_state),
            settle: file
                .settle_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_SETTLE),
            allow_other: file.allow_other.unwrap_or(false),
            passthrough: file.passthrough.unwrap_or(true),
            io_uring: file.io_uring.unwrap_or_default(),
            retry: RetryPolicy::default(),
            history_keep: file.history.keep.unwrap_or(DEFAULT_HISTORY_KEEP),
            new_state: false,
            bytenite: file.bytenite,
            flux: file.flux,
            cf: file.cf,
            warnings,
        };
        if let Some(n) = file.retry.attempts {
            config.retry.attempts = Some(n.max(1));
        }
        if let Some(ms) = file.retry.initial_ms {
            config.retry.initial_backoff = Duration::from_millis(ms);
        }
        if let Some(deadline) = file.retry.deadline {
            config.retry.deadline = deadline;
        }
        if let Some(ms) = file.retry.max_ms {
            config.retry.max_backoff = Duration::from_millis(ms);
        }
        config.apply_env(env)?;
        config.check_tls()?;
        let transport = config.transport_warnings();
        config.warnings.extend(transport);
        Ok(config)
    }

    /// Each backend's URL and TLS settings, by section name.
    fn endpoints(&self) -> [(&'static str, Option<&str>, TlsSettings); 3] {
        let cf = TlsSettings {
            ca_file: self.cf.ca_file.clone(),
            skip_validation: self.cf.skip_ssl_validation.unwrap_or(false),
        };
        let flux = TlsSettings {
            ca_file: self.flux.ca_file.clone(),
            skip_validation: self.flux.skip_ssl_validation.unwrap_or(false),
        };
        [
            (
                "bytenite",
                self.bytenite.url.as_deref(),
                self.bytenite.tls(),
            ),
            ("flux", self.flux.url.as_deref(), flux),
            ("cf", self.cf.url.as_deref(), cf),
        ]
    }

    /// A `ca_file` that cannot be used stops the mount here, not each
    /// deploy later.
    fn check_tls(&self) -> Result<(), ConfigError> {
        for (section, _, tls) in self.endpoints() {
            if let Some(path) = &tls.ca_file {
                read_ca_file(path).map_err(|source| ConfigError::Tls { section, source })?;
            }
        }
        Ok(())
    }

    /// What a mount should warn about: certificates not checked, and
    /// credentials sent in clear to another machine.
    pub fn transport_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (section, url, tls) in self.endpoints() {
            if tls.skip_validation {
                warnings.push(format!(
                    "[{section}] skip_ssl_validation = true: any TLS certificate is accepted, so \
                     anyone on the network path can read the credentials pushfs sends; prefer ca_file"
                ));
            }
            let Some(url) = url.and_then(|u| reqwest::Url::parse(u.trim()).ok()) else {
                continue;
            };
            if url.scheme() == "http" && !is_loopback(&url) {
                warnings.push(format!(
                    "[{section}] url {} is plain http:// to another machine: credentials and apps \
                     cross the network unencrypted; use https://",
                    crate::printable::printable(url.as_str())
                ));
            }
        }
        warnings
    }

    fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        if let Some(dir) = env.get("PUSHFS_STATE_DIR") {
            self.state_dir = dir.into();
        }
        if let Some(ms) = env.get("PUSHFS_SETTLE_MS") {
            let n = ms.parse().map_err(|_| ConfigError::BadNumber {
                name: "PUSHFS_SETTLE_MS",
                value: ms.clone(),
            })?;
            self.settle = Duration::from_millis(n);
        }
        if let Some(mode) = env.get("PUSHFS_IO_URING") {
            self.io_uring = IoUringMode::parse(mode).ok_or_else(|| ConfigError::BadChoice {
                name: "PUSHFS_IO_URING",
                value: mode.clone(),
                choices: "auto, on, off",
            })?;
        }
        self.bytenite.apply_env(env)?;
        self.flux.apply_env(env);
        self.cf.apply_env(env);
        Ok(())
    }

    /// A configuration with defaults and no backend credentials, for tests
    /// and the demo, rooted at `state_dir`.
    pub fn with_state_dir(state_dir: &Path) -> Config {
        Config {
            state_dir: state_dir.to_path_buf(),
            settle: DEFAULT_SETTLE,
            allow_other: false,
            passthrough: true,
            io_uring: IoUringMode::default(),
            retry: RetryPolicy::default(),
            history_keep: DEFAULT_HISTORY_KEEP,
            new_state: false,
            bytenite: ByteniteConfig::default(),
            flux: FluxConfig::default(),
            cf: CfConfig::default(),
            warnings: Vec::new(),
        }
    }
}

impl ConfigFile {
    /// The keys in the file that a reader of it could misuse: tokens, API
    /// keys, and the path of the Flux key file. The environment's do not count.
    fn secrets(&self) -> Vec<&'static str> {
        [
            ("[bytenite] api_key", self.bytenite.api_key.is_some()),
            ("[bytenite] token", self.bytenite.token.is_some()),
            ("[cf] token", self.cf.token.is_some()),
            (
                "[flux] private_key_file",
                self.flux.private_key_file.is_some(),
            ),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect()
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The warning for a config file at `path` with permission bits `mode` that
/// holds `secrets`, if group or others can get at it. Like the cf CLI and
/// ssh, pushfs still uses it (the Flux key file itself is refused instead).
pub fn exposed_secrets_warning(path: &Path, mode: u32, secrets: &[&str]) -> Option<String> {
    let mode = mode & 0o777;
    if secrets.is_empty() || mode & 0o077 == 0 {
        return None;
    }
    let shown = path.display();
    Some(format!(
        "config file {shown} holds {} and is accessible by group or others (mode {mode:04o}); run: chmod 600 {shown}",
        secrets.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(
            &path,
            "settle_ms = 250\nstate_dir = \"/x\"\n[retry]\nattempts = 2\n",
        )
        .unwrap();
        let env = Env::from([("PUSHFS_STATE_DIR".to_string(), "/y".to_string())]);
        let c = Config::load(Some(&path), &env).unwrap();
        assert_eq!(c.settle, Duration::from_millis(250));
        assert_eq!(c.state_dir, PathBuf::from("/y"));
        assert_eq!(c.retry.attempts, Some(2));
    }

    #[test]
    fn io_uring_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(&path, "io_uring = \"on\"\n").unwrap();
        let c = Config::load(Some(&path), &Env::new()).unwrap();
        assert_eq!(c.io_uring, IoUringMode::On);
        let off = Env::from([("PUSHFS_IO_URING".to_string(), "off".to_string())]);
        assert_eq!(
            Config::load(Some(&path), &off).unwrap().io_uring,
            IoUringMode::Off
        );
        let bad = Env::from([("PUSHFS_IO_URING".to_string(), "fast".to_string())]);
        let err = Config::load(Some(&path), &bad).unwrap_err();
        assert!(err.to_string().contains("auto, on, off"), "{err}");
        fs::write(&path, "io_uring = \"sometimes\"\n").unwrap();
        assert!(Config::load(Some(&path), &Env::new()).is_err());
        fs::write(&path, "settle_ms = 5\n").unwrap();
        let unset = Config::load(Some(&path), &Env::new()).unwrap();
        assert_eq!(unset.io_uring, IoUringMode::Off, "/dev/fuse unless asked");
    }

    #[test]
    fn bytenite_activate_from_the_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(&path, "[bytenite]\nactivate = true\n").unwrap();
        let c = Config::load(Some(&path), &Env::new()).unwrap();
        assert_eq!(c.bytenite.activate, Some(true));
        let off = Env::from([("PUSHFS_BYTENITE_ACTIVATE".to_string(), "off".to_string())]);
        let c = Config::load(Some(&path), &off).unwrap();
        assert_eq!(c.bytenite.activate, Some(false));
        let bad = Env::from([("PUSHFS_BYTENITE_ACTIVATE".to_string(), "maybe".to_string())]);
        let err = Config::load(Some(&path), &bad).unwrap_err();
        assert!(
            err.to_string().contains("PUSHFS_BYTENITE_ACTIVATE"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(&path, "setle_ms = 250\n").unwrap();
        let err = Config::load(Some(&path), &Env::new()).unwrap_err();
        assert!(err.to_string().contains("setle_ms"), "{err}");
    }

    #[test]
    fn missing_default_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from([("HOME".to_string(), dir.path().display().to_string())]);
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.state_dir, dir.path().join(".local/share/pushfs"));
        assert_eq!(c.settle, DEFAULT_SETTLE);
    }

    #[test]
    fn unchecked_certificates_and_clear_text_to_another_machine_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(
            &path,
            "[bytenite]\nurl = \"http://api.example.com\"\n\
             [flux]\nurl = \"http://127.0.0.1:16127\"\nskip_ssl_validation = true\n\
             [cf]\nurl = \"https://api.example.com\"\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let c = Config::load(Some(&path), &Env::new()).unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings[0].starts_with("[bytenite] url http://api.example.com/ is plain http://")
        );
        assert!(c.warnings[1].starts_with("[flux] skip_ssl_validation = true: any TLS certificate"));

        let loopback = Config {
            bytenite: ByteniteConfig {
                url: Some("http://localhost:8080".into()),
                ..ByteniteConfig::default()
            },
            cf: CfConfig {
                url: Some("http://[::1]:9000".into()),
                ..CfConfig::default()
            },
            ..Config::with_state_dir(dir.path())
        };
        assert!(loopback.transport_warnings().is_empty());
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_stops_the_mount() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let not_pem = dir.path().join("ca.pem");
        fs::write(&not_pem, "not a certificate\n").unwrap();
        for ca in [not_pem, dir.path().join("missing.pem")] {
            fs::write(
                &path,
                format!("[cf]\nca_file = {:?}\n", ca.display().to_string()),
            )
            .unwrap();
            let err = Config::load(Some(&path), &Env::new()).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("[cf] cannot use ca_file {}: ", ca.display())),
                "{message}"
            );
        }
    }

    #[test]
    fn a_config_open_to_others_with_secrets_is_worth_a_warning() {
        let path = Path::new("/home/me/.config/pushfs/config.toml");
        let warning = exposed_secrets_warning(path, 0o100644, &["[cf] token"]).unwrap();
        assert_eq!(
            warning,
            "config file /home/me/.config/pushfs/config.toml holds [cf] token and is accessible \
             by group or others (mode 0644); run: chmod 600 /home/me/.config/pushfs/config.toml"
        );
        assert!(exposed_secrets_warning(path, 0o640, &["[bytenite] api_key"]).is_some());
        assert_eq!(exposed_secrets_warning(path, 0o600, &["[cf] token"]), None);
        assert_eq!(exposed_secrets_warning(path, 0o400, &["[cf] token"]), None);
        assert_eq!(exposed_secrets_warning(path, 0o644, &[]), None);
    }

    #[test]
    fn loading_names_the_secrets_the_file_holds_never_their_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(
            &path,
            "[cf]\ntoken = \"bearer s3cret\"\n[bytenite]\napi_key = \"k3y\"\n\
             [flux]\nprivate_key_file = \"/k.wif\"\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let c = Config::load(Some(&path), &Env::new()).unwrap();
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        let warning = &c.warnings[0];
        for key in [
            "[bytenite] api_key",
            "[cf] token",
            "[flux] private_key_file",
        ] {
            assert!(warning.contains(key), "{warning}");
        }
        assert!(warning.contains(&format!("chmod 600 {}", path.display())));
        assert!(!warning.contains("s3cret") && !warning.contains("k3y"));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::load(Some(&path), &Env::new())
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn secrets_from_the_environment_do_not_make_an_open_file_suspect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        fs::write(
            &path,
            "settle_ms = 250\n[cf]\nurl = \"https://api.example.com\"\n",
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let env = Env::from([("PUSHFS_CF_TOKEN".to_string(), "bearer t".to_string())]);
        let c = Config::load(Some(&path), &env).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy {
            attempts: Some(10),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            deadline: Duration::from_secs(60),
        };
        assert_eq!(p.backoff(2), Duration::from_millis(100));
        assert_eq!(p.backoff(3), Duration::from_millis(200));
        assert_eq!(p.backoff(4), Duration::from_millis(350));
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: None,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
        }
    }

    #[test]
    fn retries_run_until_the_deadline_not_a_count() {
        let p = policy();
        assert_eq!(
            p.next_wait(40, Duration::from_secs(5), None),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            p.next_wait(40, Duration::from_millis(9_000), None),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            p.next_wait(40, Duration::from_millis(9_001), None),
            None,
            "past the deadline"
        );
        let counted = RetryPolicy {
            attempts: Some(3),
            ..p
        };
        assert!(counted.next_wait(3, Duration::ZERO, None).is_some());
        assert_eq!(counted.next_wait(4, Duration::ZERO, None), None);
    }

    #[test]
    fn retry_after_replaces_the_backoff_within_the_cap() {
        let p = policy();
        assert_eq!(
            p.next_wait(2, Duration::ZERO, Some(Duration::from_millis(700))),
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            p.next_wait(2, Duration::ZERO, Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(1)),
            "capped"
        );
    }

    #[test]
    fn the_deadline_is_read_as_a_human_duration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        fs::write(&path, "[retry]\ndeadline = \"90m\"\nmax_ms = 1000\n").unwrap();
        let c = Config::load(Some(&path), &Env::new()).unwrap();
        assert_eq!(c.retry.deadline, Duration::from_secs(90 * 60));
        assert_eq!(c.retry.attempts, None);
        assert_eq!(c.retry.max_backoff, Duration::from_secs(1));
        fs::write(&path, "[retry]\ndeadline = \"soon\"\n").unwrap();
        assert!(Config::load(Some(&path), &Env::new()).is_err());
    }
}

/// Reads an optional humantime duration (`"24h"`) from the config file.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(|err| serde::de::Error::custom(format!("{text:?} is not a duration: {err}")))
    }
}
