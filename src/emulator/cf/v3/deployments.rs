//! `/v3/deployments`: a rolling or canary deployment makes the droplet
//! current at once (`DeploymentTargetState`); a stopped app is simply
//! started and the deployment is `FINALIZED`/`DEPLOYED`; a started app's
//! deployment stays `ACTIVE` for [`PushPacing::deployment_polls`] reads,
//! then is `DEPLOYED` (a canary `PAUSED` until `continue`). No start,
//! restart or stop is counted. A staged [`CfFault::FailNextDeployment`]
//! ends it `CANCELED` with the previous droplet back, as `cancel` does.
//!
//! [`PushPacing::deployment_polls`]: super::super::PushPacing
//! [`CfFault::FailNextDeployment`]: super::super::CfFault

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::super::{CfEmulator, CfFault, EmulatorState};
use super::errors::V3ApiError;
use super::{list_body, now, Caller};

pub(crate) struct Deployment {
    pub guid: String,
    pub app_guid: String,
    created_at: String,
    updated_at: String,
    strategy: String,
    max_in_flight: u64,
    options: Value,
    droplet: String,
    previous_droplet: Option<String>,
    /// DEPLOYING, PREPAUSED, PAUSED, DEPLOYED, CANCELING or CANCELED.
    state: String,
    status_value: String,
    status_reason: String,
    status_updated_at: String,
    new_processes: Vec<Value>,
    fails: bool,
    polls: u32,
}

impl Deployment {
    /// `PROGRESSING_STATES`: the app is deploying.
    pub fn is_progressing(&self) -> bool {
        ["DEPLOYING", "PREPAUSED", "PAUSED"].contains(&self.state.as_str())
    }

    fn cancelable(&self) -> bool {
        self.is_progressing() || self.state == "CANCELING"
    }

    fn set(&mut self, state: &str, value: &str, reason: &str) {
        self.state = state.into();
        self.status_value = value.into();
        self.status_reason = reason.into();
        self.status_updated_at = now();
        self.updated_at = self.status_updated_at.clone();
    }

    fn presented(&self) -> Value {
        let me = format!("/v3/deployments/{}", self.guid);
        let mut status = json!({
            "value": self.status_value,
            "reason": self.status_reason,
            "details": {
                "last_successful_healthcheck": self.status_updated_at,
                "last_status_change": self.status_updated_at,
            },
        });
        if self.strategy == "canary" {
            status["canary"] = json!({"steps": {"current": 1, "total": 1}});
        }
        let mut links = json!({
            "self": {"href": me},
            "app": {"href": format!("/v3/apps/{}", self.app_guid)},
        });
        if self.cancelable() {
            links["cancel"] = json!({"href": format!("{me}/actions/cancel"), "method": "POST"});
        }
        if self.state == "PAUSED" {
            links["continue"] = json!({"href": format!("{me}/actions/continue"), "method": "POST"});
        }
        let mut options = self.options.clone();
        options["max_in_flight"] = json!(self.max_in_flight);
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": status,
            "strategy": self.strategy,
            "options": options,
            "droplet": {"guid": self.droplet},
            "previous_droplet": {"guid": self.previous_droplet},
            "new_processes": self.new_processes,
            "revision": null,
            "relationships": {"app": {"data": {"guid": self.app_guid}}},
            "metadata": {"labels": {}, "annotations": {}},
            "links": links,
        })
    }
}

/// Puts the previous droplet back and marks the deployment CANCELING.
fn cancel(state: &mut EmulatorState, guid: &str) {
    let Some(deployment) = state.deployments.get_mut(guid) else {
        return;
    };
    deployment.set("CANCELING", "ACTIVE", "CANCELING");
    let (app_guid, previous) = (
        deployment.app_guid.clone(),
        deployment.previous_droplet.clone(),
    );
    if let (Some(app), Some(previous)) = (state.apps.get_mut(&app_guid), previous) {
        app.current_droplet = Some(previous);
        app.touch();
    }
}

/// One read: the deployment moves on after its polls.
fn poll(state: &mut EmulatorState, guid: &str) {
    let polls = state.settings.push_pacing.deployment_polls;
    let Some(deployment) = state.deployments.get_mut(guid) else {
        return;
    };
    match deployment.state.as_str() {
        "CANCELING" => deployment.set("CANCELED", "FINALIZED", "CANCELED"),
        "DEPLOYING" | "PREPAUSED" => {
            deployment.polls = deployment.polls.saturating_add(1);
            if deployment.polls <= polls {
                return;
            }
            if deployment.fails {
                cancel(state, guid);
                if let Some(d) = state.deployments.get_mut(guid) {
                    d.set("CANCELED", "FINALIZED", "CANCELED");
                }
            } else if deployment.state == "PREPAUSED" {
                deployment.set("PAUSED", "ACTIVE", "PAUSED");
            } else {
                deployment.set("DEPLOYED", "FINALIZED", "DEPLOYED");
            }
        }
        _ => {}
    }
}

const ALLOWED_KEYS: [&str; 6] = [
    "relationships",
    "droplet",
    "revision",
    "strategy",
    "options",
    "metadata",
];

