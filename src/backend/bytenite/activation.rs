//! The step after a push when the app asks for it (`"activate": true`) or
//! the configuration does: activate the version just pushed, as
//! `bytenite app activate` does, then read its status back.
//!
//! A refusal (4xx) fails the deploy with the server's message. A 5xx or a
//! network error is retried by the deploy layer like a push; so the retry
//! does not push the same tree again (one more revision for nothing),
//! [`PendingActivations`] remembers pushes whose activation is still owed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::apps::{AppCall, Refusal};
use super::ByteniteClient;
use crate::backend::{DeployError, DeployOutcome, Report};

/// How long a push whose activation failed stays good for a retry that
/// only activates. Longer than any retry schedule; after it, push again.
const PENDING_FOR: Duration = Duration::from_secs(15 * 60);

/// What activation left for the status files.
#[derive(Debug, Clone, PartialEq)]
pub struct Activated {
    /// The status answer (or the app record it fell back to): `response.json`.
    pub response: Value,
    /// The status word read back, e.g. `active`.
    pub status: Option<String>,
    pub warnings: Vec<String>,
}

/// Activates `tag` and reads its status; logs each step.
pub(super) async fn activate(
    client: &ByteniteClient,
    tag: &str,
    revision: &str,
    report: &dyn Report,
) -> Result<Activated, DeployError> {
    let log = |line: &str| client.log(report, line);
    let (api, _) = client.endpoints()?;
    log(&format!(
        "activate: POST {}",
        api.dev(&AppCall::Activate.path(tag))
    ));
    match client.app_call(AppCall::Activate, tag, &log).await {
        Ok(answer) => {
            let said = answer
                .get("message")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            log(&format!("activated {tag}{said}"));
        }
        Err(Refusal { error, body }) => {
            if let Some(body) = body {
                report.response(&body);
            }
            return Err(activation_failed(error, tag, revision));
        }
    }

    let mut warnings = Vec::new();
    let (response, status) = match read_status(client, tag, &log).await {
        Ok(found) => found,
        Err(err) => {
            let warning = format!("{tag} was activated, but its status could not be read: {err}");
            log(&format!("warning: {warning}"));
            warnings.push(warning);
            (Value::Null, None)
        }
    };
    match status.as_deref() {
        Some(word) if word.eq_ignore_ascii_case("active") => {
            log(&format!("status of {tag}: {word}"))
        }
        Some(word) => {
            let warning =
                format!("{tag} was activated, but the server reports its status as {word:?}");
            log(&format!("warning: {warning}"));
            warnings.push(warning);
        }
        None if response.is_null() => {}
        None => log(&format!("status of {tag}: the answer names no status")),
    }
    Ok(Activated {
        response,
        status,
        warnings,
    })
}

/// `GET /apps/{tag}/status`; if the server has no such route (404, 501),
/// the `status` of `GET /apps/{tag}`, as the fact sheet suggests.
async fn read_status(
    client: &ByteniteClient,
    tag: &str,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<(Value, Option<String>), DeployError> {
    match client.app_call(AppCall::Status, tag, log).await {
        Ok(answer) => {
            let status = status_word(&answer);
            Ok((answer, status))
        }
        Err(Refusal {
            error: DeployError::Rejected { status: 404, .. },
            ..
        })
        | Err(Refusal {
            error: DeployError::ServerFailed { status: 501, .. },
            ..
        }) => {
            log("status: no status route; reading the app record instead");
            let answer = client
                .app_call(AppCall::Get, tag, log)
                .await
                .map_err(|r| r.error)?;
            let status = status_word(&answer);
            Ok((answer, status))
        }
        Err(refusal) => Err(refusal.error),
    }
}

/// `status` at the top (`{"status": "active"}`) or in an app record
/// (`{"app": {"status": …}}`); the answer's shape is not documented.
pub fn status_word(answer: &Value) -> Option<String> {
    let word = |v: &Value| {
        v.get("status")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    word(answer).or_else(|| answer.get("app").and_then(word))
}

/// The error a failed activation fails the deploy with: the server's words,
/// and that the push itself went through.
fn activation_failed(error: DeployError, tag: &str, revision: &str) -> DeployError {
    let context = |message: String| {
        format!(
            "activating {tag} failed: {message} (the push itself succeeded: revision {revision})"
        )
    };
    match error {
        DeployError::Rejected { status, message } => DeployError::Rejected {
            status,
            message: context(message),
        },
        DeployError::ServerFailed {
            status,
            message,
            retry_after,
        } => DeployError::ServerFailed {
            status,
            message: context(message),
            retry_after,
        },
        DeployError::Network(message) => DeployError::Network(context(message)),
        other => other,
    }
}

/// Pushes whose activation is still owed, by app and tree digest.
#[derive(Default)]
pub struct PendingActivations {
    pushes: Mutex<HashMap<String, (Instant, DeployOutcome)>>,
}

impl PendingActivations {
    pub fn remember(&self, key: &str, pushed: DeployOutcome) {
        let mut pushes = self.pushes.lock();
        pushes.retain(|_, (at, _)| at.elapsed() < PENDING_FOR);
        pushes.insert(key.to_string(), (Instant::now(), pushed));
    }

    /// The push of exactly this tree, if its activation is still owed.
    pub fn take(&self, key: &str) -> Option<DeployOutcome> {
        self.pushes
            .lock()
            .remove(key)
            .filter(|(at, _)| at.elapsed() < PENDING_FOR)
            .map(|(_, pushed)| pushed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_status_word_is_found_at_the_top_or_in_the_app() {
        assert_eq!(
            status_word(&json!({"status": "active"})).as_deref(),
            Some("active")
        );
        assert_eq!(
            status_word(&json!({"app": {"status": "inactive"}})).as_deref(),
            Some("inactive")
        );
        assert_eq!(status_word(&json!({"ok": true})), None);
    }

    #[test]
    fn failures_keep_their_class_and_say_the_push_went_through() {
        let refused = activation_failed(DeployError::from_status(400, "no"), "a@0.1", "3");
        assert!(!refused.is_retryable());
        assert!(
            refused
                .to_string()
                .contains("activating a@0.1 failed: no (the push itself succeeded: revision 3)"),
            "{refused}"
        );
        assert!(
            activation_failed(DeployError::from_status(503, "busy"), "a@0.1", "3").is_retryable()
        );
        assert!(
            activation_failed(DeployError::Network("reset".into()), "a@0.1", "3").is_retryable()
        );
    }

    #[test]
    fn a_pending_push_is_taken_once() {
        let pending = PendingActivations::default();
        let pushed = DeployOutcome {
            revision: Some("2".into()),
            ..DeployOutcome::default()
        };
        pending.remember("app\nd1", pushed.clone());
        assert_eq!(pending.take("app\nd2"), None);
        assert_eq!(pending.take("app\nd1"), Some(pushed));
        assert_eq!(pending.take("app\nd1"), None);
    }
}
