//! Which Cloud Controller API a deploy speaks: `[cf] api` (`auto`, `v2`,
//! `v3`), and for `auto` what the foundation's root document says.

use std::time::Duration;

use serde::Deserialize;

use crate::backend::DeployError;

/// `[cf] api`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiChoice {
    /// v2 while the foundation serves it, else v3.
    #[default]
    Auto,
    V2,
    V3,
}

impl ApiChoice {
    pub fn parse(text: &str) -> Option<ApiChoice> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(ApiChoice::Auto),
            "v2" => Some(ApiChoice::V2),
            "v3" => Some(ApiChoice::V3),
            _ => None,
        }
    }
}

/// The API a deploy uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V2,
    V3,
}

#[derive(Deserialize)]
struct Root {
    links: serde_json::Map<String, serde_json::Value>,
}

/// Reads `GET /` (anonymous). `Some(V3)` when it has `cloud_controller_v3`
/// but no `cloud_controller_v2` (the key is absent when
/// `cc.temporary_enable_v2` is off), `Some(V2)` when it has
/// `cloud_controller_v2`, `None` when there is no root document (404) or
/// it says neither (an old or unusual server: the caller tries v2 and
/// falls back on `V2 endpoints disabled`). Any other failure is the
/// server's error.
pub async fn detect(http: &reqwest::Client, base: &str) -> Result<Option<ApiVersion>, DeployError> {
    let url = format!("{}/", base.trim().trim_end_matches('/'));
    let request = http
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(Duration::from_secs(30));
    let response = crate::backend::http::send(request).await?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        // A root that fails (5xx, 429: retried) or refuses is the
        // server's problem; trying v2 behind it would only hide it.
        let retry_after = crate::backend::retry_after::from_headers(response.headers());
        let body = crate::backend::http::body(response).await?;
        return Err(super::api::error_for(status, &body).with_retry_after(retry_after));
    }
    let body = crate::backend::http::body(response).await?;
    let Ok(root) = serde_json::from_slice::<Root>(&body) else {
        return Ok(None);
    };
    Ok(version_of(&root.links))
}

fn version_of(links: &serde_json::Map<String, serde_json::Value>) -> Option<ApiVersion> {
    let has = |key: &str| links.get(key).is_some_and(|v| !v.is_null());
    if has("cloud_controller_v2") {
        Some(ApiVersion::V2)
    } else if has("cloud_controller_v3") {
        Some(ApiVersion::V3)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_document_decides() {
        let links = |v: serde_json::Value| v.as_object().unwrap().clone();
        let both = links(serde_json::json!({
            "cloud_controller_v2": {"href": "x/v2"},
            "cloud_controller_v3": {"href": "x/v3"}
        }));
        assert_eq!(version_of(&both), Some(ApiVersion::V2));
        let v3 = links(serde_json::json!({"cloud_controller_v3": {"href": "x/v3"}}));
        assert_eq!(version_of(&v3), Some(ApiVersion::V3));
        assert_eq!(version_of(&links(serde_json::json!({}))), None);
        assert_eq!(ApiChoice::parse(" V3 "), Some(ApiChoice::V3));
        assert_eq!(ApiChoice::parse("v4"), None);
    }
}
