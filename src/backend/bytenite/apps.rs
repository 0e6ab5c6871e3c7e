//! ByteNite's app management calls by tag: activate, deactivate, status
//! and get (`/v1/dev/apps/{appTag}[/…]`), what `bytenite app activate|
//! deactivate|status|get` do.
//!
//! The request and answer shapes of activate, deactivate and status are not
//! public (docs/bytenite.md, "Activation"): pushfs sends `{}` to the POSTs,
//! as grpc-gateway expects of a body-less POST, and reads any JSON back.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::Value;

use super::auth::AccessToken;
use super::wire::{body_as_json, error_from_response, http_error};
use super::ByteniteClient;
use crate::backend::http::send;
use crate::backend::DeployError;

/// One small JSON request and its answer: a server silent this long is down.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The management calls pushfs makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AppCall {
    Activate,
    Deactivate,
    Status,
    Get,
}

impl AppCall {
    fn method(self) -> Method {
        match self {
            AppCall::Activate | AppCall::Deactivate => Method::POST,
            AppCall::Status | AppCall::Get => Method::GET,
        }
    }

    /// The path under the developer API, `@` left as it is: grpc-gateway
    /// does not unescape `%40` in every mode, but always takes a raw `@`.
    pub fn path(self, tag: &str) -> String {
        match self {
            AppCall::Activate => format!("/apps/{tag}/activate"),
            AppCall::Deactivate => format!("/apps/{tag}/deactivate"),
            AppCall::Status => format!("/apps/{tag}/status"),
            AppCall::Get => format!("/apps/{tag}"),
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            AppCall::Activate => "activate",
            AppCall::Deactivate => "deactivate",
            AppCall::Status => "status",
            AppCall::Get => "get",
        }
    }
}

/// A management answer that was not a success, kept with its body so the
/// deploy can show it in `response.json`.
#[derive(Debug)]
pub struct Refusal {
    pub error: DeployError,
    pub body: Option<Value>,
}

impl From<DeployError> for Refusal {
    fn from(error: DeployError) -> Self {
        Refusal { error, body: None }
    }
}

impl ByteniteClient {
    /// `POST /apps/{tag}/activate`: the app takes jobs. The answer's JSON.
    pub async fn activate(&self, tag: &str) -> Result<Value, DeployError> {
        self.app_call(AppCall::Activate, tag, &|_| {})
            .await
            .map_err(|r| r.error)
    }

    /// `POST /apps/{tag}/deactivate`: the app stops taking jobs.
    pub async fn deactivate(&self, tag: &str) -> Result<Value, DeployError> {
        self.app_call(AppCall::Deactivate, tag, &|_| {})
            .await
            .map_err(|r| r.error)
    }

    /// `GET /apps/{tag}/status`, as the server answers it.
    pub async fn app_status(&self, tag: &str) -> Result<Value, DeployError> {
        self.app_call(AppCall::Status, tag, &|_| {})
            .await
            .map_err(|r| r.error)
    }

    /// `GET /apps/{tag}`: `{"app": appApp}`.
    pub async fn get_app(&self, tag: &str) -> Result<Value, DeployError> {
        self.app_call(AppCall::Get, tag, &|_| {})
            .await
            .map_err(|r| r.error)
    }

    /// One management call with a token, renewed once if it is refused (401)
    /// and an API key can give another. `log` hears of renewals.
    pub(super) async fn app_call(
        &self,
        call: AppCall,
        tag: &str,
        log: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Value, Refusal> {
        let (api, tokens) = self.endpoints()?;
        let url = api.dev(&call.path(tag));
        let mut token = tokens
            .get(&self.http, api, &self.redactor, &|line| log(line))
            .await?;
        let mut renewed = false;
        loop {
            let (status, body) = self.send(call, &url, &token).await?;
            match status {
                200..=299 => return in_band(status, &self.shown_json(&body)),
                401 if !renewed && tokens.refused(&token) => {
                    log(&format!(
                        "{}: the access token was refused (HTTP 401); renewing it",
                        call.verb()
                    ));
                    renewed = true;
                    token = tokens
                        .get(&self.http, api, &self.redactor, &|line| log(line))
                        .await?;
                }
                _ => {
                    return Err(Refusal {
                        error: error_from_response(status, &body, &self.redactor),
                        body: Some(self.redactor.json(&body_as_json(&body))),
                    })
                }
            }
        }
    }

    async fn send(
        &self,
        call: AppCall,
        url: &str,
        token: &AccessToken,
    ) -> Result<(u16, bytes::Bytes), DeployError> {
        let mut request = self
            .http
            .request(call.method(), url)
            .header(AUTHORIZATION, token.value.as_str())
            .timeout(CALL_TIMEOUT);
        if call.method() == Method::POST {
            request = request.header(CONTENT_TYPE, "application/json").body("{}");
        }
        let response = send(request).await.map_err(http_error)?;
        let status = response.status().as_u16();
        let body = crate::backend::http::body(response)
            .await
            .map_err(http_error)?;
        Ok((status, body))
    }

    fn shown_json(&self, body: &[u8]) -> Value {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Value::Object(Default::default());
        }
        self.redactor.json(&body_as_json(body))
    }
}

/// A 2xx answer, unless it carries an in-band refusal: ByteNite's
/// `commonGenericResponse` has `ok` and `error {code, message}`.
fn in_band(status: u16, shown: &Value) -> Result<Value, Refusal> {
    let error_message = shown
        .get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty());
    let not_ok = shown.get("ok") == Some(&Value::Bool(false));
    if error_message.is_none() && !not_ok {
        return Ok(shown.clone());
    }
    let message = error_message
        .or_else(|| shown.get("message").and_then(Value::as_str))
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| shown.to_string());
    Err(Refusal {
        error: DeployError::Rejected { status, message },
        body: Some(shown.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_go_into_the_path_as_they_are() {
        assert_eq!(
            AppCall::Activate.path("hello@0.1"),
            "/apps/hello@0.1/activate"
        );
        assert_eq!(AppCall::Get.path("hello"), "/apps/hello");
        assert_eq!(AppCall::Status.method(), Method::GET);
    }

    #[test]
    fn a_generic_response_can_refuse_inside_a_200() {
        let ok = json!({"ok": true, "message": "activated", "error": null});
        assert!(in_band(200, &ok).is_ok());
        assert!(in_band(200, &json!({"status": "active"})).is_ok());
        let refused = json!({"ok": false, "error": {"code": 9, "message": "image not found"}});
        let err = in_band(200, &refused).unwrap_err();
        assert_eq!(
            err.error.to_string(),
            "the server rejected the deploy: image not found"
        );
        assert!(!err.error.is_retryable());
        let bare = in_band(200, &json!({"ok": false})).unwrap_err();
        assert!(bare.error.to_string().contains("ok"));
    }
}
