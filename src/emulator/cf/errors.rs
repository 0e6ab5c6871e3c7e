//! The Cloud Controller's v2 errors: `{"description","error_code","code"}`
//! in that key order plus a newline, with the status from `errors/v2.yml`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One v2 error as the emulator answers it (and stores it in a failed job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CfApiError {
    pub status: StatusCode,
    /// `CF-<Name>`, or `UnknownError` (the one code without the prefix).
    pub error_code: String,
    pub code: u32,
    pub description: String,
}

#[derive(Serialize)]
struct V2Body<'a> {
    description: &'a str,
    error_code: &'a str,
    code: u32,
}

/// The unknown-error hash keeps CC's own key order.
#[derive(Serialize)]
struct UnknownBody<'a> {
    error_code: &'a str,
    description: &'a str,
    code: u32,
}

impl CfApiError {
    fn new(status: u16, name: &str, code: u32, description: impl Into<String>) -> CfApiError {
        CfApiError {
            status: StatusCode::from_u16(status).expect("statuses come from errors/v2.yml"),
            error_code: format!("CF-{name}"),
            code,
            description: description.into(),
        }
    }

    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "description": self.description,
            "error_code": self.error_code,
            "code": self.code,
        })
    }

    fn body_text(&self) -> String {
        let text = if self.error_code == "UnknownError" {
            serde_json::to_string(&UnknownBody {
                error_code: &self.error_code,
                description: &self.description,
                code: self.code,
            })
        } else {
            serde_json::to_string(&V2Body {
                description: &self.description,
                error_code: &self.error_code,
                code: self.code,
            })
        };
        text.expect("plain structs serialize") + "\n"
    }

    pub fn invalid_auth_token() -> Self {
        Self::new(401, "InvalidAuthToken", 1000, "Invalid Auth Token")
    }
    pub fn message_parse_error(detail: &str) -> Self {
        Self::new(
            400,
            "MessageParseError",
            1001,
            format!("Request invalid due to parse error: {detail}"),
        )
    }
    pub fn not_found() -> Self {
        Self::new(404, "NotFound", 10000, "Unknown request")
    }
    pub fn not_authenticated() -> Self {
        Self::new(401, "NotAuthenticated", 10002, "Authentication error")
    }
    pub fn not_authorized() -> Self {
        Self::new(
            403,
            "NotAuthorized",
            10003,
            "You are not authorized to perform the requested action",
        )
    }
    pub fn bad_query_parameter(detail: &str) -> Self {
        Self::new(
            400,
            "BadQueryParameter",
            10005,
            format!("The query parameter is invalid: {detail}"),
        )
    }
    pub fn insufficient_scope() -> Self {
        Self::new(
            403,
            "InsufficientScope",
            10007,
            "Your token lacks the necessary scopes to access this resource.",
        )
    }
    pub fn unprocessable_entity(detail: &str) -> Self {
        Self::new(422, "UnprocessableEntity", 10008, detail)
    }
    pub fn app_name_taken(name: &str) -> Self {
        Self::new(
            400,
            "AppNameTaken",
            100002,
            format!("The app name is taken: {name}"),
        )
    }
    pub fn app_not_found(guid: &str) -> Self {
        Self::new(
            404,
            "AppNotFound",
            100004,
            format!("The app could not be found: {guid}"),
        )
    }
    pub fn app_package_invalid(detail: &str) -> Self {
        Self::new(
            400,
            "AppPackageInvalid",
            150001,
            format!("The app package is invalid: {detail}"),
        )
    }
    pub fn blobstore_error() -> Self {
        Self::new(
            500,
            "BlobstoreError",
            150007,
            "Failed to perform blobstore operation after three retries.",
        )
    }
    pub fn resource_checksum_mismatch() -> Self {
        Self::new(
            500,
            "ResourceChecksumMismatch",
            150010,
            "One or more cached resources did not match the given checksum. They have been deleted; please retry package upload.",
        )
    }
    pub fn app_bits_upload_invalid(detail: &str) -> Self {
        Self::new(
            400,
            "AppBitsUploadInvalid",
            160001,
            format!("The app upload is invalid: {detail}"),
        )
    }
    pub fn file_mode_invalid(raw: &str, path: &str) -> Self {
        Self::new(
            400,
            "AppResourcesFileModeInvalid",
            160003,
            format!("The resource file mode is invalid: File mode '{raw}' with path '{path}' is invalid. Minimum file mode is '0600'"),
        )
    }
    pub fn file_path_invalid(path: &str) -> Self {
        Self::new(
            400,
            "AppResourcesFilePathInvalid",
            160004,
            format!("The resource file path is invalid: File path '{path}' is not safe."),
        )
    }
    pub fn unknown() -> Self {
        CfApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_code: "UnknownError".into(),
            code: 10001,
            description: "An unknown error occurred.".into(),
        }
    }
}

impl IntoResponse for CfApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
            self.body_text(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_cc_key_order_and_end_in_a_newline() {
        assert_eq!(
            CfApiError::app_not_found("g").body_text(),
            "{\"description\":\"The app could not be found: g\",\"error_code\":\"CF-AppNotFound\",\"code\":100004}\n"
        );
        assert_eq!(
            CfApiError::unknown().body_text(),
            "{\"error_code\":\"UnknownError\",\"description\":\"An unknown error occurred.\",\"code\":10001}\n"
        );
        assert_eq!(
            CfApiError::not_authenticated().status,
            StatusCode::UNAUTHORIZED
        );
    }
}
