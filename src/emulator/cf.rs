//! An emulated Cloud Foundry Cloud Controller (plus its UAA token
//! endpoint), faithful to the rules in `shared/backends/cf.md` (v2) and
//! `shared/backends/cf-v3.md` (v3): apps, a resource pool with the real
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
mod pool;
mod v3;

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
use self::v3::{Build, Droplet, Package};
use super::EmulatedApi;
use crate::config::Config;

pub use self::auth::{DEMO_REFRESH_TOKEN, DEMO_TOKEN, DEVELOPER_SCOPES};
pub use self::errors::CfApiError;

pub const DEMO_ORG_GUID: &str = "0a9c0000-0000-4000-8000-00000000d0e0";
pub const DEMO_ORG_NAME: &str = "demo-org";
pub const DEMO_SPACE_GUID: &str = "5ace0000-0000-4000-8000-00000000d0e0";
pub const DEMO_SPACE_NAME: &str = "demo";

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
}

/// A v3 package as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageView {
    pub guid: String,
    pub app_guid: String,
    pub state: String,
    /// The `data.checksum.value` once READY.
    pub sha256: Option<String>,
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
}

impl EmulatorState {
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
        self.state.lock().apps.get(guid).map(App::view)
    }

    pub fn apps(&self) -> Vec<AppView> {
        self.state.lock().apps.values().map(App::view).collect()
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
            .merge(v3::routes())
            .fallback(unknown_route)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(middleware::from_fn_with_state(self.clone(), v2_switch))
            .with_state(self)
    }

    fn configure_client(&self, base_url: &str, config: &mut Config) {
        config.cf.url = Some(base_url.to_string());
        config.cf.token = Some(format!("bearer {DEMO_TOKEN}"));
        config.cf.space_guid = Some(DEMO_SPACE_GUID.to_string());
    }
}
