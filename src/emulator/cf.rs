//! An emulated Cloud Foundry Cloud Controller (plus its UAA token
//! endpoint), faithful to cloud_controller_ng's rules (`docs/cf.md`) for v2 and
//! v3: apps, a resource pool with the real
//! size window, `resource_match` and `resource_matches`, the v2 bits upload
//! and its async jobs, v3 packages, builds, droplets and process stats, and
//! v2 switched off the way nginx does it.
//!
//! Demo data: one org and one space with fixed guids, a demo access token
//! and a demo refresh token. Tests read back what each upload carried
//! ([`UploadRecord`]) and can make the next job fail ([`CfFault`]).

mod apps;
mod auth;
mod bits;
mod errors;
mod jobs;
mod log_cache;
mod pool;
mod router;
mod v3;
mod views;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use parking_lot::Mutex;
use tempfile::TempDir;

use self::apps::App;
use self::auth::TokenBook;
use self::jobs::Job;
use self::v3::{Build, Deployment, Droplet, Package, Route, V3Job};
use super::EmulatedApi;
use crate::config::Config;

pub use self::auth::{DEMO_REFRESH_TOKEN, DEMO_TOKEN, DEVELOPER_SCOPES};
pub use self::errors::CfApiError;
pub use self::views::{
    ActionCounts, LogLine, Metadata, ProcessView, ServiceBindingView, SidecarView,
};

pub const DEMO_ORG_GUID: &str = "0a9c0000-0000-4000-8000-00000000d0e0";
pub const DEMO_ORG_NAME: &str = "demo-org";
pub const DEMO_SPACE_GUID: &str = "5ace0000-0000-4000-8000-00000000d0e0";
pub const DEMO_SPACE_NAME: &str = "demo";
/// The guid of the org's default (shared) domain, [`CfSettings::apps_domain`].
pub const DEMO_DOMAIN_GUID: &str = "d0ma1000-0000-4000-8000-00000000d0e0";

/// The server's tunables, defaulting to capi-release's defaults.
#[derive(Debug, Clone)]
pub struct CfSettings {
    /// `cc.resource_pool.minimum_size`.
    pub pool_min_size: u64,
    /// `cc.resource_pool.maximum_size`.
    pub pool_max_size: u64,
    /// `cc.packages.max_package_size`.
    pub max_package_size: u64,
    /// `cc.app_bits_upload_grace_period_in_seconds`.
    pub upload_grace: Duration,
    /// The `resource_matching` feature flag.
    pub resource_matching: bool,
    /// `cc.temporary_enable_v2`: off, nginx answers 404 `V2 endpoints disabled`.
    pub v2_enabled: bool,
    /// Lifetime of the access tokens the UAA endpoint hands out.
    pub token_lifetime: Duration,
    pub job_pacing: JobPacing,
    pub v3_pacing: V3Pacing,
    /// Instances of each app's `web` process.
    pub instances: u32,
    /// Every instance crashes after starting (an app that does not listen).
    pub instances_crash: bool,
    /// `GET /` answers the root document; off, it is a 404 (a gateway that
    /// hides it), so a client must learn about v2 from a v2 call.
    pub serve_root: bool,
    /// The `diego_docker` feature flag (off by default, as in CC): docker
    /// lifecycles in manifests and docker builds are refused while off.
    pub diego_docker: bool,
    /// The org's default domain, a shared domain. Any `*.localhost` name
    /// reaches 127.0.0.1, so `curl http://<app>.apps.localhost:<port>/`
    /// reaches the emulator's router.
    pub apps_domain: String,
    /// The root document links `log_cache` to the emulator itself; off,
    /// `log_cache` is null.
    pub log_cache: bool,
    pub push_pacing: PushPacing,
}

impl Default for CfSettings {
    fn default() -> Self {
        CfSettings {
            pool_min_size: 65536,
            pool_max_size: 536_870_912,
            max_package_size: 1_073_741_824,
            upload_grace: Duration::from_secs(1200),
            resource_matching: true,
            v2_enabled: true,
            token_lifetime: Duration::from_secs(600),
            job_pacing: JobPacing::default(),
            v3_pacing: V3Pacing::default(),
            instances: 1,
            instances_crash: false,
            serve_root: true,
            diego_docker: false,
            apps_domain: "apps.localhost".into(),
            log_cache: true,
            push_pacing: PushPacing::default(),
        }
    }
}

