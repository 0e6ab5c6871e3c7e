//! `/v3/apps`: list by `names` and `space_guids`, create, show, the current
//! droplet, and the start/restart/stop actions.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::apps::App;
use super::super::auth::authenticate;
use super::super::CfEmulator;
use super::errors::V3ApiError;
use super::{list_body, Caller};

/// The v3 app object (`AppPresenter`).
pub(super) fn presented(app: &App) -> Value {
    let me = format!("/v3/apps/{}", app.guid);
    json!({
        "guid": app.guid,
        "created_at": app.created_at(),
        "updated_at": app.updated_at().unwrap_or(app.created_at()),
        "name": app.name,
        "state": app.state,
        "lifecycle": if app.lifecycle_type == "docker" {
            json!({"type": "docker", "data": {}})
        } else {
            json!({"type": "buildpack", "data": {"buildpacks": app.buildpacks, "stack": app.stack}})
        },
        "relationships": {
            "space": {"data": {"guid": app.space_guid}},
            "current_droplet": {"data": {"guid": app.current_droplet}},
        },
        "metadata": {"labels": app.labels, "annotations": app.annotations},
        "links": {
            "self": {"href": me},
            "space": {"href": format!("/v3/spaces/{}", app.space_guid)},
            "processes": {"href": format!("{me}/processes")},
            "packages": {"href": format!("{me}/packages")},
            "current_droplet": {"href": format!("{me}/droplets/current")},
            "droplets": {"href": format!("{me}/droplets")},
            "start": {"href": format!("{me}/actions/start"), "method": "POST"},
            "stop": {"href": format!("{me}/actions/stop"), "method": "POST"},
        },
    })
}

fn list_param(query: &[(String, String)], key: &str) -> Option<Vec<String>> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.split(',').map(|s| s.replace("%2C", ",")).collect())
}

pub(super) async fn list(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    let names = list_param(&query, "names");
    let spaces = list_param(&query, "space_guids");
    let resources: Vec<Value> = state
        .apps
        .values()
        .filter(|a| names.as_ref().is_none_or(|n| n.contains(&a.name)))
        .filter(|a| spaces.as_ref().is_none_or(|s| s.contains(&a.space_guid)))
        .map(presented)
        .collect();
    Ok(Json(list_body("/v3/apps", resources)))
}

pub(super) async fn create(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| V3ApiError::message_parse_error(&err.to_string()))?;
    let allowed = [
        "name",
        "relationships",
        "environment_variables",
        "lifecycle",
        "metadata",
    ];
    if let Some(object) = request.as_object() {
        let unknown: Vec<String> = object
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| format!("'{k}'"))
            .collect();
        if !unknown.is_empty() {
            return Err(V3ApiError::unprocessable(&format!(
                "Unknown field(s): {}",
                unknown.join(", ")
            )));
        }
    }
    let Some(name) = request.get("name").and_then(Value::as_str) else {
        return Err(V3ApiError::unprocessable("Name must be a string"));
    };
    let space = request
        .pointer("/relationships/space/data/guid")
        .and_then(Value::as_str)
        .filter(|s| state.spaces.contains_key(*s))
        .ok_or_else(|| {
            V3ApiError::unprocessable(
                "Invalid space. Ensure that the space exists and you have access to it.",
            )
        })?;
    if state
        .apps
        .values()
        .any(|a| a.name == name && a.space_guid == space)
    {
        return Err(V3ApiError::uniqueness(&format!(
            "App with the name '{name}' already exists."
        )));
    }
    let mut app = App::new(name, space);
    if request.pointer("/lifecycle/type").and_then(Value::as_str) == Some("docker") {
        if !state.settings.diego_docker {
            return Err(V3ApiError::feature_disabled("diego_docker"));
        }
        app.lifecycle_type = "docker".into();
    }
    let body = presented(&app);
    state.apps.insert(app.guid.clone(), app);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    state
        .apps
        .get(&guid)
        .map(|a| Json(presented(a)))
        .ok_or_else(|| V3ApiError::not_found("App"))
}

pub(super) async fn set_current_droplet(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    if !state.apps.contains_key(&guid) {
        return Err(V3ApiError::not_found("App"));
    }
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| V3ApiError::message_parse_error(&err.to_string()))?;
    let droplet_guid = match request.get("data") {
        Some(Value::Null) => {
            return Err(V3ApiError::unprocessable(
                "Current droplet cannot be removed. Replace it with a preferred droplet.",
            ))
        }
        Some(data) => data.get("guid").and_then(Value::as_str).unwrap_or(""),
        None => "",
    }
    .to_string();
    let droplet = state
        .droplets
        .get(&droplet_guid)
        .filter(|d| d.app_guid == guid)
        .ok_or_else(|| {
            V3ApiError::unprocessable(
                "Unable to assign current droplet. Ensure the droplet exists and belongs to this app.",
            )
        })?;
    if droplet.state != "STAGED" {
        return Err(V3ApiError::unprocessable("droplet must be in staged state"));
    }
    if state.app_deploying(&guid) {
        return Err(V3ApiError::unprocessable(
            "Unable to assign current droplet while the app has a deployment in progress. Wait for the deployment to complete or cancel it.",
        ));
    }
    let app = state.apps.get_mut(&guid).expect("checked above");
    app.current_droplet = Some(droplet_guid.clone());
    app.touch();
    Ok(Json(json!({
        "data": {"guid": droplet_guid},
        "links": {
            "self": {"href": format!("/v3/apps/{guid}/relationships/current_droplet")},
            "related": {"href": format!("/v3/apps/{guid}/droplets/current")},
        },
    })))
}

pub(super) async fn action(
    State(emu): State<Arc<CfEmulator>>,
    Path((guid, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    let diego_docker = state.settings.diego_docker;
    let app = state
        .apps
        .get_mut(&guid)
        .ok_or_else(|| V3ApiError::not_found("App"))?;
    match action.as_str() {
        "start" | "restart" => {
            if app.current_droplet.is_none() {
                return Err(V3ApiError::unprocessable(
                    "Assign a droplet before starting this app.",
                ));
            }
            if app.lifecycle_type == "docker" && !diego_docker {
                return Err(V3ApiError::feature_disabled("diego_docker"));
            }
            app.state = "STARTED".into();
            app.stats_polls = 0;
            if action == "start" {
                app.counts.starts += 1;
            } else {
                app.counts.restarts += 1;
            }
        }
        "stop" => {
            app.state = "STOPPED".into();
            app.counts.stops += 1;
        }
        _ => return Err(V3ApiError::not_found("App action")),
    }
    app.touch();
    Ok(Json(presented(app)))
}
