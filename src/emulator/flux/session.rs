//! The `zelidauth` check of FluxOS's `verifyUserSession`
//! (`ZelBack/src/services/verificationHelperUtils.js`) for a node whose
//! login database is empty: a self-issued login phrase is accepted when it
//! is 40–70 characters, starts with a millisecond timestamp from the last
//! 16 hours (not the future), and is signed by the `zelid`.

use std::collections::HashMap;

use axum::extract::Query;
use axum::http::Uri;
use serde_json::Value;

use crate::backend::flux::signer;

const SESSION_LIFETIME_MS: u64 = 16 * 60 * 60 * 1000;

/// The header's three fields, from JSON or `a=b&c=d` (FluxOS's `ensureObject`).
fn fields(header: &str) -> Option<(String, String, String)> {
    let map: HashMap<String, String> = match serde_json::from_str::<Value>(header) {
        Ok(Value::Object(obj)) => obj
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        _ => {
            let uri: Uri = format!("/?{header}").parse().ok()?;
            Query::<HashMap<String, String>>::try_from_uri(&uri).ok()?.0
        }
    };
    Some((
        map.get("zelid")?.clone(),
        map.get("signature")?.clone(),
        map.get("loginPhrase")?.clone(),
    ))
}

/// Whether `header` is a user session FluxOS would accept at `now_ms`.
pub fn verify_user_session(header: Option<&str>, now_ms: u64) -> bool {
    let Some((zelid, signature, phrase)) = header.and_then(fields) else {
        return false;
    };
    if !(40..=70).contains(&phrase.len()) {
        return false;
    }
    let Some(issued) = phrase.get(..13).and_then(|t| t.parse::<u64>().ok()) else {
        return false;
    };
    if issued > now_ms || issued + SESSION_LIFETIME_MS < now_ms {
        return false;
    }
    signer::verify(&phrase, &zelid, &signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::flux::message::zelidauth;
    use crate::backend::flux::signer::FluxSigner;

    const KEY: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";
    const NOW: u64 = 1_753_000_000_000;

    #[test]
    fn client_sessions_are_accepted_while_fresh() {
        let signer = FluxSigner::from_wif(KEY).unwrap();
        let header = zelidauth(&signer, NOW);
        assert!(verify_user_session(Some(&header), NOW));
        assert!(verify_user_session(
            Some(&header),
            NOW + SESSION_LIFETIME_MS
        ));
        assert!(!verify_user_session(
            Some(&header),
            NOW + SESSION_LIFETIME_MS + 1
        ));
        assert!(!verify_user_session(Some(&header), NOW - 1));
        assert!(!verify_user_session(None, NOW));
    }

    #[test]
    fn url_encoded_sessions_and_forgeries() {
        let signer = FluxSigner::from_wif(KEY).unwrap();
        let v: Value = serde_json::from_str(&zelidauth(&signer, NOW)).unwrap();
        let enc = |s: &str| {
            s.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        };
        let form = format!(
            "zelid={}&signature={}&loginPhrase={}",
            v["zelid"].as_str().unwrap(),
            enc(v["signature"].as_str().unwrap()),
            v["loginPhrase"].as_str().unwrap()
        );
        assert!(verify_user_session(Some(&form), NOW));
        let mut forged = v.clone();
        forged["zelid"] = "1CbErtneaX2QVyUfwU7JGB7VzvPgrgc3uC".into();
        assert!(!verify_user_session(Some(&forged.to_string()), NOW));
    }
}
