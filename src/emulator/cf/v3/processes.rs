//! `GET /v3/apps/:guid/processes` and `GET /v3/processes/:guid/stats`:
//! each app has one `web` process whose instances, after a start, are
//! `STARTING` for a few reads, then `RUNNING` (or `CRASHED` when the
//! settings say the app crashes). A stopped app's instances are `DOWN`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::super::auth::authenticate;
use super::super::CfEmulator;
use super::errors::V3ApiError;
use super::list_body;

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
    let process = json!({
        "guid": app.web_process,
        "type": "web",
        "command": null,
        "instances": state.settings.instances,
        "memory_in_mb": 1024,
        "disk_in_mb": 1024,
        "health_check": {"type": "port", "data": {"timeout": null}},
        "relationships": {"app": {"data": {"guid": app.guid}}},
        "links": {"stats": {"href": format!("/v3/processes/{}/stats", app.web_process)}},
    });
    Ok(Json(list_body(
        &format!("/v3/apps/{guid}/processes"),
        vec![process],
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
    let app = state
        .apps
        .values_mut()
        .find(|a| a.web_process == guid)
        .ok_or_else(|| V3ApiError::not_found("Process"))?;
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
    let resources: Vec<Value> = (0..settings.instances)
        .map(|index| {
            json!({
                "type": "web",
                "index": index,
                "state": instance_state,
                "host": "10.0.0.1",
                "uptime": 0,
                "mem_quota": 1_073_741_824u64,
                "disk_quota": 1_073_741_824u64,
                "fds_quota": 16384,
            })
        })
        .collect();
    Ok(Json(json!({ "resources": resources })))
}