/// How v3 objects show progress, counted in GETs: a package stays
/// `PROCESSING_UPLOAD` for `processing_polls` GETs, a build `STAGING` for
/// `staging_polls`, instances `STARTING` for `starting_polls` stats reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3Pacing {
    pub processing_polls: u32,
    pub staging_polls: u32,
    pub starting_polls: u32,
}

impl Default for V3Pacing {
    fn default() -> Self {
        V3Pacing {
            processing_polls: 1,
            staging_polls: 1,
            starting_polls: 1,
        }
    }
}

/// How the push's other objects show progress, counted in GETs: a
/// manifest job stays `PROCESSING` for `manifest_polls` reads of
/// `/v3/jobs/:guid`, a deployment `ACTIVE` for `deployment_polls` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushPacing {
    pub manifest_polls: u32,
    pub deployment_polls: u32,
}

impl Default for PushPacing {
    fn default() -> Self {
        PushPacing {
            manifest_polls: 1,
            deployment_polls: 1,
        }
    }
}

/// How a job shows its progress, counted in `GET /v2/jobs/:guid` requests:
/// the first `queued_polls` see `queued`, the next `running_polls` see
/// `running`, the one after sees the end (`finished` or `failed`). The
/// upload's own answer always says `queued`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPacing {
    pub queued_polls: u32,
    pub running_polls: u32,
}

impl Default for JobPacing {
    fn default() -> Self {
        JobPacing {
            queued_polls: 1,
            running_polls: 1,
        }
    }
}

/// A failure the emulator stages for the next upload cycle. The zip and
/// pool faults go through the real validation rather than a canned answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CfFault {
    /// The next `resource_match` answers 500 `UnknownError`.
    FailNextMatch,
    /// The next `application` zip is truncated on arrival, as a broken
    /// blobstore copy would leave it: the job fails `Invalid zip archive`.
    CorruptNextZip,
    /// The pool loses every blob right after the next `resource_match`
    /// answers, so the fingerprints of the following upload name SHA-1s the
    /// pool no longer has: the job fails with `CF-BlobstoreError`.
    EvictPoolAfterNextMatch,
    /// The next v3 build fails: no buildpack detects the app
    /// (`NoAppDetectedError`).
    FailNextStaging,
    /// The next deployment never becomes healthy: after its polls it ends
    /// `FINALIZED`/`CANCELED` and the previous droplet is current again.
    FailNextDeployment,
}

/// What one `PUT /v2/apps/:guid/bits` carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub app_guid: String,
    /// `async=true` was in the query string.
    pub is_async: bool,
    /// Size of the `application` part, `None` when there was none.
    pub application_bytes: Option<u64>,
    /// Regular files (and symlinks) inside the zip, by path.
    pub zipped_files: Vec<String>,
    /// Fingerprints in the `resources` part.
    pub resources: usize,
    /// Form fields other than `resources` and the zip (nginx drops them).
    pub dropped_fields: Vec<String>,
    /// The v3 package uploaded to; `None` for a v2 bits upload.
    pub package_guid: Option<String>,
    /// The multipart fields' names, in the order they came.
    pub field_order: Vec<String>,
}

/// What one `PUT /v2/resource_match` asked and got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRecord {
    /// The `fn` of each descriptor asked about.
    pub asked: Vec<String>,
    pub matched: usize,
}

/// One file of a stored package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagedFile {
    pub sha1: String,
    pub size: u64,
    pub mode: u32,
    /// `Some(target)` for a symlink.
    pub link_target: Option<String>,
    /// The mtime the zip entry carried (Unix seconds): the extended
    /// timestamp if present, else the DOS time read as UTC. `None` for a
    /// file copied from the resource pool.
    pub mtime: Option<i64>,
}

