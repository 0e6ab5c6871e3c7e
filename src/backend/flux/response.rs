//! Reading FluxOS answers: the `{status, data}` envelope, always HTTP 200.
//!
//! Success is `{"status":"success","data":…}`; failure is
//! `{"status":"error","data":{"code"?,"name","message"}}` with HTTP 200 too,
//! so the verdict comes from `status`, and retry-or-not from the message:
//! a node that is not synced, lacks peers or could not broadcast may do
//! better on the next attempt; everything else is final.

use serde_json::Value;

use crate::backend::DeployError;

/// Node-side conditions that pass (sync, peers, gossip), by message prefix.
const TRANSIENT: &[&str] = &[
    "Daemon not yet synced",
    "Sorry, This Flux does not have enough",
    "Unable to register application on the network",
    "Unable to update application on the network",
];

/// A node's answer, once its HTTP status and body are known.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Success(Value),
    /// The error's message, and its `code` if the node gave one (401 for sessions).
    Error {
        message: String,
        code: Option<u16>,
    },
}

/// Parses a body that came with HTTP `status`. Non-2xx answers (a proxy, an
/// injected fault) and non-envelope bodies become errors here.
pub fn parse(status: u16, body: &str) -> Result<(Answer, Value), DeployError> {
    let json: Option<Value> = serde_json::from_str(body).ok();
    if !(200..300).contains(&status) {
        let message = json
            .as_ref()
            .and_then(|v| {
                v.pointer("/data/message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| snippet(body));
        return Err(DeployError::from_status(status, message));
    }
    let Some(json) = json else {
        return Err(DeployError::Protocol(format!(
            "expected a JSON {{status, data}} answer, got: {}",
            snippet(body)
        )));
    };
    let answer = match json.get("status").and_then(Value::as_str) {
        // A success without `data` is no answer: read as null, a lookup
        // would take a registered app for an unregistered one.
        Some("success") => match json.get("data") {
            Some(data) => Answer::Success(data.clone()),
            None => {
                return Err(DeployError::Protocol(format!(
                    "a success answer without \"data\": {}",
                    snippet(body)
                )))
            }
        },
        Some("error") => {
            let data = json.get("data");
            let message = data
                .and_then(|d| d.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| data.and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| snippet(body));
            let code = data
                .and_then(|d| d.get("code"))
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok());
            Answer::Error { message, code }
        }
        _ => {
            return Err(DeployError::Protocol(format!(
                "answer has no status \"success\" or \"error\": {}",
                snippet(body)
            )))
        }
    };
    Ok((answer, json))
}

/// The deploy error for a node's `status: "error"`. The status reported is
/// the node's `code` when it gives one (401), else the HTTP status (200).
pub fn error_for(http_status: u16, message: String, code: Option<u16>) -> DeployError {
    let status = code.unwrap_or(http_status);
    if TRANSIENT.iter().any(|p| message.starts_with(p)) {
        DeployError::ServerFailed {
            status,
            message,
            retry_after: None,
        }
    } else {
        DeployError::Rejected { status, message }
    }
}

fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_error_envelopes() {
        let (a, _) = parse(200, r#"{"status":"success","data":"ab"}"#).unwrap();
        assert_eq!(a, Answer::Success(Value::String("ab".into())));
        let (a, _) = parse(
            200,
            r#"{"status":"error","data":{"code":401,"name":"Unauthorized","message":"Unauthorized. Access denied."}}"#,
        )
        .unwrap();
        assert_eq!(
            a,
            Answer::Error {
                message: "Unauthorized. Access denied.".into(),
                code: Some(401)
            }
        );
    }

    #[test]
    fn classification() {
        assert!(error_for(200, "Daemon not yet synced.".into(), None).is_retryable());
        assert!(error_for(
            200,
            "Unable to register application on the network. Try again later.".into(),
            None
        )
        .is_retryable());
        let e = error_for(200, "Flux App name can not start with flux".into(), None);
        assert!(matches!(e, DeployError::Rejected { status: 200, .. }));
        let e = error_for(200, "Unauthorized. Access denied.".into(), Some(401));
        assert!(matches!(e, DeployError::Rejected { status: 401, .. }));
    }

    #[test]
    fn http_failures_and_garbage() {
        let e = parse(
            503,
            r#"{"code":503,"message":"fault injected by the emulator"}"#,
        )
        .unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("fault injected"));
        assert!(matches!(
            parse(200, "<html>").unwrap_err(),
            DeployError::Protocol(_)
        ));
        assert!(matches!(
            parse(200, r#"{"ok":1}"#).unwrap_err(),
            DeployError::Protocol(_)
        ));
    }
}
