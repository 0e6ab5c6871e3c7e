//! The resource pool (blobs by SHA-1 that later uploads may name instead of
//! sending) and `PUT /v2/resource_match`, with the Cloud Controller's rules.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::auth::authenticate;
use super::errors::CfApiError;
use super::{CfEmulator, CfFault, MatchRecord};

/// Ruby's `String#to_i(8)`: leading blanks, an optional sign, then octal
/// digits (single underscores between them allowed) up to the first other
/// character; no digits gives 0.
pub(super) fn ruby_octal(text: &str) -> i64 {
    let text = text.trim_start();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    let mut previous_underscore = false;
    for (i, c) in digits.chars().enumerate() {
        match c {
            '0'..='7' => {
                value = value
                    .saturating_mul(8)
                    .saturating_add(c as i64 - '0' as i64);
                previous_underscore = false;
            }
            '_' if i > 0 && !previous_underscore => previous_underscore = true,
            _ => break,
        }
    }
    if negative {
        -value
    } else {
        value
    }
}

/// `size_allowed?`: strictly inside the window on both sides.
fn size_allowed(descriptor: &Value, min: u64, max: u64) -> bool {
    descriptor
        .get("size")
        .and_then(Value::as_u64)
        .is_some_and(|size| size > min && size < max)
}

/// `mode_allowed?`: present, and numerically at least 0600.
fn mode_allowed(descriptor: &Value) -> bool {
    descriptor
        .get("mode")
        .and_then(Value::as_str)
        .is_some_and(|mode| ruby_octal(mode) >= 0o600)
}

/// The size buckets CC's matcher walks, in order of first appearance.
fn bucket(descriptor: &Value) -> usize {
    const KB: u64 = 1024;
    const LIMITS: [u64; 5] = [KB, 100 * KB, 1024 * KB, 100 * 1024 * KB, 1024 * 1024 * KB];
    let size = descriptor.get("size").and_then(Value::as_u64).unwrap_or(0);
    LIMITS
        .iter()
        .position(|limit| size < *limit)
        .unwrap_or(LIMITS.len())
}

pub(super) async fn resource_match(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, CfApiError> {
    let mut state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    if state.take_fault(CfFault::FailNextMatch) {
        return Err(CfApiError::unknown());
    }
    if !state.settings.resource_matching {
        return Ok(Json(Value::Array(Vec::new())));
    }
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| CfApiError::message_parse_error(&err.to_string()))?;
    let Value::Array(descriptors) = request else {
        return Err(CfApiError::unprocessable_entity("must be an array."));
    };
    let (min, max) = (state.settings.pool_min_size, state.settings.pool_max_size);
    let known = |d: &Value| {
        d.get("sha1")
            .and_then(Value::as_str)
            .filter(|sha1| sha1.len() == 40)
            .is_some_and(|sha1| state.pool.contains_key(&sha1.to_ascii_lowercase()))
    };
    let allowed: Vec<&Value> = descriptors
        .iter()
        .filter(|d| size_allowed(d, min, max) && mode_allowed(d) && known(d))
        .collect();
    let mut order: Vec<usize> = Vec::new();
    for d in &descriptors {
        let b = bucket(d);
        if !order.contains(&b) {
            order.push(b);
        }
    }
    let answer: Vec<Value> = order
        .iter()
        .flat_map(|b| allowed.iter().filter(move |d| bucket(d) == *b))
        .map(|d| (*d).clone())
        .collect();
    state.matches.push(MatchRecord {
        asked: descriptors
            .iter()
            .map(|d| {
                d.get("fn")
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
    Ok(Json(Value::Array(answer)))
}

/// Moves a file holding content with `sha1` into the pool (the file is
/// consumed either way). Blobs are content-addressed, so a racing upload
/// of the same content is harmless.
pub(super) fn add_to_pool(
    emu: &CfEmulator,
    sha1: &str,
    size: u64,
    file: &Path,
) -> std::io::Result<()> {
    let dest = emu.pool_path(sha1);
    if dest.exists() {
        std::fs::remove_file(file)?;
    } else {
        std::fs::rename(file, &dest)?;
    }
    emu.state.lock().pool.insert(sha1.to_string(), size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_parsing_follows_ruby() {
        assert_eq!(ruby_octal("644"), 0o644);
        assert_eq!(ruby_octal("0755"), 0o755);
        assert_eq!(ruby_octal("100644"), 0o100644);
        assert_eq!(ruby_octal("abc"), 0);
        assert_eq!(ruby_octal(""), 0);
        assert_eq!(ruby_octal("  7_7"), 0o77);
        assert_eq!(ruby_octal("68"), 6);
    }

    #[test]
    fn match_rules() {
        let d = |size: u64, mode: Option<&str>| {
            let mut v = serde_json::json!({"sha1": "a".repeat(40), "size": size});
            if let Some(m) = mode {
                v["mode"] = m.into();
            }
            v
        };
        assert!(!size_allowed(&d(65536, None), 65536, 1000000));
        assert!(size_allowed(&d(65537, None), 65536, 1000000));
        assert!(!mode_allowed(&d(70000, None)), "no mode, no match");
        assert!(mode_allowed(&d(70000, Some("666"))));
        assert!(!mode_allowed(&d(70000, Some("444"))));
        assert!(
            mode_allowed(&d(70000, Some("1000"))),
            "numeric, unlike the upload's check"
        );
        assert_eq!(bucket(&d(10, None)), 0);
        assert_eq!(bucket(&d(70000, None)), 1);
        assert_eq!(bucket(&d(3 << 20, None)), 3);
    }
}
