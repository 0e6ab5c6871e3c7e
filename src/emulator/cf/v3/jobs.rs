//! `POST /v3/spaces/:guid/actions/apply_manifest` and `GET /v3/jobs/:guid`.
//! The controller checks the YAML and every app's message (all mistakes
//! in one 422), finds or creates each app, then queues the job; the job's
//! work is done at once and its outcome revealed after
//! [`PushPacing::manifest_polls`](super::super::PushPacing) reads.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::apps::App;
use super::super::CfEmulator;
use super::errors::{V3ApiError, V3Errors};
use super::manifest::{self, AppManifest};
use super::{apply, me, now, Caller};

/// A v3 pollable job.
pub(crate) struct V3Job {
    pub guid: String,
    created_at: String,
    operation: String,
    /// The resource the job links: `space` and its guid.
    resource: (String, String),
    outcome: Result<(), V3ApiError>,
    polls: u32,
}

impl V3Job {
    fn presented(&self, state: &str) -> Value {
        let errors: Vec<Value> = match (&self.outcome, state) {
            (Err(e), "FAILED") => vec![e.item()],
            _ => Vec::new(),
        };
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": if state == "PROCESSING" { self.created_at.clone() } else { now() },
            "operation": self.operation,
            "state": state,
            "errors": errors,
            "warnings": [],
            "links": {
                "self": {"href": format!("/v3/jobs/{}", self.guid)},
                self.resource.0.clone(): {"href": format!("/v3/{}s/{}", self.resource.0, self.resource.1)},
            },
        })
    }
}

/// Rails' `Mime::Type.lookup(content_type) == :yaml`.
fn is_yaml(headers: &HeaderMap) -> bool {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = kind
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    ["application/x-yaml", "text/yaml", "application/yaml"].contains(&kind.as_str())
}

pub(super) async fn apply_manifest(
    State(emu): State<Arc<CfEmulator>>,
    Path(space_guid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match accept_manifest(&emu, &space_guid, &headers, &body) {
        Ok(job_guid) => (
            StatusCode::ACCEPTED,
            [(
                header::LOCATION,
                format!("{}/v3/jobs/{job_guid}", me(&headers)),
            )],
        )
            .into_response(),
        Err(errors) => errors.into_response(),
    }
}

fn accept_manifest(
    emu: &CfEmulator,
    space_guid: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, V3Errors> {
    let fail = |e: V3ApiError| V3Errors(vec![e]);
    let mut state = emu.state.lock();
    Caller::reader(&state, headers).map_err(fail)?;
    if !is_yaml(headers) {
        return Err(fail(V3ApiError::bad_request("Content-Type must be yaml")));
    }
    if !state.spaces.contains_key(space_guid) {
        return Err(fail(V3ApiError::not_found("Space")));
    }
    Caller::writer(&state, headers).map_err(fail)?;
    state
        .manifests
        .push(String::from_utf8_lossy(body).into_owned());
    if body.len() > 1024 * 1024 {
        return Err(fail(V3ApiError::bad_request(
            "Manifest size is too large. The maximum supported size is 1MB.",
        )));
    }
    let yaml: Value = serde_norway::from_slice(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| fail(V3ApiError::message_parse_error("invalid request body")))?;
    if yaml.get("version").is_some_and(|v| v != &json!(1)) {
        return Err(fail(V3ApiError::unprocessable(
            "Unsupported manifest schema version. Currently supported versions: [1].",
        )));
    }
    let applications = match yaml.get("applications") {
        Some(Value::Array(list)) if !list.is_empty() => list.clone(),
        _ => {
            return Err(fail(V3ApiError::unprocessable(
                "Cannot parse manifest with no 'applications' field.",
            )))
        }
    };
    let diego_docker = state.settings.diego_docker;
    let mut messages: Vec<AppManifest> = Vec::new();
    let mut errors: Vec<V3ApiError> = Vec::new();
    for (index, app) in applications.iter().enumerate() {
        match manifest::parse(app, index, diego_docker) {
            Ok(m) => messages.push(m),
            Err(e) => errors.extend(e.iter().map(|e| V3ApiError::unprocessable(e))),
        }
    }
    if !errors.is_empty() {
        return Err(V3Errors(errors));
    }

    // AppFindOrCreateSkeleton, then the lifecycle checks, app by app.
    let mut plan = Vec::new();
    for m in messages {
        let existing = state
            .apps
            .values()
            .find(|a| a.name == m.name && a.space_guid == space_guid)
            .map(|a| a.guid.clone());
        let guid = match existing {
            Some(guid) => guid,
            None => {
                let mut app = App::new(&m.name, space_guid);
                if m.wants_docker {
                    app.lifecycle_type = "docker".into();
                }
                let guid = app.guid.clone();
                state.apps.insert(guid.clone(), app);
                guid
            }
        };
        let lifecycle = state.apps[&guid].lifecycle_type.clone();
        if lifecycle == "docker" && m.wants_buildpacks {
            let word = if m.plural_buildpacks {
                "Buildpacks"
            } else {
                "Buildpack"
            };
            return Err(fail(V3ApiError::unprocessable(&format!(
                "For application '{}': {word} cannot be configured for a docker lifecycle app.",
                m.name
            ))));
        }
        if lifecycle == "buildpack" && m.wants_docker {
            return Err(fail(V3ApiError::unprocessable(&format!(
                "For application '{}': Docker cannot be configured for a buildpack lifecycle app.",
                m.name
            ))));
        }
        plan.push((guid, m));
    }
    let outcome = apply::apply_all(&mut state, &plan);
    let job = V3Job {
        guid: uuid::Uuid::new_v4().to_string(),
        created_at: now(),
        operation: "space.apply_manifest".into(),
        resource: ("space".into(), space_guid.into()),
        outcome,
        polls: 0,
    };
    let guid = job.guid.clone();
    state.v3_jobs.insert(guid.clone(), job);
    Ok(guid)
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::reader(&state, &headers)?;
    let polls = state.settings.push_pacing.manifest_polls;
    let job = state
        .v3_jobs
        .get_mut(&guid)
        .ok_or_else(|| V3ApiError::not_found("Job"))?;
    job.polls = job.polls.saturating_add(1);
    let shown = if job.polls <= polls {
        "PROCESSING"
    } else if job.outcome.is_ok() {
        "COMPLETE"
    } else {
        "FAILED"
    };
    Ok(Json(job.presented(shown)))
}
