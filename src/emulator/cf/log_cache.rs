//! log-cache's read API on the emulator itself (the root document's
//! `log_cache` link points here): `GET /api/v1/read/:source_id` with the
//! API's bearer token, LOG envelopes between `start_time` (inclusive) and
//! `end_time` (exclusive), oldest first unless `descending`, at most
//! `limit` (100 unless told, 1000 at most); and `GET /api/v1/info`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use super::auth::authenticate;
use super::CfEmulator;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

pub(super) async fn info() -> Json<Value> {
    Json(json!({"version": "3.0.0", "vm_uptime": "0"}))
}

pub(super) async fn read(
    State(emu): State<Arc<CfEmulator>>,
    Path(source_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let state = emu.state.lock();
    let Ok(caller) = authenticate(&state.tokens, &headers, Duration::ZERO) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized");
    };
    if !caller.can_read() || !state.apps.contains_key(&source_id) {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str| param(key).map(|v| v.parse::<i64>());
    let start = match number("start_time") {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "start_time must be a number"),
    };
    let end = match number("end_time") {
        None => i64::MAX,
        Some(Ok(n)) => n,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "end_time must be a number"),
    };
    let limit = match number("limit") {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n as usize,
        Some(_) => return error(StatusCode::BAD_REQUEST, "limit must be between 1 and 1000"),
    };
    let descending = param("descending") == Some("true");
    let types: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "envelope_types")
        .map(|(_, v)| v.as_str())
        .collect();
    let wants_logs = types.is_empty()
        || types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("LOG") || *t == "ANY");
    let mut lines: Vec<_> = state
        .logs
        .iter()
        .filter(|l| wants_logs && l.source_id == source_id)
        .filter(|l| l.timestamp_ns >= start && l.timestamp_ns < end)
        .collect();
    if descending {
        lines.reverse();
    }
    lines.truncate(limit);
    let batch: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "timestamp": l.timestamp_ns.to_string(),
                "source_id": l.source_id,
                "instance_id": "0",
                "deprecated_tags": {},
                "tags": {"source_type": l.source_type},
                "log": {
                    "payload": base64::engine::general_purpose::STANDARD.encode(&l.text),
                    "type": l.stream,
                },
            })
        })
        .collect();
    Json(json!({"envelopes": {"batch": batch}})).into_response()
}
