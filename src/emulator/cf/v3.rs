//! The v3 half of the emulated Cloud Controller (`shared/backends/cf-v3.md`):
//! the root documents, apps, `resource_matches`, bits packages and their
//! upload, builds and droplets, processes and their stats.

mod apps;
mod builds;
mod errors;
mod matches;
mod packages;
mod processes;
mod root;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::{json, Value};

use super::apps::timestamp;
use super::auth::authenticate;
use super::{CfEmulator, EmulatorState, PackageView};

pub use self::errors::V3ApiError;

/// nginx's `client_max_body_size` for bits (`cc.app_bits_max_body_size`).
const BITS_BODY_LIMIT: usize = 2048 * 1024 * 1024;

pub(super) fn routes() -> Router<Arc<CfEmulator>> {
    Router::new()
        .route("/", get(root::global_root))
        .route("/v3", get(root::v3_root))
        .route("/v3/apps", get(apps::list).post(apps::create))
        .route("/v3/apps/{guid}", get(apps::show))
        .route(
            "/v3/apps/{guid}/relationships/current_droplet",
            patch(apps::set_current_droplet),
        )
        .route("/v3/apps/{guid}/actions/{action}", post(apps::action))
        .route("/v3/apps/{guid}/processes", get(processes::list))
        .route("/v3/processes/{guid}/stats", get(processes::stats))
        .route("/v3/resource_matches", post(matches::create))
        .route("/v3/packages", post(packages::create))
        .route("/v3/packages/{guid}", get(packages::show))
        .route(
            "/v3/packages/{guid}/upload",
            post(packages::upload).layer(DefaultBodyLimit::max(BITS_BODY_LIMIT)),
        )
        .route("/v3/builds", post(builds::create))
        .route("/v3/builds/{guid}", get(builds::show))
        .route("/v3/droplets/{guid}", get(builds::show_droplet))
}

/// A paginated list of one page.
fn list_body(path: &str, resources: Vec<Value>) -> Value {
    json!({
        "pagination": {
            "total_results": resources.len(),
            "total_pages": 1,
            "first": {"href": format!("{path}?page=1&per_page=50")},
            "last": {"href": format!("{path}?page=1&per_page=50")},
            "next": null,
            "previous": null,
        },
        "resources": resources,
    })
}

/// Authentication and the write scope, as v3 errors.
struct Caller;

impl Caller {
    fn writer(state: &EmulatorState, headers: &HeaderMap) -> Result<(), V3ApiError> {
        let caller = authenticate(&state.tokens, headers, Duration::ZERO)?;
        if caller.can_write() {
            Ok(())
        } else {
            Err(V3ApiError::not_authorized())
        }
    }
}

fn now() -> String {
    timestamp(SystemTime::now())
}

/// A bits package.
pub(crate) struct Package {
    pub guid: String,
    pub app_guid: String,
    /// The state as clients see it.
    pub state: String,
    created_at: String,
    /// The job's result once the upload arrived: the SHA-256, or the error.
    pub outcome: Option<Result<String, String>>,
    polls: u32,
}

impl Package {
    fn new(app_guid: &str) -> Package {
        Package {
            guid: uuid::Uuid::new_v4().to_string(),
            app_guid: app_guid.into(),
            state: "AWAITING_UPLOAD".into(),
            created_at: now(),
            outcome: None,
            polls: 0,
        }
    }

    /// One GET: after `processing_polls` the job's result shows.
    fn poll(&mut self, processing_polls: u32) {
        if self.state != "PROCESSING_UPLOAD" || self.outcome.is_none() {
            return;
        }
        self.polls = self.polls.saturating_add(1);
        if self.polls > processing_polls {
            self.state = match &self.outcome {
                Some(Ok(_)) => "READY".into(),
                _ => "FAILED".into(),
            };
        }
    }

    pub fn view(&self) -> PackageView {
        PackageView {
            guid: self.guid.clone(),
            app_guid: self.app_guid.clone(),
            state: self.state.clone(),
            sha256: self.sha256().map(str::to_string),
        }
    }

    fn sha256(&self) -> Option<&str> {
        match (&self.outcome, self.state.as_str()) {
            (Some(Ok(sha)), "READY") => Some(sha),
            _ => None,
        }
    }

