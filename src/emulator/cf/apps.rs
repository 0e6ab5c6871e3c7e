//! `/v2/apps`: list with `q` filters, create by name and space, show.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::auth::authenticate;
use super::errors::CfApiError;
use super::views::{ActionCounts, Metadata, ProcessView, ServiceBindingView, SidecarView};
use super::{CfEmulator, PackagedFile};

/// One process of an app. `scaled` is false until a manifest sets its
/// instances; until then it runs the settings' default.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    pub view: ProcessView,
    pub scaled: bool,
}

pub(crate) struct App {
    pub guid: String,
    pub name: String,
    pub space_guid: String,
    created_at: String,
    updated_at: Option<String>,
    /// `PENDING` until a package fails (`FAILED`); staging is not emulated.
    pub package_state: String,
    pub package_updated_at: Option<String>,
    pub package: Option<BTreeMap<String, PackagedFile>>,
    /// v3: `STARTED` or `STOPPED`.
    pub state: String,
    pub current_droplet: Option<String>,
    /// Stats reads since the last start, for the STARTING pacing.
    pub stats_polls: u32,
    /// `buildpack` or `docker`.
    pub lifecycle_type: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    pub env: BTreeMap<String, String>,
    /// `web` first.
    pub processes: Vec<Process>,
    pub sidecars: Vec<SidecarView>,
    pub services: Vec<ServiceBindingView>,
    pub labels: Metadata,
    pub annotations: Metadata,
    pub counts: ActionCounts,
}

pub(crate) fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

impl App {
    pub fn new(name: &str, space_guid: &str) -> App {
        let web = ProcessView::new("web", 1);
        App {
            guid: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            space_guid: space_guid.into(),
            created_at: timestamp(SystemTime::now()),
            updated_at: None,
            package_state: "PENDING".into(),
            package_updated_at: None,
            package: None,
            state: "STOPPED".into(),
            current_droplet: None,
            stats_polls: 0,
            lifecycle_type: "buildpack".into(),
            buildpacks: Vec::new(),
            stack: "cflinuxfs4".into(),
            env: BTreeMap::new(),
            processes: vec![Process {
                view: web,
                scaled: false,
            }],
            sidecars: Vec::new(),
            services: Vec::new(),
            labels: Metadata::new(),
            annotations: Metadata::new(),
            counts: ActionCounts::default(),
        }
    }

    /// The process of this type, if the app has one.
    pub fn process_mut(&mut self, process_type: &str) -> Option<&mut Process> {
        self.processes
            .iter_mut()
            .find(|p| p.view.process_type == process_type)
    }

    pub fn created_at(&self) -> &str {
        &self.created_at
    }

    pub fn updated_at(&self) -> Option<&str> {
        self.updated_at.as_deref()
    }

    pub fn touch(&mut self) {
        self.updated_at = Some(timestamp(SystemTime::now()));
    }

    fn resource(&self) -> Value {
        json!({
            "metadata": {
                "guid": self.guid,
                "url": format!("/v2/apps/{}", self.guid),
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            },
            "entity": {
                "name": self.name,
                "production": false,
                "space_guid": self.space_guid,
                "stack_guid": null,
                "buildpack": null,
                "detected_buildpack": null,
                "environment_json": {},
                "memory": 1024,
                "instances": 1,
                "disk_quota": 1024,
                "state": "STOPPED",
                "command": null,
                "console": false,
                "debug": null,
                "staging_task_id": null,
                "package_state": self.package_state,
                "health_check_type": "port",
                "health_check_timeout": null,
                "staging_failed_reason": null,
                "staging_failed_description": null,
                "diego": true,
                "docker_image": null,
                "package_updated_at": self.package_updated_at,
                "detected_start_command": "",
                "enable_ssh": true,
                "ports": [8080],
                "space_url": format!("/v2/spaces/{}", self.space_guid),
                "routes_url": format!("/v2/apps/{}/routes", self.guid),
            }
        })
    }
}

/// One `q` filter: `field:value` or `field IN a,b`.
fn parse_filter(q: &str) -> Result<(String, Vec<String>), CfApiError> {
    const FIELDS: [&str; 5] = [
        "name",
        "space_guid",
        "organization_guid",
        "diego",
        "stack_guid",
    ];
    let (field, values) = if let Some((field, list)) = q.split_once(" IN ") {
        (field, list.split(',').map(str::to_string).collect())
    } else if let Some((field, value)) = q.split_once(':') {
        (field, vec![value.to_string()])
    } else {
        return Err(CfApiError::bad_query_parameter(q));
    };
    if !FIELDS.contains(&field) {
        return Err(CfApiError::bad_query_parameter(field));
    }
    Ok((field.to_string(), values))
}

pub(super) async fn list(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Value>, CfApiError> {
    let state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    let params: Query<Vec<(String, String)>> = Query::try_from_uri(&uri)
        .map_err(|err| CfApiError::bad_query_parameter(&err.body_text()))?;
    let mut filters = Vec::new();
    for (key, value) in params.0 {
        if key == "q" {
            filters.push(parse_filter(&value)?);
        }
    }
    let org_of = |space: &str| state.spaces.get(space).map(|s| s.org_guid.as_str());
    let resources: Vec<Value> = state
        .apps
        .values()
        .filter(|app| {
            filters.iter().all(|(field, values)| {
                let actual = match field.as_str() {
                    "name" => Some(app.name.as_str()),
                    "space_guid" => Some(app.space_guid.as_str()),
                    "organization_guid" => org_of(&app.space_guid),
                    "diego" => Some("true"),
                    _ => None,
                };
                actual.is_some_and(|a| values.iter().any(|v| v == a))
            })
        })
        .map(App::resource)
        .collect();
    Ok(Json(json!({
        "total_results": resources.len(),
        "total_pages": 1,
        "prev_url": null,
        "next_url": null,
        "resources": resources,
    })))
}

pub(super) async fn create(
    State(emu): State<Arc<CfEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, CfApiError> {
    let mut state = emu.state.lock();
    let caller = authenticate(&state.tokens, &headers, Duration::ZERO)?;
    if !caller.can_write() {
        return Err(CfApiError::not_authorized());
    }
    let request: Value = serde_json::from_slice(&body)
        .map_err(|err| CfApiError::message_parse_error(&err.to_string()))?;
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                CfApiError::message_parse_error(&format!(
                    "Field: {name}, Error: Missing field {name}"
                ))
            })
    };
    let name = field("name")?;
    let space_guid = field("space_guid")?;
    // AppsController looks every guid up with its own not-found error.
    if !state.spaces.contains_key(&space_guid) {
        return Err(CfApiError::app_not_found(&space_guid));
    }
    let taken = state
        .apps
        .values()
        .any(|a| a.name == name && a.space_guid == space_guid);
    if taken {
        return Err(CfApiError::app_name_taken(&name));
    }
    let app = App::new(&name, &space_guid);
    let resource = app.resource();
    let location = format!("/v2/apps/{}", app.guid);
    state.apps.insert(app.guid.clone(), app);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(resource),
    )
        .into_response())
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, CfApiError> {
    let state = emu.state.lock();
    authenticate(&state.tokens, &headers, Duration::ZERO)?;
    state
        .apps
        .get(&guid)
        .map(|app| Json(app.resource()))
        .ok_or_else(|| CfApiError::app_not_found(&guid))
}
