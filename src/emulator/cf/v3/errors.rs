//! The Cloud Controller's v3 errors: `{"errors":[{"detail","title","code"}]}`
//! in that key order, with the status from `errors/v2.yml` / `v3.yml`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::super::errors::CfApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3ApiError {
    pub status: StatusCode,
    /// `CF-<Name>`, or `UnknownError`.
    pub title: String,
    pub code: u32,
    pub detail: String,
}

#[derive(Serialize)]
struct Item<'a> {
    detail: &'a str,
    title: &'a str,
    code: u32,
}

#[derive(Serialize)]
struct Bodies<'a> {
    errors: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Item<'a>; 1],
}

impl V3ApiError {
    fn new(status: u16, name: &str, code: u32, detail: impl Into<String>) -> V3ApiError {
        V3ApiError {
            status: StatusCode::from_u16(status).expect("statuses come from the error catalogue"),
            title: format!("CF-{name}"),
            code,
            detail: detail.into(),
        }
    }

    pub fn body_text(&self) -> String {
        serde_json::to_string(&Body {
            errors: [Item {
                detail: &self.detail,
                title: &self.title,
                code: self.code,
            }],
        })
        .expect("plain structs serialize")
    }

    pub fn unprocessable(detail: &str) -> Self {
        Self::new(422, "UnprocessableEntity", 10008, detail)
    }
    /// `resource_not_found!(:package)` → `"Package not found"`.
    pub fn not_found(resource: &str) -> Self {
        Self::new(
            404,
            "ResourceNotFound",
            10010,
            format!("{resource} not found"),
        )
    }
    pub fn not_authorized() -> Self {
        Self::new(
            403,
            "NotAuthorized",
            10003,
            "You are not authorized to perform the requested action",
        )
    }
    pub fn bad_request(detail: &str) -> Self {
        Self::new(400, "BadRequest", 1004, format!("Bad request: {detail}"))
    }
    pub fn message_parse_error(detail: &str) -> Self {
        Self::new(
            400,
            "MessageParseError",
            1001,
            format!("Request invalid due to parse error: {detail}"),
        )
    }
    pub fn uniqueness(detail: &str) -> Self {
        Self::new(422, "UniquenessError", 10016, detail)
    }
    pub fn bits_already_uploaded() -> Self {
        Self::new(
            400,
            "PackageBitsAlreadyUploaded",
            150004,
            "Bits may be uploaded only once. Create a new package to upload different bits.",
        )
    }
    pub fn staging_in_progress() -> Self {
        Self::new(
            422,
            "StagingInProgress",
            170017,
            "Only one build can be STAGING at a time per application.",
        )
    }
    /// `FeatureDisabled` (403, 330002) for a feature flag that is off.
    pub fn feature_disabled(flag: &str) -> Self {
        Self::new(
            403,
            "FeatureDisabled",
            330002,
            format!("Feature Disabled: {flag}"),
        )
    }
    pub fn resource_not_found(detail: &str) -> Self {
        Self::new(404, "ResourceNotFound", 10010, detail)
    }
    /// The item of a job's `errors`: `{"detail","title","code"}`.
    pub fn item(&self) -> serde_json::Value {
        serde_json::json!({"detail": self.detail, "title": self.title, "code": self.code})
    }
    /// The same error with `prefix` before its detail (`error_prefix`).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.detail = format!("{prefix}{}", self.detail);
        self
    }
    pub fn unknown() -> Self {
        V3ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "UnknownError".into(),
            code: 10001,
            detail: "An unknown error occurred.".into(),
        }
    }
}

/// `CompoundError`: several errors in one body, with the first one's status.
pub struct V3Errors(pub Vec<V3ApiError>);

impl IntoResponse for V3Errors {
    fn into_response(self) -> Response {
        let status = self
            .0
            .first()
            .map_or(StatusCode::UNPROCESSABLE_ENTITY, |e| e.status);
        let items: Vec<Item> = self
            .0
            .iter()
            .map(|e| Item {
                detail: &e.detail,
                title: &e.title,
                code: e.code,
            })
            .collect();
        let body =
            serde_json::to_string(&Bodies { errors: items }).expect("plain structs serialize");
        (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// Auth failures and other shared errors keep their name, code and text.
impl From<CfApiError> for V3ApiError {
    fn from(err: CfApiError) -> V3ApiError {
        V3ApiError {
            status: err.status,
            title: err.error_code,
            code: err.code,
            detail: err.description,
        }
    }
}

impl IntoResponse for V3ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            self.body_text(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_cc_key_order() {
        assert_eq!(
            V3ApiError::not_found("Package").body_text(),
            "{\"errors\":[{\"detail\":\"Package not found\",\"title\":\"CF-ResourceNotFound\",\"code\":10010}]}"
        );
        let auth: V3ApiError = CfApiError::not_authenticated().into();
        assert_eq!(auth.title, "CF-NotAuthenticated");
        assert_eq!(auth.status, StatusCode::UNAUTHORIZED);
    }
}