/// An app as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppView {
    pub guid: String,
    pub name: String,
    pub space_guid: String,
    pub package_state: String,
    /// The last successful package: path → file. Directories are not kept,
    /// as the Cloud Controller strips them.
    pub package: Option<BTreeMap<String, PackagedFile>>,
    /// v3: `STARTED` or `STOPPED`.
    pub state: String,
    /// v3: the current droplet's guid.
    pub current_droplet: Option<String>,
    /// `buildpack` or `docker`.
    pub lifecycle_type: String,
    pub buildpacks: Vec<String>,
    pub stack: String,
    /// The image of the app's newest docker package (the manifest's
    /// `docker.image` only sets the lifecycle, as in CC).
    pub docker_image: Option<String>,
    pub env: BTreeMap<String, String>,
    /// The `web` process's settings, repeated from `processes`.
    pub memory_in_mb: u64,
    pub disk_in_mb: u64,
    pub instances: u32,
    pub command: Option<String>,
    pub log_rate_limit_in_bytes_per_second: i64,
    pub health_check_type: String,
    pub health_check_http_endpoint: Option<String>,
    pub health_check_timeout: Option<u64>,
    pub health_check_invocation_timeout: Option<u64>,
    pub health_check_interval: Option<u64>,
    pub readiness_health_check_type: String,
    pub readiness_health_check_http_endpoint: Option<String>,
    pub readiness_health_check_invocation_timeout: Option<u64>,
    pub readiness_health_check_interval: Option<u64>,
    /// Every process, `web` first.
    pub processes: Vec<ProcessView>,
    pub sidecars: Vec<SidecarView>,
    /// The app's routes as URLs (`host.domain/path`), oldest first.
    pub routes: Vec<String>,
    pub services: Vec<ServiceBindingView>,
    pub labels: Metadata,
    pub annotations: Metadata,
    pub counts: ActionCounts,
}

/// A v3 package as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageView {
    pub guid: String,
    pub app_guid: String,
    pub state: String,
    /// The `data.checksum.value` once READY.
    pub sha256: Option<String>,
    /// `bits` or `docker`.
    pub package_type: String,
    /// A docker package's `data.image` and `data.username`.
    pub docker_image: Option<String>,
    pub docker_username: Option<String>,
    pub docker_password: Option<String>,
}

/// A service instance tests made with [`CfEmulator::add_service_instance`].
pub(crate) struct ServiceInstance {
    pub name: String,
    pub space_guid: String,
}

pub(crate) struct Space {
    pub org_guid: String,
}

pub(crate) struct EmulatorState {
    pub settings: CfSettings,
    tokens: TokenBook,
    pub spaces: BTreeMap<String, Space>,
    pub apps: BTreeMap<String, App>,
    /// Pooled blobs: sha1 → size. The bytes live in `pool_dir`.
    pub pool: HashMap<String, u64>,
    pub jobs: HashMap<String, Job>,
    pub packages: BTreeMap<String, Package>,
    pub builds: HashMap<String, Build>,
    pub droplets: HashMap<String, Droplet>,
    pub uploads: Vec<UploadRecord>,
    pub matches: Vec<MatchRecord>,
    pub faults: Vec<CfFault>,
    /// v3 jobs (`/v3/jobs/:guid`).
    pub v3_jobs: HashMap<String, V3Job>,
    /// Domains beyond the default one: guid → name.
    pub extra_domains: BTreeMap<String, String>,
    pub routes: BTreeMap<String, Route>,
    pub service_instances: Vec<ServiceInstance>,
    pub deployments: BTreeMap<String, Deployment>,
    /// Raw bodies of `apply_manifest`, oldest first.
    pub manifests: Vec<String>,
    /// log-cache's LOG envelopes, oldest first.
    pub logs: Vec<LogLine>,
    /// A counter for creation order (routes, packages).
    seq: u64,
}

impl EmulatorState {
    /// The next number of the creation order.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The org's domains, guid and name, the default domain first.
    pub fn domains(&self) -> Vec<(String, String)> {
        let mut all = vec![(
            DEMO_DOMAIN_GUID.to_string(),
            self.settings.apps_domain.to_ascii_lowercase(),
        )];
        all.extend(
            self.extra_domains
                .iter()
                .map(|(g, n)| (g.clone(), n.clone())),
        );
        all
    }

