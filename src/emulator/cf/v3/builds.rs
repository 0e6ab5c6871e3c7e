//! `/v3/builds` and `/v3/droplets`: a build stages a READY package; after
//! its polls it is STAGED with a STAGED droplet, or FAILED with the reason
//! as `"<ErrorId> - <message>"` (a staged [`CfFault::FailNextStaging`]).
//! A docker package stages a docker droplet, only with `diego_docker` on.
//! Each build writes its staging output to log-cache.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::super::auth::authenticate;
use super::super::{CfEmulator, CfFault};
use super::errors::V3ApiError;
use super::{staging_logs, Build, Caller, Droplet, Lifecycle};

pub(super) async fn create(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| V3ApiError::message_parse_error(&err.to_string()))?;
    let package = request
        .pointer("/package/guid")
        .and_then(Value::as_str)
        .and_then(|g| state.packages.get(g))
        .ok_or_else(|| {
            V3ApiError::unprocessable(
                "Unable to use package. Ensure that the package exists and you have access to it.",
            )
        })?;
    let (package_guid, app_guid, ready, docker) = (
        package.guid.clone(),
        package.app_guid.clone(),
        package.state == "READY",
        package.docker.clone(),
    );
    if docker.is_some() && !state.settings.diego_docker {
        return Err(V3ApiError::feature_disabled("diego_docker"));
    }
    if state
        .builds
        .values()
        .any(|b| b.app_guid == app_guid && b.state == "STAGING")
    {
        return Err(V3ApiError::staging_in_progress());
    }
    if !ready {
        return Err(V3ApiError::bad_request(
            "Cannot stage package whose state is not ready.",
        ));
    }
    let failure = state.take_fault(CfFault::FailNextStaging).then(|| {
        "NoAppDetectedError - An app was not successfully detected by any available buildpack"
            .to_string()
    });
    let lifecycle = match (&docker, state.apps.get(&app_guid)) {
        (Some(d), _) => Lifecycle::Docker {
            image: d.image.clone(),
        },
        (None, Some(app)) => Lifecycle::Buildpack {
            buildpacks: app.buildpacks.clone(),
            stack: app.stack.clone(),
        },
        (None, None) => Lifecycle::Buildpack {
            buildpacks: Vec::new(),
            stack: "cflinuxfs4".into(),
        },
    };
    staging_logs::emit(&mut state, &app_guid, &lifecycle, failure.is_some());
    let build = Build::new(&package_guid, &app_guid, failure, lifecycle);
    let body = build.presented();
    state.builds.insert(build.guid.clone(), build);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    let polls = state.settings.v3_pacing.staging_polls;
    let build = state
        .builds
        .get_mut(&guid)
        .ok_or_else(|| V3ApiError::not_found("Build"))?;
    let staged = build.poll(polls);
    let body = build.presented();
    if let Some(droplet) = staged {
        state.droplets.insert(droplet.guid.clone(), droplet);
    }
    Ok(Json(body))
}

pub(super) async fn show_droplet(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    state
        .droplets
        .get(&guid)
        .map(|d| Json(Droplet::presented(d)))
        .ok_or_else(|| V3ApiError::not_found("Droplet"))
}
