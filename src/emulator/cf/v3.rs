//! The v3 half of the emulated Cloud Controller (cloud_controller_ng's rules, `docs/cf.md`):
//! the root documents, apps, `resource_matches`, bits packages and their
//! upload, builds and droplets, processes and their stats; and what `cf
//! push` uses beyond bits: the space manifest and its job, routes,
//! docker packages and deployments.

mod apply;
mod apps;
mod builds;
mod deployments;
mod errors;
mod jobs;
mod manifest;
mod matches;
mod packages;
mod processes;
mod root;
mod routes;
mod staging_logs;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::{json, Value};

use super::apps::timestamp;
use super::auth::authenticate;
use super::bits::PackageContents;
use super::{CfEmulator, EmulatorState, PackageView};

pub(crate) use self::deployments::Deployment;
pub use self::errors::V3ApiError;
pub(crate) use self::jobs::V3Job;
pub(crate) use self::routes::Route;

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
        .route(
            "/v3/spaces/{guid}/actions/apply_manifest",
            post(jobs::apply_manifest),
        )
        .route("/v3/jobs/{guid}", get(jobs::show))
        .route("/v3/apps/{guid}/routes", get(routes::list_for_app))
        .route("/v3/routes/{guid}", get(routes::show))
        .route(
            "/v3/deployments",
            get(deployments::list).post(deployments::create),
        )
        .route("/v3/deployments/{guid}", get(deployments::show))
        .route(
            "/v3/deployments/{guid}/actions/{action}",
            post(deployments::action),
        )
}

/// `http://<Host header>`, for absolute links such as a job's `Location`.
fn me(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
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
    fn reader(state: &EmulatorState, headers: &HeaderMap) -> Result<(), V3ApiError> {
        authenticate(&state.tokens, headers, Duration::ZERO)?;
        Ok(())
    }

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

/// What a docker package points at.
#[derive(Debug, Clone)]
pub(crate) struct DockerData {
    pub image: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// A bits or docker package.
pub(crate) struct Package {
    pub guid: String,
    pub app_guid: String,
    /// The state as clients see it.
    pub state: String,
    created_at: String,
    /// The job's result once the upload arrived: the SHA-256, or the error.
    pub outcome: Option<Result<String, String>>,
    polls: u32,
    /// `Some` for a docker package (READY from the start).
    pub docker: Option<DockerData>,
    /// The bytes kept of the uploaded files, for the router.
    pub contents: Arc<PackageContents>,
    /// Creation order.
    pub seq: u64,
}

impl Package {
    fn new(app_guid: &str, seq: u64) -> Package {
        Package {
            guid: uuid::Uuid::new_v4().to_string(),
            app_guid: app_guid.into(),
            state: "AWAITING_UPLOAD".into(),
            created_at: now(),
            outcome: None,
            polls: 0,
            docker: None,
            contents: Arc::default(),
            seq,
        }
    }

    fn docker(app_guid: &str, data: DockerData, seq: u64) -> Package {
        Package {
            state: "READY".into(),
            docker: Some(data),
            ..Package::new(app_guid, seq)
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
            package_type: if self.docker.is_some() {
                "docker"
            } else {
                "bits"
            }
            .into(),
            docker_image: self.docker.as_ref().map(|d| d.image.clone()),
            docker_username: self.docker.as_ref().and_then(|d| d.username.clone()),
            docker_password: self.docker.as_ref().and_then(|d| d.password.clone()),
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
        let (kind, data) = match &self.docker {
            Some(docker) => (
                "docker",
                json!({
                    "image": docker.image,
                    "username": docker.username,
                    "password": docker.username.as_ref().map(|_| "***"),
                }),
            ),
            None => (
                "bits",
                json!({"error": error, "checksum": {"type": "sha256", "value": self.sha256()}}),
            ),
        };
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "type": kind,
            "data": data,
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
    /// The app's lifecycle when the build was made.
    lifecycle: Lifecycle,
}

/// A build's or droplet's lifecycle: buildpacks and stack, or docker.
#[derive(Debug, Clone)]
pub(crate) enum Lifecycle {
    Buildpack {
        buildpacks: Vec<String>,
        stack: String,
    },
    Docker {
        image: String,
    },
}

impl Lifecycle {
    fn presented(&self) -> Value {
        match self {
            Lifecycle::Buildpack { buildpacks, stack } => {
                json!({"type": "buildpack", "data": {"buildpacks": buildpacks, "stack": stack}})
            }
            Lifecycle::Docker { .. } => json!({"type": "docker", "data": {}}),
        }
    }
}

impl Build {
    fn new(
        package_guid: &str,
        app_guid: &str,
        failure: Option<String>,
        lifecycle: Lifecycle,
    ) -> Build {
        Build {
            guid: uuid::Uuid::new_v4().to_string(),
            package_guid: package_guid.into(),
            app_guid: app_guid.into(),
            state: "STAGING".into(),
            created_at: now(),
            failure,
            droplet: None,
            polls: 0,
            lifecycle,
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
            lifecycle: self.lifecycle.clone(),
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
            "lifecycle": self.lifecycle.presented(),
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
    lifecycle: Lifecycle,
}

impl Droplet {
    fn presented(&self) -> Value {
        let (lifecycle, checksum, buildpacks, stack, image) = match &self.lifecycle {
            Lifecycle::Buildpack { buildpacks, stack } => (
                json!({"type": "buildpack", "data": {}}),
                json!({"type": "sha256", "value": null}),
                json!(buildpacks
                    .iter()
                    .map(|b| json!({"name": b, "detect_output": null, "buildpack_name": b, "version": null}))
                    .collect::<Vec<_>>()),
                json!(stack),
                Value::Null,
            ),
            Lifecycle::Docker { image } => (
                json!({"type": "docker", "data": {}}),
                Value::Null,
                Value::Null,
                Value::Null,
                json!(image),
            ),
        };
        json!({
            "guid": self.guid,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "state": self.state,
            "error": null,
            "lifecycle": lifecycle,
            "checksum": checksum,
            "buildpacks": buildpacks,
            "stack": stack,
            "image": image,
            "execution_metadata": "",
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
