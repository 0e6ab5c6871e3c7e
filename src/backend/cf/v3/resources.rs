//! `POST /v3/resource_matches`: which files the server's pool already
//! holds. Only files the pool can hand back are asked about (never an empty
//! one), in chunks of 5,000 as the cf CLI sends them.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::api::CcSession;
use super::error::read;
use crate::backend::DeployError;
use crate::package::fingerprint::Fingerprint;

/// The cf CLI's `MaxNumberOfResourcesForMatching`, the server's maximum.
pub const MATCH_CHUNK: usize = 5000;

const MATCH_TIMEOUT: Duration = Duration::from_secs(120);

/// One resource on the v3 wire, key order as the cf CLI writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub path: String,
    pub mode: String,
    pub checksum: Checksum,
    pub size_in_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    pub value: String,
}

impl Resource {
    pub fn of(fingerprint: &Fingerprint) -> Resource {
        Resource {
            path: fingerprint.path.clone(),
            mode: fingerprint.mode.clone(),
            checksum: Checksum {
                value: fingerprint.sha1.to_ascii_lowercase(),
            },
            size_in_bytes: fingerprint.size,
        }
    }
}

#[derive(Serialize)]
struct MatchRequest<'a> {
    resources: &'a [Resource],
}

#[derive(Deserialize)]
struct MatchAnswer {
    resources: Vec<serde_json::Value>,
}

/// What the server holds: its answers verbatim (they go back as the
/// upload's `resources`) and their SHA-1s, lowercase.
#[derive(Debug, Default)]
pub struct Matched {
    pub resources: Vec<serde_json::Value>,
    pub sha1s: HashSet<String>,
}

/// The bodies to send, in order: every non-empty candidate, at most
/// [`MATCH_CHUNK`] per request.
fn requests(candidates: &[&Fingerprint]) -> Vec<Vec<Resource>> {
    let asked: Vec<Resource> = candidates
        .iter()
        .filter(|f| f.size > 0)
        .map(|f| Resource::of(f))
        .collect();
    asked
        .chunks(MATCH_CHUNK)
        .map(<[Resource]>::to_vec)
        .collect()
}

pub async fn match_resources(
    session: &CcSession<'_>,
    candidates: &[&Fingerprint],
) -> Result<Matched, DeployError> {
    let url = session.url("/v3/resource_matches");
    let mut matched = Matched::default();
    for chunk in requests(candidates) {
        let chunk = chunk.as_slice();
        let request = MatchRequest { resources: chunk };
        let (_, body) = session
            .send(|http| Ok(http.post(&url).json(&request).timeout(MATCH_TIMEOUT)))
            .await?;
        let answer: MatchAnswer = read("POST /v3/resource_matches", &body)?;
        for resource in answer.resources {
            if let Some(sha1) = resource
                .pointer("/checksum/value")
                .and_then(serde_json::Value::as_str)
            {
                matched.sha1s.insert(sha1.to_ascii_lowercase());
            }
            matched.resources.push(resource);
        }
    }
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_skip_empty_files_and_hold_at_most_5000() {
        let files: Vec<Fingerprint> = (0..10_002u64)
            .map(|i| Fingerprint {
                path: format!("f{i}"),
                mode: "644".into(),
                sha1: format!("{i:040X}"),
                size: if i == 7 { 0 } else { 70_000 },
            })
            .collect();
        let refs: Vec<&Fingerprint> = files.iter().collect();
        let sizes: Vec<usize> = requests(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, [5000, 5000, 1]);
        let first = &requests(&refs)[0];
        assert!(first.iter().all(|r| r.path != "f7"), "the empty file");
        assert_eq!(first[9].checksum.value, format!("{:040x}", 10), "lowercase");
        assert!(requests(&[]).is_empty());
    }

    #[test]
    fn resources_are_written_as_the_cf_cli_writes_them() {
        let f = Fingerprint {
            path: "a/b.bin".into(),
            mode: "644".into(),
            sha1: "AB".repeat(20),
            size: 70000,
        };
        assert_eq!(
            serde_json::to_string(&Resource::of(&f)).unwrap(),
            format!(
                "{{\"path\":\"a/b.bin\",\"mode\":\"644\",\"checksum\":{{\"value\":\"{}\"}},\"size_in_bytes\":70000}}",
                "ab".repeat(20)
            )
        );
    }
}