    /// The guid of the domain with this name.
    pub fn domain_guid(&self, name: &str) -> Option<String> {
        self.domains()
            .into_iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(g, _)| g)
    }

    /// Whether the app has a deployment in a progressing state.
    pub fn app_deploying(&self, app_guid: &str) -> bool {
        self.deployments
            .values()
            .any(|d| d.app_guid == app_guid && d.is_progressing())
    }

    /// Adds a log-cache LOG envelope, timestamped now (strictly after the
    /// previous one).
    pub fn emit_log(&mut self, source_id: &str, source_type: &str, stream: &str, text: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64;
        let last = self.logs.last().map_or(0, |l| l.timestamp_ns);
        self.logs.push(LogLine {
            timestamp_ns: now.max(last + 1),
            source_id: source_id.into(),
            source_type: source_type.into(),
            stream: stream.into(),
            text: text.into(),
        });
    }

    /// An app's processes with their instances resolved (a process the
    /// manifest never scaled has [`CfSettings::instances`]).
    pub fn processes_of(&self, app: &App) -> Vec<ProcessView> {
        app.processes
            .iter()
            .map(|p| {
                let mut view = p.view.clone();
                if !p.scaled {
                    view.instances = if view.process_type == "web" {
                        self.settings.instances
                    } else {
                        0
                    };
                }
                view
            })
            .collect()
    }

    pub fn app_view(&self, app: &App) -> AppView {
        let processes = self.processes_of(app);
        let web = processes
            .iter()
            .find(|p| p.process_type == "web")
            .cloned()
            .unwrap_or_else(|| ProcessView::new("web", self.settings.instances));
        let mut routes: Vec<&Route> = self
            .routes
            .values()
            .filter(|r| r.destinations.iter().any(|d| d.app_guid == app.guid))
            .collect();
        routes.sort_by_key(|r| r.seq);
        let docker_image = self
            .packages
            .values()
            .filter(|p| p.app_guid == app.guid && p.docker.is_some())
            .max_by_key(|p| p.seq)
            .and_then(|p| p.docker.as_ref().map(|d| d.image.clone()));
        AppView {
            guid: app.guid.clone(),
            name: app.name.clone(),
            space_guid: app.space_guid.clone(),
            package_state: app.package_state.clone(),
            package: app.package.clone(),
            state: app.state.clone(),
            current_droplet: app.current_droplet.clone(),
            lifecycle_type: app.lifecycle_type.clone(),
            buildpacks: app.buildpacks.clone(),
            stack: app.stack.clone(),
            docker_image,
            env: app.env.clone(),
            memory_in_mb: web.memory_in_mb,
            disk_in_mb: web.disk_in_mb,
            instances: web.instances,
            command: web.command.clone(),
            log_rate_limit_in_bytes_per_second: web.log_rate_limit_in_bytes_per_second,
            health_check_type: web.health_check_type.clone(),
            health_check_http_endpoint: web.health_check_http_endpoint.clone(),
            health_check_timeout: web.health_check_timeout,
            health_check_invocation_timeout: web.health_check_invocation_timeout,
            health_check_interval: web.health_check_interval,
            readiness_health_check_type: web.readiness_health_check_type.clone(),
            readiness_health_check_http_endpoint: web.readiness_health_check_http_endpoint.clone(),
            readiness_health_check_invocation_timeout: web
                .readiness_health_check_invocation_timeout,
            readiness_health_check_interval: web.readiness_health_check_interval,
            processes,
            sidecars: app.sidecars.clone(),
            routes: routes.iter().map(|r| r.url()).collect(),
            services: app.services.clone(),
            labels: app.labels.clone(),
            annotations: app.annotations.clone(),
            counts: app.counts,
        }
    }

    /// Takes a staged fault if present.
    pub fn take_fault(&mut self, fault: CfFault) -> bool {
        match self.faults.iter().position(|f| *f == fault) {
            Some(i) => {
                self.faults.remove(i);
                true
            }
            None => false,
        }
    }
}

pub struct CfEmulator {
    pub(crate) state: Mutex<EmulatorState>,
    /// `pool/` holds pooled blobs by SHA-1, `uploads/` the zips in flight.
    dir: TempDir,
}

impl Default for CfEmulator {
    fn default() -> Self {
        Self::new()
    }
}

impl CfEmulator {
    pub fn new() -> Self {
        Self::with_settings(CfSettings::default())
    }

