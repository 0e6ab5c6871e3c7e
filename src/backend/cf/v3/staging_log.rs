//! The staging output of a build, read from log-cache as the cf CLI
//! reads it while it stages: `GET <log_cache>/api/v1/read/<app guid>`
//! with the same token, the `STG` lines since the build began.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;

use super::super::api::CcSession;
use crate::backend::DeployError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The most staging lines copied into the log.
pub const MAX_LINES: usize = 200;

#[derive(Deserialize)]
struct ReadAnswer {
    envelopes: Batch,
}

#[derive(Deserialize)]
struct Batch {
    #[serde(default)]
    batch: Vec<Envelope>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
    log: Option<LogLine>,
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    payload: String,
}

/// Nanoseconds since the epoch, as log-cache counts `start_time`.
pub fn nanos(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos()
}

/// The app's staging lines since `since`, the last [`MAX_LINES`] of them.
pub async fn read_staging(
    session: &CcSession<'_>,
    log_cache: &str,
    app_guid: &str,
    since: SystemTime,
) -> Result<Vec<String>, DeployError> {
    let url = format!("{log_cache}/api/v1/read/{app_guid}");
    let query = [
        ("envelope_types", "LOG".to_string()),
        ("start_time", nanos(since).to_string()),
        ("limit", "1000".to_string()),
    ];
    let (_, body) = session
        .send(|http| Ok(http.get(&url).query(&query).timeout(REQUEST_TIMEOUT)))
        .await?;
    let answer: ReadAnswer = serde_json::from_value(body)
        .map_err(|err| DeployError::Protocol(format!("log-cache answer: {err}")))?;
    let mut lines: Vec<String> = answer
        .envelopes
        .batch
        .into_iter()
        .filter(|e| e.tags.get("source_type").map(String::as_str) == Some("STG"))
        .filter_map(|e| e.log)
        .filter_map(|l| {
            base64::engine::general_purpose::STANDARD
                .decode(l.payload)
                .ok()
        })
        .map(|bytes| String::from_utf8_lossy(&bytes).trim_end().to_string())
        .collect();
    if lines.len() > MAX_LINES {
        lines.drain(..lines.len() - MAX_LINES);
    }
    Ok(lines)
}
