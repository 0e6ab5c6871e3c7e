//! Which Cloud Controller API a deploy speaks: `[cf] api` (`auto`, `v2`,
//! `v3`), and for `auto` what the foundation's root document says.

use std::time::Duration;

use serde::Deserialize;

use crate::backend::DeployError;

/// `[cf] api`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiChoice {
    /// v3 whenever the root document links it, v2 only where it does not.
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

/// What the root document (`GET /`) says about the foundation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootDocument {
    /// The API `auto` picks: v3 whenever linked, v2 only without it.
    pub version: Option<ApiVersion>,
    /// `links.log_cache.href`: where staging logs can be read.
    pub log_cache: Option<String>,
}

/// Reads `GET /` (anonymous). A 404, or a body that is not a root
/// document, says nothing: the caller tries v2 and falls back on
/// `V2 endpoints disabled`. A root that fails (5xx, 429: retried) or
/// refuses is the server's error; trying v2 behind it would hide it.
pub async fn detect(http: &reqwest::Client, base: &str) -> Result<RootDocument, DeployError> {
    let url = format!("{}/", base.trim().trim_end_matches('/'));
    let request = http
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(Duration::from_secs(30));
    let response = crate::backend::http::send(request).await?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(RootDocument::default());
    }
    if !status.is_success() {
        let retry_after = crate::backend::retry_after::from_headers(response.headers());
        let body = crate::backend::http::body(response).await?;
        return Err(super::api::error_for(status, &body).with_retry_after(retry_after));
    }
    let body = crate::backend::http::body(response).await?;
    let Ok(root) = serde_json::from_slice::<Root>(&body) else {
        return Ok(RootDocument::default());
    };
    Ok(RootDocument {
        version: version_of(&root.links),
        log_cache: root
            .links
            .get("log_cache")
            .and_then(|l| l.get("href"))
            .and_then(|h| h.as_str())
            .map(|h| h.trim_end_matches('/').to_string()),
    })
}

/// v3 whenever the foundation links it (every foundation since 2018);
/// v2 only where v3 is missing.
fn version_of(links: &serde_json::Map<String, serde_json::Value>) -> Option<ApiVersion> {
    let has = |key: &str| links.get(key).is_some_and(|v| !v.is_null());
    if has("cloud_controller_v3") {
        Some(ApiVersion::V3)
    } else if has("cloud_controller_v2") {
        Some(ApiVersion::V2)
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
        assert_eq!(version_of(&both), Some(ApiVersion::V3), "v3 wins");
        let v2 = links(serde_json::json!({"cloud_controller_v2": {"href": "x/v2"}}));
        assert_eq!(version_of(&v2), Some(ApiVersion::V2));
        let v3 = links(serde_json::json!({"cloud_controller_v3": {"href": "x/v3"}}));
        assert_eq!(version_of(&v3), Some(ApiVersion::V3));
        assert_eq!(version_of(&links(serde_json::json!({}))), None);
        assert_eq!(ApiChoice::parse(" V3 "), Some(ApiChoice::V3));
        assert_eq!(ApiChoice::parse("v4"), None);
    }
}