    pub fn with_settings(settings: CfSettings) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pushfs-cf-emulator-")
            .tempdir()
            .expect("the emulator needs a temp directory for its resource pool");
        std::fs::create_dir_all(dir.path().join("pool")).expect("pool directory");
        std::fs::create_dir_all(dir.path().join("uploads")).expect("uploads directory");
        let spaces = BTreeMap::from([(
            DEMO_SPACE_GUID.to_string(),
            Space {
                org_guid: DEMO_ORG_GUID.into(),
            },
        )]);
        CfEmulator {
            state: Mutex::new(EmulatorState {
                settings,
                tokens: TokenBook::default(),
                spaces,
                apps: BTreeMap::new(),
                pool: HashMap::new(),
                jobs: HashMap::new(),
                packages: BTreeMap::new(),
                builds: HashMap::new(),
                droplets: HashMap::new(),
                uploads: Vec::new(),
                matches: Vec::new(),
                faults: Vec::new(),
                v3_jobs: HashMap::new(),
                extra_domains: BTreeMap::new(),
                routes: BTreeMap::new(),
                service_instances: Vec::new(),
                deployments: BTreeMap::new(),
                manifests: Vec::new(),
                logs: Vec::new(),
                seq: 0,
            }),
            dir,
        }
    }

    pub fn settings(&self) -> CfSettings {
        self.state.lock().settings.clone()
    }

    pub fn update_settings(&self, change: impl FnOnce(&mut CfSettings)) {
        change(&mut self.state.lock().settings);
    }

    /// Stages a failure for the next upload (see [`CfFault`]).
    pub fn inject(&self, fault: CfFault) {
        self.state.lock().faults.push(fault);
    }

    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.state.lock().uploads.clone()
    }

    pub fn matches(&self) -> Vec<MatchRecord> {
        self.state.lock().matches.clone()
    }

    pub fn app(&self, guid: &str) -> Option<AppView> {
        let state = self.state.lock();
        state.apps.get(guid).map(|a| state.app_view(a))
    }

    pub fn apps(&self) -> Vec<AppView> {
        let state = self.state.lock();
        state.apps.values().map(|a| state.app_view(a)).collect()
    }

    /// The app with this name (in any space; the first by guid order).
    pub fn app_by_name(&self, name: &str) -> Option<AppView> {
        let state = self.state.lock();
        state
            .apps
            .values()
            .find(|a| a.name == name)
            .map(|a| state.app_view(a))
    }

    /// The raw YAML bodies `apply_manifest` received, oldest first.
    pub fn manifests(&self) -> Vec<String> {
        self.state.lock().manifests.clone()
    }

    /// Creates a service instance named `name` in the space (test setup),
    /// so a manifest's `services` can bind it; returns its guid.
    pub fn add_service_instance(&self, space_guid: &str, name: &str) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        self.state.lock().service_instances.push(ServiceInstance {
            name: name.into(),
            space_guid: space_guid.into(),
        });
        guid
    }

    /// Adds a shared domain besides [`CfSettings::apps_domain`]; returns its guid.
    pub fn add_domain(&self, name: &str) -> String {
        let guid = uuid::Uuid::new_v4().to_string();
        self.state
            .lock()
            .extra_domains
            .insert(guid.clone(), name.to_ascii_lowercase());
        guid
    }

    /// The log-cache LOG envelopes of a source (an app guid), oldest first.
    pub fn log_lines(&self, source_id: &str) -> Vec<LogLine> {
        self.state
            .lock()
            .logs
            .iter()
            .filter(|l| l.source_id == source_id)
            .cloned()
            .collect()
    }

    /// The bytes the emulator kept of a file of a package (files over
    /// 1 MiB, or past 64 MiB per package, are listed but not kept).
    pub fn package_file(&self, package_guid: &str, path: &str) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let package = state.packages.get(package_guid)?;
        package.contents.get(path).map(|b| b.to_vec())
    }

    /// The v3 packages, oldest guid order.
    pub fn packages(&self) -> Vec<PackageView> {
        self.state
            .lock()
            .packages
            .values()
            .map(Package::view)
            .collect()
    }

    /// How many v3 builds were created.
    pub fn builds_created(&self) -> usize {
        self.state.lock().builds.len()
    }

    /// Whether the pool holds a blob with this SHA-1.
    pub fn pool_has(&self, sha1: &str) -> bool {
        self.state
            .lock()
            .pool
            .contains_key(&sha1.to_ascii_lowercase())
    }

    /// Creates an app directly (test setup); returns its guid.
    pub fn create_app(&self, name: &str, space_guid: &str) -> String {
        let app = App::new(name, space_guid);
        let guid = app.guid.clone();
        self.state.lock().apps.insert(guid.clone(), app);
        guid
    }

    /// Adds a space to the demo org (test setup).
    pub fn add_space(&self, guid: &str) {
        self.state.lock().spaces.insert(
            guid.into(),
            Space {
                org_guid: DEMO_ORG_GUID.into(),
            },
        );
    }

    /// Mints an access token the emulator accepts until `expires`.
    pub fn mint_token(&self, scopes: &[&str], expires: SystemTime) -> String {
        self.state.lock().tokens.mint(scopes, expires)
    }

    /// Accepts another refresh token at the UAA endpoint.
    pub fn add_refresh_token(&self, token: &str) {
        self.state.lock().tokens.add_refresh_token(token);
    }

    /// How many refreshes the UAA endpoint granted.
    pub fn refreshes(&self) -> u32 {
        self.state.lock().tokens.refreshes
    }

    /// Access tokens the UAA endpoint handed out, newest last.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.lock().tokens.issued.clone()
    }

    pub(crate) fn pool_path(&self, sha1: &str) -> std::path::PathBuf {
        self.dir.path().join("pool").join(sha1)
    }

    pub(crate) fn uploads_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("uploads")
    }
}

