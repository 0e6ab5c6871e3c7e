//! `GET /v3/apps/:guid/processes` and `GET /v3/processes/:guid/stats`:
//! an app's processes (`web`, and any type its manifest named) with what
//! the manifest set; after a start, each instance is `STARTING` for a few
//! reads, then `RUNNING` (or `CRASHED` when the settings say the app
//! crashes). A stopped app's instances are `DOWN`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::super::auth::authenticate;
use super::super::views::ProcessView;
use super::super::CfEmulator;
use super::errors::V3ApiError;
use super::list_body;

/// CC's `ProcessPresenter`, in the keys the CLI reads.
fn presented(app_guid: &str, created_at: &str, p: &ProcessView) -> Value {
    let mut health = json!({
        "type": p.health_check_type,
        "data": {
            "timeout": p.health_check_timeout,
            "invocation_timeout": p.health_check_invocation_timeout,
            "interval": p.health_check_interval,
        },
    });
    if p.health_check_type == "http" {
        health["data"]["endpoint"] = json!(p.health_check_http_endpoint.as_deref().unwrap_or("/"));
    }
    let mut readiness = json!({
        "type": p.readiness_health_check_type,
        "data": {
            "invocation_timeout": p.readiness_health_check_invocation_timeout,
            "interval": p.readiness_health_check_interval,
        },
    });
    if p.readiness_health_check_type == "http" {
        readiness["data"]["endpoint"] = json!(p
            .readiness_health_check_http_endpoint
            .as_deref()
            .unwrap_or("/"));
    }
    json!({
        "guid": p.guid,
        "created_at": created_at,
        "updated_at": created_at,
        "version": p.guid,
        "type": p.process_type,
        "command": p.command,
        "user": "vcap",
        "instances": p.instances,
        "memory_in_mb": p.memory_in_mb,
        "disk_in_mb": p.disk_in_mb,
        "log_rate_limit_in_bytes_per_second": p.log_rate_limit_in_bytes_per_second,
        "health_check": health,
        "readiness_health_check": readiness,
        "relationships": {"app": {"data": {"guid": app_guid}}, "revision": null},
        "metadata": {"labels": {}, "annotations": {}},
        "links": {
            "self": {"href": format!("/v3/processes/{}", p.guid)},
            "scale": {"href": format!("/v3/processes/{}/actions/scale", p.guid), "method": "POST"},
            "app": {"href": format!("/v3/apps/{app_guid}")},
            "space": {"href": "/v3/spaces"},
            "stats": {"href": format!("/v3/processes/{}/stats", p.guid)},
        },
    })
}

pub(super) async fn list(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    let app = state
        .apps
        .get(&guid)
        .ok_or_else(|| V3ApiError::not_found("App"))?;
    let processes = state
        .processes_of(app)
        .iter()
        .map(|p| presented(&app.guid, app.created_at(), p))
        .collect();
    Ok(Json(list_body(
        &format!("/v3/apps/{guid}/processes"),
        processes,
    )))
}

pub(super) async fn stats(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    let settings = state.settings.clone();
    let (app_guid, process) = state
        .apps
        .values()
        .find_map(|a| {
            state
                .processes_of(a)
                .into_iter()
                .find(|p| p.guid == guid)
                .map(|p| (a.guid.clone(), p))
        })
        .ok_or_else(|| V3ApiError::not_found("Process"))?;
    let app = state.apps.get_mut(&app_guid).expect("found above");
    let instance_state = if app.state != "STARTED" {
        "DOWN"
    } else {
        app.stats_polls = app.stats_polls.saturating_add(1);
        if app.stats_polls <= settings.v3_pacing.starting_polls {
            "STARTING"
        } else if settings.instances_crash {
            "CRASHED"
        } else {
            "RUNNING"
        }
    };
    let resources: Vec<Value> = (0..process.instances)
        .map(|index| {
            json!({
                "type": process.process_type,
                "index": index,
                "state": instance_state,
                "host": "10.0.0.1",
                "uptime": 0,
                "mem_quota": process.memory_in_mb * 1024 * 1024,
                "disk_quota": process.disk_in_mb * 1024 * 1024,
                "log_rate_limit": process.log_rate_limit_in_bytes_per_second,
                "fds_quota": 16384,
            })
        })
        .collect();
    Ok(Json(json!({ "resources": resources })))
}