pub(super) async fn create(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| V3ApiError::message_parse_error(&err.to_string()))?;
    let object = request
        .as_object()
        .ok_or_else(|| V3ApiError::message_parse_error("invalid request body"))?;
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !ALLOWED_KEYS.contains(&k.as_str()))
        .map(|k| format!("'{k}'"))
        .collect();
    if !unknown.is_empty() {
        return Err(V3ApiError::unprocessable(&format!(
            "Unknown field(s): {}",
            unknown.join(", ")
        )));
    }
    let strategy = match request.get("strategy") {
        None | Some(Value::Null) => "rolling".to_string(),
        Some(Value::String(s)) if s == "rolling" || s == "canary" => s.clone(),
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            return Err(V3ApiError::unprocessable(&format!(
                "Strategy '{shown}' is not a supported deployment strategy"
            )));
        }
    };
    let app_guid = request
        .pointer("/relationships/app/data/guid")
        .and_then(Value::as_str)
        .filter(|g| state.apps.contains_key(*g))
        .ok_or_else(|| {
            V3ApiError::unprocessable(
                "Unable to use app. Ensure that the app exists and you have access to it.",
            )
        })?
        .to_string();
    let app = &state.apps[&app_guid];
    let droplet = match request.pointer("/droplet/guid").and_then(Value::as_str) {
        Some(guid) => guid.to_string(),
        None => app.current_droplet.clone().unwrap_or_default(),
    };
    let usable = state
        .droplets
        .get(&droplet)
        .is_some_and(|d| d.app_guid == app_guid && d.state == "STAGED");
    if !usable {
        return Err(V3ApiError::unprocessable(
            "Unable to assign current droplet. Ensure the droplet exists and belongs to this app.",
        ));
    }
    let was_stopped = app.state != "STARTED";
    let previous_droplet = app.current_droplet.clone();
    let fails = state.take_fault(CfFault::FailNextDeployment);
    // A newer deployment supersedes the active one.
    for d in state.deployments.values_mut() {
        if d.app_guid == app_guid && d.status_value == "ACTIVE" {
            let next = if d.state == "DEPLOYING" {
                "DEPLOYED"
            } else {
                "CANCELED"
            };
            d.set(next, "FINALIZED", "SUPERSEDED");
        }
    }
    let at = now();
    let mut options = request.get("options").cloned().unwrap_or_else(|| json!({}));
    if !options.is_object() {
        options = json!({});
    }
    let max_in_flight = options
        .get("max_in_flight")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    if let Some(map) = options.as_object_mut() {
        map.retain(|k, _| {
            [
                "web_instances",
                "memory_in_mb",
                "disk_in_mb",
                "log_rate_limit_in_bytes_per_second",
            ]
            .contains(&k.as_str())
        });
    }
    let immediate = was_stopped && !fails;
    let mut deployment = Deployment {
        guid: uuid::Uuid::new_v4().to_string(),
        app_guid: app_guid.clone(),
        created_at: at.clone(),
        updated_at: at.clone(),
        strategy: strategy.clone(),
        max_in_flight,
        options,
        droplet: droplet.clone(),
        previous_droplet,
        state: if strategy == "canary" {
            "PREPAUSED"
        } else {
            "DEPLOYING"
        }
        .into(),
        status_value: "ACTIVE".into(),
        status_reason: "DEPLOYING".into(),
        status_updated_at: at,
        new_processes: Vec::new(),
        fails,
        polls: 0,
    };
    if immediate {
        deployment.set("DEPLOYED", "FINALIZED", "DEPLOYED");
    } else {
        deployment.new_processes = vec![json!({
            "guid": uuid::Uuid::new_v4().to_string(),
            "type": "web",
        })];
    }
    let app = state.apps.get_mut(&app_guid).expect("checked above");
    app.current_droplet = Some(droplet);
    app.state = "STARTED".into();
    app.stats_polls = 0;
    app.counts.deployments += 1;
    app.touch();
    let body = deployment.presented();
    state
        .deployments
        .insert(deployment.guid.clone(), deployment);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::reader(&state, &headers)?;
    if !state.deployments.contains_key(&guid) {
        return Err(V3ApiError::not_found("Deployment"));
    }
    poll(&mut state, &guid);
    Ok(Json(state.deployments[&guid].presented()))
}

/// `GET /v3/deployments` with `app_guids` and `status_values` filters.
pub(super) async fn list(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, V3ApiError> {
    let state = emu.state.lock();
    Caller::reader(&state, &headers)?;
    let filter = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
    };
    let (apps, values) = (filter("app_guids"), filter("status_values"));
    let mut found: Vec<&Deployment> = state
        .deployments
        .values()
        .filter(|d| apps.as_ref().is_none_or(|a| a.contains(&d.app_guid)))
        .filter(|d| values.as_ref().is_none_or(|v| v.contains(&d.status_value)))
        .collect();
    found.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(Json(list_body(
        "/v3/deployments",
        found.iter().map(|d| d.presented()).collect(),
    )))
}

/// `POST /v3/deployments/:guid/actions/{cancel|continue}`: 200, no body.
pub(super) async fn action(
    State(emu): State<Arc<CfEmulator>>,
    Path((guid, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, V3ApiError> {
    let mut state = emu.state.lock();
    Caller::writer(&state, &headers)?;
    let deployment = state
        .deployments
        .get_mut(&guid)
        .ok_or_else(|| V3ApiError::not_found("Deployment"))?;
    match action.as_str() {
        "cancel" => {
            if !deployment.cancelable() {
                return Err(V3ApiError::unprocessable(&format!(
                    "Cannot cancel a deployment with status: {} and reason: {}",
                    deployment.status_value, deployment.status_reason
                )));
            }
            cancel(&mut state, &guid);
        }
        "continue" => {
            if deployment.state != "PAUSED" {
                return Err(V3ApiError::unprocessable(&format!(
                    "Cannot continue a deployment with status: {} and reason: {}",
                    deployment.status_value, deployment.status_reason
                )));
            }
            deployment.set("DEPLOYED", "FINALIZED", "DEPLOYED");
        }
        _ => return Err(V3ApiError::not_found("Deployment action")),
    }
    Ok(StatusCode::OK.into_response())
}