    fn presented(&self) -> Value {
        let error = match (&self.outcome, self.state.as_str()) {
            (Some(Err(message)), "FAILED") => Some(message.clone()),
            _ => None,
        };
        let me = format!("/v3/packages/{}", self.guid);
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "type": "bits",
            "data": {"error": error, "checksum": {"type": "sha256", "value": self.sha256()}},
            "state": self.state,
            "relationships": {"app": {"data": {"guid": self.app_guid}}},
            "metadata": {"labels": {}, "annotations": {}},
            "links": {
                "self": {"href": me},
                "upload": {"href": format!("{me}/upload"), "method": "POST"},
                "download": {"href": format!("{me}/download")},
                "app": {"href": format!("/v3/apps/{}", self.app_guid)},
            },
        })
    }
}

/// A build of one package.
pub(crate) struct Build {
    pub guid: String,
    pub package_guid: String,
    pub app_guid: String,
    pub state: String,
    created_at: String,
    /// Decided at creation: the staging error, if staging fails.
    failure: Option<String>,
    droplet: Option<String>,
    polls: u32,
}

impl Build {
    fn new(package_guid: &str, app_guid: &str, failure: Option<String>) -> Build {
        Build {
            guid: uuid::Uuid::new_v4().to_string(),
            package_guid: package_guid.into(),
            app_guid: app_guid.into(),
            state: "STAGING".into(),
            created_at: now(),
            failure,
            droplet: None,
            polls: 0,
        }
    }

    /// One GET; returns the droplet when this poll staged it.
    fn poll(&mut self, staging_polls: u32) -> Option<Droplet> {
        if self.state != "STAGING" {
            return None;
        }
        self.polls = self.polls.saturating_add(1);
        if self.polls <= staging_polls {
            return None;
        }
        if self.failure.is_some() {
            self.state = "FAILED".into();
            return None;
        }
        self.state = "STAGED".into();
        let droplet = Droplet {
            guid: uuid::Uuid::new_v4().to_string(),
            app_guid: self.app_guid.clone(),
            package_guid: self.package_guid.clone(),
            state: "STAGED".into(),
            created_at: now(),
        };
        self.droplet = Some(droplet.guid.clone());
        Some(droplet)
    }

    fn presented(&self) -> Value {
        let mut body = json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "state": self.state,
            "staging_memory_in_mb": 1024,
            "staging_disk_in_mb": 1024,
            "staging_log_rate_limit_bytes_per_second": -1,
            "error": if self.state == "FAILED" { self.failure.clone() } else { None },
            "lifecycle": {"type": "buildpack", "data": {"buildpacks": [], "stack": "cflinuxfs4"}},
            "package": {"guid": self.package_guid},
            "droplet": self.droplet.as_ref().map(|g| json!({"guid": g})),
            "created_by": {"guid": "demo", "name": "demo", "email": ""},
            "relationships": {"app": {"data": {"guid": self.app_guid}}},
            "metadata": {"labels": {}, "annotations": {}},
            "links": {
                "self": {"href": format!("/v3/builds/{}", self.guid)},
                "app": {"href": format!("/v3/apps/{}", self.app_guid)},
            },
        });
        if let Some(droplet) = &self.droplet {
            body["links"]["droplet"] = json!({"href": format!("/v3/droplets/{droplet}")});
        }
        body
    }
}

/// A staged droplet.
pub(crate) struct Droplet {
    pub guid: String,
    pub app_guid: String,
    pub package_guid: String,
    pub state: String,
    created_at: String,
}

impl Droplet {
    fn presented(&self) -> Value {
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "state": self.state,
            "error": null,
            "lifecycle": {"type": "buildpack", "data": {}},
            "checksum": {"type": "sha256", "value": null},
            "buildpacks": [],
            "stack": "cflinuxfs4",
            "process_types": {"web": ""},
            "relationships": {"app": {"data": {"guid": self.app_guid}}},
            "metadata": {"labels": {}, "annotations": {}},
            "links": {
                "self": {"href": format!("/v3/droplets/{}", self.guid)},
                "package": {"href": format!("/v3/packages/{}", self.package_guid)},
                "app": {"href": format!("/v3/apps/{}", self.app_guid)},
            },
        })
    }
}