/// `GET /v2/info`: unauthenticated; advertises the emulator itself as the
/// UAA, so a cf CLI (or pushfs) refreshes tokens here.
async fn info(State(emu): State<Arc<CfEmulator>>, headers: HeaderMap) -> Json<serde_json::Value> {
    let v2_enabled = emu.state.lock().settings.v2_enabled;
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let me = format!("http://{host}");
    Json(serde_json::json!({
        "name": "pushfs-emulator",
        "build": "",
        "support": if v2_enabled { "" } else { "CF API v2 is disabled" },
        "version": 0,
        "description": "pushfs's emulated Cloud Controller (v2)",
        "authorization_endpoint": me,
        "token_endpoint": me,
        "min_cli_version": null,
        "min_recommended_cli_version": null,
        "api_version": if v2_enabled { "2.164.0" } else { "" },
        "osbapi_version": "2.15",
    }))
}

async fn unknown_route() -> CfApiError {
    CfApiError::not_found()
}

/// With v2 turned off, nginx answers every `/v2` path but `/v2/info` itself.
async fn v2_switch(State(emu): State<Arc<CfEmulator>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_v2 = path == "/v2" || path.starts_with("/v2/");
    if is_v2 && path != "/v2/info" && !emu.state.lock().settings.v2_enabled {
        return (StatusCode::NOT_FOUND, "V2 endpoints disabled").into_response();
    }
    next.run(request).await
}

/// nginx's `client_max_body_size` for bits (`cc.app_bits_max_body_size`).
const BITS_BODY_LIMIT: usize = 2048 * 1024 * 1024;
/// nginx's `client_max_body_size` elsewhere (`cc.client_max_body_size`).
const BODY_LIMIT: usize = 15 * 1024 * 1024;

impl EmulatedApi for CfEmulator {
    fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v2/info", get(info))
            .route("/oauth/token", post(auth::oauth_token))
            .route("/v2/apps", get(apps::list).post(apps::create))
            .route("/v2/apps/{guid}", get(apps::show))
            .route(
                "/v2/apps/{guid}/bits",
                put(bits::upload).layer(DefaultBodyLimit::max(BITS_BODY_LIMIT)),
            )
            .route("/v2/resource_match", put(pool::resource_match))
            .route("/v2/jobs/{guid}", get(jobs::show))
            .route("/api/v1/read/{source_id}", get(log_cache::read))
            .route("/api/v1/info", get(log_cache::info))
            .merge(v3::routes())
            .fallback(unknown_route)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(middleware::from_fn_with_state(self.clone(), v2_switch))
            .layer(middleware::from_fn_with_state(
                self.clone(),
                router::gorouter,
            ))
            .with_state(self)
    }

    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.cf.url = Some(base_url.to_string());
        config.cf.token = Some(format!("bearer {DEMO_TOKEN}"));
        config.cf.space_guid = Some(DEMO_SPACE_GUID.to_string());
        // The emulator answers at once: no need for the cf CLI's 3 s pace.
        config.cf.poll_interval_ms = Some(500);
        // The emulator's router answers on its own port, in plain HTTP.
        config.cf.route_scheme = Some("http".into());
        config.cf.route_port = reqwest::Url::parse(base_url).ok().and_then(|u| u.port());
    }
}
