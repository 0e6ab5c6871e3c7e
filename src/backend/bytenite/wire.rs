//! ByteNite's JSON on the wire: `rpcStatus` errors, the `appApp` answer,
//! and scrubbing secrets out of anything shown to the user.

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

use crate::backend::http::HttpError;
use crate::backend::DeployError;

const REDACTED: &str = "<redacted>";
/// Longest piece of a non-JSON error body quoted in a message.
const QUOTE_MAX: usize = 300;

/// Very short values would blank out ordinary words.
const SECRET_MIN: usize = 4;

/// Replaces the configured secrets (API key, token) and the tokens learned
/// since, wherever they appear in text bound for logs, errors or status files.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl Redactor {
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let redactor = Redactor::default();
        for secret in secrets {
            redactor.learn(&secret);
        }
        redactor
    }

    /// Adds a secret obtained at run time (an exchanged access token).
    pub fn learn(&self, secret: &str) {
        let mut secrets = self.secrets.write();
        if secret.len() >= SECRET_MIN && !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
        }
    }

    pub fn text(&self, text: &str) -> String {
        self.secrets
            .read()
            .iter()
            .fold(text.to_string(), |acc, secret| {
                acc.replace(secret.as_str(), REDACTED)
            })
    }

    /// A response body for `.pushfs/response.json`: secrets scrubbed, and
    /// the registry token ByteNite echoes in `platformConfig.token` hidden.
    pub fn json(&self, value: &Value) -> Value {
        let mut value = self.json_strings(value);
        for config in ["platformConfig", "platform_config"] {
            if let Some(token) = value.get_mut(config).and_then(|c| c.get_mut("token")) {
                if token.as_str().is_some_and(|t| !t.is_empty()) {
                    *token = Value::String(REDACTED.into());
                }
            }
        }
        value
    }

    fn json_strings(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.json_strings(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.text(k), self.json_strings(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The fields of `appApp` pushfs keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedApp {
    pub id: String,
    pub hash: Option<String>,
    pub revision: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub status: Option<String>,
}

impl PushedApp {
    /// Reads a bare `appApp` (ByteNite's push answer); tolerates a wrapped
    /// `{"app": {...}}` too. int64 fields may be strings or integers. A
    /// field of another type is refused, not skipped: skipped, the status
    /// would keep the previous revision beside a new deploy.
    pub fn from_json(value: &Value) -> Result<PushedApp, DeployError> {
        let app = value.get("app").filter(|a| a.is_object()).unwrap_or(value);
        if !app.is_object() {
            return Err(DeployError::Protocol(format!(
                "the push answer is {}, not a JSON object (appApp)",
                json_kind(app)
            )));
        }
        let text = |key: &str| field(app, key, false);
        let int64 = |key: &str| field(app, key, true);
        let id = int64("id")?.ok_or_else(|| {
            DeployError::Protocol("the push was accepted but the answer has no app id".into())
        })?;
        Ok(PushedApp {
            id,
            hash: text("hash")?,
            revision: int64("revision")?,
            name: text("name")?,
            version: text("version")?,
            status: text("status")?,
        })
    }
}

/// `key` of the `appApp`: absent, null and "" are `None`; an integer is
/// taken where `int64` allows one (ByteNite's int64 travel as strings).
fn field(app: &Value, key: &str, int64: bool) -> Result<Option<String>, DeployError> {
    match app.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if int64 && (n.is_i64() || n.is_u64()) => Ok(Some(n.to_string())),
        Some(other) => Err(DeployError::Protocol(format!(
            "the push answer's \"{key}\" is {}, not {}; the deploy is not recorded",
            json_kind(other),
            if int64 {
                "a string or an integer"
            } else {
                "a string"
            }
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A transport failure with its causes (reqwest's own text is only "error
/// sending request"). The URL is left out: the log already names it.
pub fn network_error(err: reqwest::Error) -> DeployError {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    DeployError::Network(message)
}

/// A request that failed or was refused ([`HttpError`]): transport
/// failures keep their causes, a refused redirect stays final.
pub fn http_error(err: HttpError) -> DeployError {
    match err {
        HttpError::Transport(err) => network_error(err),
        refused => refused.into(),
    }
}

/// The body of a failed request as JSON if it is JSON, else as a string.
pub fn body_as_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(quote(body)))
}

/// Turns a non-2xx answer into the deploy error, with the server's message
/// from `rpcStatus {code, message}` when there is one.
pub fn error_from_response(status: u16, body: &[u8], redactor: &Redactor) -> DeployError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            let message = v.get("message").and_then(Value::as_str)?;
            let code = v.get("code").and_then(Value::as_i64);
            Some(match code.and_then(grpc_code_name) {
                Some(name) => format!("{message} ({name})"),
                None => message.to_string(),
            })
        })
        .unwrap_or_else(|| {
            let text = quote(body);
            if text.trim().is_empty() {
                "no error message".to_string()
            } else {
                text
            }
        });
    DeployError::from_status(status, redactor.text(&message))
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(QUOTE_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim().to_string()
}

/// gRPC status names, so `code 3` reads as what it means.
fn grpc_code_name(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "Cancelled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rpc_status_becomes_the_error_message() {
        let body = br#"{"code":3,"message":"manifest.json: name is missing","details":[]}"#;
        let err = error_from_response(400, body, &Redactor::default());
        assert!(!err.is_retryable());
        assert_eq!(
            err.to_string(),
            "the server rejected the deploy (HTTP 400): manifest.json: name is missing (InvalidArgument)"
        );
        let err = error_from_response(503, b"upstream down", &Redactor::default());
        assert!(err.is_retryable());
        assert!(err.to_string().contains("upstream down"));
        let err = error_from_response(502, b"", &Redactor::default());
        assert!(err.to_string().contains("no error message"));
    }

    #[test]
    fn secrets_are_scrubbed_everywhere() {
        let r = Redactor::new(["key-12345".to_string(), "abc".to_string()]);
        r.clone().learn("tok-6789");
        assert_eq!(
            r.text("bad key-12345 and tok-6789 abc"),
            "bad <redacted> and <redacted> abc"
        );
        let v = r.json(
            &json!({"a": ["key-12345"], "platformConfig": {"token": "dckr_pat", "container": "c"}}),
        );
        assert_eq!(
            v,
            json!({"a": ["<redacted>"], "platformConfig": {"token": "<redacted>", "container": "c"}})
        );
        let empty = r.json(&json!({"platformConfig": {"token": ""}}));
        assert_eq!(empty["platformConfig"]["token"], "");
        let err = error_from_response(
            401,
            br#"{"code":16,"message":"token key-12345 unknown"}"#,
            &r,
        );
        assert!(!err.to_string().contains("key-12345"));
    }

    #[test]
    fn app_answers_are_read_leniently() {
        let app = PushedApp::from_json(&json!({"id": "x", "hash": "h=", "revision": "2"})).unwrap();
        assert_eq!(app.revision.as_deref(), Some("2"));
        let app = PushedApp::from_json(&json!({"app": {"id": "y", "revision": 3}})).unwrap();
        assert_eq!((app.id.as_str(), app.revision.as_deref()), ("y", Some("3")));
        assert!(PushedApp::from_json(&json!({"name": "n"})).is_err());
        let app = PushedApp::from_json(&json!({"id": 7, "hash": null, "revision": ""})).unwrap();
        assert_eq!((app.id.as_str(), app.revision), ("7", None));
    }

    #[test]
    fn app_answers_of_the_wrong_types_are_refused() {
        for (answer, named) in [
            (
                json!({"id": "x", "revision": true}),
                "\"revision\" is a boolean",
            ),
            (
                json!({"id": "x", "revision": 2.5}),
                "\"revision\" is a number",
            ),
            (
                json!({"id": "x", "hash": 12}),
                "\"hash\" is a number, not a string",
            ),
            (json!({"id": {"v": 1}}), "\"id\" is an object"),
            (
                json!({"app": {"id": "x", "status": ["live"]}}),
                "\"status\" is an array",
            ),
            (json!(["x"]), "the push answer is an array"),
        ] {
            let err = PushedApp::from_json(&answer).unwrap_err();
            assert!(matches!(err, DeployError::Protocol(_)), "{err:?}");
            assert!(err.to_string().contains(named), "{err} names {named}");
        }
    }
}
