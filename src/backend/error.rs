//! The one error type every backend returns; it decides retry vs. final.

use std::time::Duration;

use thiserror::Error;

use super::http::HttpError;
use crate::printable::printable;
use crate::snapshot::SpecReadError;

/// Every message may quote a server (a spec check can name a server's
/// owner, a network error its TLS alert), so each is shown [`printable`].
#[derive(Debug, Error)]
pub enum DeployError {
    /// The app's spec is wrong; caught locally before anything is sent.
    #[error("{}", printable(.0))]
    InvalidSpec(String),
    /// A configuration key is missing, e.g. `[bytenite] api_key`.
    #[error("{backend} is not configured: {}", printable(missing))]
    NotConfigured {
        backend: &'static str,
        missing: String,
    },
    /// The server refused the request (4xx other than 429); final.
    #[error("the server rejected the deploy{}: {}", http_status(*status), printable(message))]
    Rejected { status: u16, message: String },
    /// 5xx or 429; retried with backoff, or after `retry_after` when the
    /// server sent a `Retry-After` header.
    #[error("the server failed (HTTP {status}): {}", printable(message))]
    ServerFailed {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Connection refused, reset, timed out; retried with backoff.
    #[error("network error: {}", printable(.0))]
    Network(String),
    /// A server-side job ended in failure (Cloud Foundry); final.
    #[error("the server's job failed: {}", printable(.0))]
    JobFailed(String),
    /// The server answered something we cannot understand; final.
    #[error("unexpected response from the server: {}", printable(.0))]
    Protocol(String),
    /// Reading the snapshot's blobs or a key file failed.
    #[error("local I/O error: {}", printable(&.0.to_string()))]
    Io(#[from] std::io::Error),
    /// The server accepted the deploy, but its fee was not paid in time (Flux); final.
    #[error("registration expired unpaid: {}", printable(.0))]
    ExpiredUnpaid(String),
    /// The app's paid time ran out, or it left the network: it no longer runs (Flux); final.
    #[error("the app expired: {0}")]
    AppExpired(String),
    /// The fee was paid below the price: the server keeps the message and
    /// does not run it (Flux); final.
    #[error("underpaid: {0}")]
    Underpaid(String),
    #[error("deploy cancelled (written to .pushfs/ctl)")]
    Cancelled,
    /// An answer pushfs will not act on: a redirect that would carry a
    /// credential elsewhere. Final: asking again gets the same answer.
    #[error("{}", printable(&.0.to_string()))]
    Untrusted(HttpError),
}

/// " (HTTP 422)"; nothing for a 2xx, as when FluxOS refuses inside a 200 envelope.
fn http_status(status: u16) -> String {
    if (200..300).contains(&status) {
        String::new()
    } else {
        format!(" (HTTP {status})")
    }
}

impl DeployError {
    /// Builds the error for a non-success HTTP status: 5xx and 429 are
    /// retryable, any other status is the server's final word.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let message = message.into();
        if status >= 500 || status == 429 {
            DeployError::ServerFailed {
                status,
                message,
                retry_after: None,
            }
        } else {
            DeployError::Rejected { status, message }
        }
    }

    /// Names the app of a folder that deploys several (`app "api": ...`),
    /// keeping what the error is: retryable stays retryable.
    pub fn in_app(self, app: &str) -> Self {
        let named = |m: String| format!("app {app:?}: {m}");
        match self {
            DeployError::InvalidSpec(m) => DeployError::InvalidSpec(named(m)),
            DeployError::Rejected { status, message } => DeployError::Rejected {
                status,
                message: named(message),
            },
            DeployError::ServerFailed {
                status,
                message,
                retry_after,
            } => DeployError::ServerFailed {
                status,
                message: named(message),
                retry_after,
            },
            DeployError::Network(m) => DeployError::Network(named(m)),
            DeployError::JobFailed(m) => DeployError::JobFailed(named(m)),
            DeployError::Protocol(m) => DeployError::Protocol(named(m)),
            other => other,
        }
    }

    /// Adds the server's `Retry-After` wait to a retryable server failure.
    pub fn with_retry_after(self, wait: Option<Duration>) -> Self {
        match self {
            DeployError::ServerFailed {
                status, message, ..
            } => DeployError::ServerFailed {
                status,
                message,
                retry_after: wait,
            },
            other => other,
        }
    }

    /// How long the server asked us to wait before trying again, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeployError::ServerFailed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The server's final word on this content (a 4xx other than 429):
    /// sending the same content again would be refused again.
    pub fn is_refusal(&self) -> bool {
        matches!(self, DeployError::Rejected { .. })
    }

    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DeployError::ServerFailed { .. } | DeployError::Network(_)
        )
    }
}

/// A spec too big or excluded by an ignore file is the spec's problem,
/// said in the user's words; only a failed read is an I/O error.
impl From<SpecReadError> for DeployError {
    fn from(err: SpecReadError) -> Self {
        match err {
            SpecReadError::Io { ref source, .. } => {
                DeployError::Io(std::io::Error::new(source.kind(), err.to_string()))
            }
            refused => DeployError::InvalidSpec(refused.to_string()),
        }
    }
}

impl From<HttpError> for DeployError {
    fn from(err: HttpError) -> Self {
        match err {
            HttpError::Transport(err) => err.into(),
            untrusted => DeployError::Untrusted(untrusted),
        }
    }
}

impl From<reqwest::Error> for DeployError {
    fn from(err: reqwest::Error) -> Self {
        if let Some(location) = super::http::cross_origin_location(&err) {
            return DeployError::Untrusted(HttpError::CrossOrigin { location });
        }
        // reqwest's Display can include the URL but never headers, so no token leaks.
        DeployError::Network(err.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_decide_retry() {
        assert!(DeployError::from_status(503, "x").is_retryable());
        assert!(DeployError::from_status(429, "x").is_retryable());
        assert!(!DeployError::from_status(400, "x").is_retryable());
        assert!(!DeployError::from_status(401, "x").is_retryable());
    }

    #[test]
    fn a_refusal_inside_a_success_envelope_shows_no_status() {
        let err = DeployError::Rejected {
            status: 200,
            message: "stale".into(),
        };
        assert_eq!(err.to_string(), "the server rejected the deploy: stale");
        assert!(DeployError::from_status(422, "x")
            .to_string()
            .contains("(HTTP 422)"));
    }

    #[test]
    fn a_refused_spec_is_the_spec_s_problem_and_a_failed_read_is_io() {
        let big: DeployError = SpecReadError::TooBig {
            path: "spec.json".into(),
            size: 52_428_800,
        }
        .into();
        assert!(matches!(big, DeployError::InvalidSpec(_)), "{big:?}");
        assert_eq!(
            big.to_string(),
            "spec.json is 52428800 bytes; a spec or manifest may have at most 1048576 (1 MiB)"
        );
        let gone: DeployError = SpecReadError::Io {
            path: "spec.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .into();
        assert!(matches!(gone, DeployError::Io(_)), "{gone:?}");
        assert!(gone
            .to_string()
            .starts_with("local I/O error: cannot read spec.json: "));
    }
}
