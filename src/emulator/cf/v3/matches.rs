//! `POST /v3/resource_matches`: validation as `ResourceMatchCreateMessage`
//! does it, then the pool's rules (size strictly inside the window, a mode
//! of at least 0600, SHA-1 looked up lowercase). Answers 201 with the
//! matched subset, each echoed as sent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::auth::authenticate;
use super::super::pool::ruby_octal;
use super::super::{CfEmulator, CfFault, MatchRecord};
use super::errors::V3ApiError;

/// The distinct validation messages for `resources`, in CC's order.
fn validate(resources: &Value) -> Result<&Vec<Value>, V3ApiError> {
    let Some(list) = resources.as_array() else {
        return Err(V3ApiError::unprocessable("Resources must be an array"));
    };
    if list.is_empty() {
        return Err(V3ApiError::unprocessable(
            "Resources must have at least 1 resource",
        ));
    }
    if list.len() > 5000 {
        return Err(V3ApiError::unprocessable(
            "Resources array can have at most 5000 resources",
        ));
    }
    let mut messages: Vec<&str> = Vec::new();
    let mut add = |m: &'static str| {
        if !messages.contains(&m) {
            messages.push(m);
        }
    };
    for r in list {
        match r.get("checksum") {
            Some(Value::Object(c)) => match c.get("value") {
                Some(Value::String(v)) if v.len() == 40 => {}
                Some(Value::String(_)) => {
                    add("Resources array contains at least one resource with a non-SHA1 checksum value")
                }
                _ => add("Resources array contains at least one resource with a non-string checksum value"),
            },
            _ => add("Resources array contains at least one resource with a non-object checksum"),
        }
        match r.get("size_in_bytes") {
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
                if n.as_i64().is_some_and(|v| v < 0) {
                    add("Resources array contains at least one resource with a negative size_in_bytes");
                }
            }
            _ => add(
                "Resources array contains at least one resource with a non-integer size_in_bytes",
            ),
        }
        match r.get("mode") {
            None => {}
            Some(Value::String(m))
                if !m.is_empty() && m.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {}
            Some(Value::String(_)) => {
                add("Resources array contains at least one resource with an incorrect mode")
            }
            Some(_) => add("Resources array contains at least one resource with a non-string mode"),
        }
    }
    if messages.is_empty() {
        Ok(list)
    } else {
        Err(V3ApiError::unprocessable(&messages.join(", ")))
    }
}

pub(super) async fn create(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V3ApiError> {
    let mut state = emu.state.lock();
    let caller = authenticate(&state.tokens, &headers, Duration::ZERO)?;
    if !caller.can_write() {
        return Err(V3ApiError::not_authorized());
    }
    if state.take_fault(CfFault::FailNextMatch) {
        return Err(V3ApiError::unknown());
    }
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| V3ApiError::message_parse_error(&err.to_string()))?;
    let resources = request.get("resources").cloned().unwrap_or(Value::Null);
    let list = validate(&resources)?;
    let (min, max) = (state.settings.pool_min_size, state.settings.pool_max_size);
    let matching = state.settings.resource_matching;
    let answer: Vec<Value> = list
        .iter()
        .filter(|_| matching)
        .filter(|r| {
            let size = r.get("size_in_bytes").and_then(Value::as_u64).unwrap_or(0);
            let mode_ok = r
                .get("mode")
                .and_then(Value::as_str)
                .is_some_and(|m| ruby_octal(m) >= 0o600);
            let sha1 = r
                .pointer("/checksum/value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_ascii_lowercase();
            size > min && size < max && mode_ok && state.pool.contains_key(&sha1)
        })
        .map(|r| {
            json!({
                "checksum": {"value": r.pointer("/checksum/value")},
                "size_in_bytes": r.get("size_in_bytes"),
                "path": r.get("path"),
                "mode": r.get("mode"),
            })
        })
        .collect();
    state.matches.push(MatchRecord {
        asked: list
            .iter()
            .map(|r| {
                r.get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .collect(),
        matched: answer.len(),
    });
    if state.take_fault(CfFault::EvictPoolAfterNextMatch) {
        for sha1 in std::mem::take(&mut state.pool).into_keys() {
            let _ = std::fs::remove_file(emu.pool_path(&sha1));
        }
    }
    Ok((StatusCode::CREATED, Json(json!({ "resources": answer }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_follow_the_message_class() {
        let err = |v: Value| validate(&v).unwrap_err().detail;
        assert_eq!(err(json!({})), "Resources must be an array");
        assert_eq!(err(json!([])), "Resources must have at least 1 resource");
        assert_eq!(
            err(json!([{"checksum": {"value": "abc"}, "size_in_bytes": -1, "mode": "9"}])),
            "Resources array contains at least one resource with a non-SHA1 checksum value, \
             Resources array contains at least one resource with a negative size_in_bytes, \
             Resources array contains at least one resource with an incorrect mode"
        );
        assert!(
            validate(&json!([{"checksum": {"value": "A".repeat(40)}, "size_in_bytes": 0}])).is_ok()
        );
    }
}
