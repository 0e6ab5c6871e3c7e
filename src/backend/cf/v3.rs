//! The Cloud Foundry v3 push, as the cf CLI v8's push actor runs it: the
//! manifest applied to the space first (`apply_manifest`: settings,
//! routes), then for each app of the plan, in manifest order, a sequence
//! of small steps: find the app, its source (bits through
//! `resource_matches` and an uploaded package, or a docker image), and,
//! unless `no_start`, stage a droplet, run it (restart, or a rolling
//! deployment for a started app), wait for a RUNNING instance and read
//! where the app is reached. Each step's start shows in `status.json`.

mod apply;
mod apps;
mod build;
mod deployment;
mod error;
mod package;
mod poll;
mod progress;
mod resources;
mod routes;
mod staging_log;
mod start;

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use self::poll::Poller;
use self::progress::Progress;
use super::api::CcSession;
use super::apps::Resolution;
use super::bits::{self, BitsPlan};
use super::plan::{AppSource, DeployPlan, PushPlan};
use super::source::AppBits;
use super::spec::{AppRef, Strategy};
use crate::backend::{DeployError, DeployOutcome, DeployState, IgnoreProfile, RemoteApp, Report};
use crate::package::fingerprint::PoolWindow;
use crate::snapshot::Snapshot;

pub use self::poll::Timing;
pub use self::routes::RouteUrls;

/// One v3 push of a folder.
pub struct Push<'a> {
    pub session: &'a CcSession<'a>,
    pub default_space: Option<&'a str>,
    pub window: PoolWindow,
    pub timing: Timing,
    pub report: &'a dyn Report,
    /// How a started app takes its new droplet.
    pub strategy: Strategy,
    /// The root document's log-cache, for staging output.
    pub log_cache: Option<String>,
    pub routes: RouteUrls,
    /// `CF_DOCKER_PASSWORD`, for a private image.
    pub docker_password: Option<&'a str>,
    pub profile: IgnoreProfile,
}

/// Where every app of the deploy stands: `status.json`'s `apps`.
struct Board<'r> {
    apps: Vec<RemoteApp>,
    report: &'r dyn Report,
}

impl Board<'_> {
    fn update(&mut self, index: usize, change: impl FnOnce(&mut RemoteApp)) {
        change(&mut self.apps[index]);
        self.report.apps(&self.apps);
    }

    /// A step starts: the app and the folder show its phase.
    fn step(&mut self, index: usize, step: &str, state: DeployState) {
        self.report.state(state);
        self.update(index, |a| {
            a.step = Some(step.to_string());
            a.state = state;
        });
    }
}

/// What one app's push left behind.
struct Pushed {
    guid: String,
    hash: Option<String>,
    last: Value,
}

impl Push<'_> {
    pub async fn run(
        &self,
        snapshot: &Snapshot,
        plan: &DeployPlan,
    ) -> Result<DeployOutcome, DeployError> {
        let mut board = Board {
            apps: plan
                .apps
                .iter()
                .map(|a| RemoteApp::pending(a.label()))
                .collect(),
            report: self.report,
        };
        self.report.apps(&board.apps);
        if let Some(yaml) = &plan.manifest {
            self.apply_manifest(plan, yaml, &mut board).await?;
        }
        let several = plan.apps.len() > 1;
        let mut progress = Progress::default();
        let mut first: Option<Pushed> = None;
        for (index, app) in plan.apps.iter().enumerate() {
            progress.for_app(several.then(|| app.label()));
            match self
                .push_app(snapshot, plan, app, index, &mut board, &mut progress)
                .await
            {
                Ok(pushed) => {
                    first.get_or_insert(pushed);
                }
                Err(err) => {
                    board.update(index, |a| a.state = DeployState::Failed);
                    for rest in index + 1..board.apps.len() {
                        board.update(rest, |a| a.state = DeployState::Idle);
                    }
                    return Err(match several {
                        true => err.in_app(app.label()),
                        false => err,
                    });
                }
            }
        }
        let first = first.expect("a plan has at least one app");
        Ok(DeployOutcome {
            id: Some(first.guid),
            hash: first.hash,
            revision: None,
            job: Some(progress.job()),
            response: (!first.last.is_null()).then_some(first.last),
            warnings: Vec::new(),
        })
    }

    fn space<'s>(&'s self, plan: &'s DeployPlan) -> Result<&'s str, DeployError> {
        plan.space_guid.as_deref().or(self.default_space).ok_or_else(|| {
            DeployError::InvalidSpec(
                "no space to deploy to: add \"space_guid\" to spec.json, set [cf] space_guid, or target a space with `cf target -s`".into(),
            )
        })
    }

    /// Step: the manifest, applied to the space before any upload.
    async fn apply_manifest(
        &self,
        plan: &DeployPlan,
        yaml: &str,
        board: &mut Board<'_>,
    ) -> Result<(), DeployError> {
        let space = self.space(plan)?;
        for index in 0..board.apps.len() {
            board.update(index, |a| a.step = Some("apply_manifest".into()));
        }
        self.report.log(&format!(
            "cf: applying {} to space {space} ({} app{})",
            plan.named_by,
            plan.apps.len(),
            if plan.apps.len() == 1 { "" } else { "s" }
        ));
        let poller = Poller::new(self.timing.interval, self.timing.package_timeout);
        apply::apply_manifest(self.session, space, yaml, poller, self.report).await
    }

    /// The steps of one app, in order.
    async fn push_app(
        &self,
        snapshot: &Snapshot,
        plan: &DeployPlan,
        app: &PushPlan,
        index: usize,
        board: &mut Board<'_>,
        progress: &mut Progress,
    ) -> Result<Pushed, DeployError> {
        board.step(index, "find_app", DeployState::Uploading);
        let remote = self.find_app(plan, app, index == 0).await?;
        board.update(index, |a| a.guid = Some(remote.guid.clone()));

        board.step(index, "upload", DeployState::Uploading);
        let (ready, last) = match &app.source {
            AppSource::Docker(image) => self.docker_package(&remote.guid, image, progress).await?,
            source => {
                let bits = AppBits::gather(snapshot, plan, source, &self.profile).await?;
                let entries = bits.entries();
                self.upload_package(&remote.guid, &BitsPlan::new(entries), progress)
                    .await?
            }
        };
        let hash = ready.sha256();
        board.update(index, |a| a.package = Some(ready.guid.clone()));
        self.report.log(&format!(
            "cf: {}package {} READY, sha256 {}",
            prefix(plan, app),
            ready.guid,
            hash.as_deref().unwrap_or("(not reported)")
        ));

        if plan.no_start {
            self.leave_stopped(&remote).await?;
            board.update(index, |a| a.state = DeployState::Deployed);
            return Ok(Pushed {
                guid: remote.guid,
                hash,
                last,
            });
        }

        // The state says `staging` once the build exists, so `.pushfs/job`
        // already lists it whenever a reader sees that state.
        let (build, droplet) = self
            .stage(&remote.guid, &ready.guid, progress, || {
                board.step(index, "stage", DeployState::Staging)
            })
            .await?;
        board.update(index, |a| {
            a.build = Some(build);
            a.droplet = Some(droplet.clone());
        });

        let rolling = self.strategy == Strategy::Rolling && remote.state == "STARTED";
        if rolling {
            board.step(index, "deployment", DeployState::Starting);
            let guid = self.roll_out(&remote.guid, &droplet).await?;
            board.update(index, |a| a.deployment = Some(guid));
        } else {
            board.step(index, "restart", DeployState::Starting);
            start::run_droplet(self.session, &remote.guid, &droplet).await?;
            self.report.log(&format!(
                "cf: {}droplet {droplet} is current; app restarted",
                prefix(plan, app)
            ));
        }

        board.step(index, "wait_running", DeployState::Starting);
        start::wait_running(
            self.session,
            &remote.guid,
            self.timing.interval,
            self.timing.startup_timeout,
            self.report,
        )
        .await?;
        self.report
            .log(&format!("cf: {}the app is running", prefix(plan, app)));

        board.update(index, |a| a.step = Some("routes".into()));
        let urls = self.read_routes(&remote.guid).await;
        board.update(index, |a| {
            a.routes = urls;
            a.state = DeployState::Deployed;
        });
        Ok(Pushed {
            guid: remote.guid,
            hash,
            last,
        })
    }

    /// Step: the app, found (the manifest made it) or created.
    async fn find_app(
        &self,
        plan: &DeployPlan,
        app: &PushPlan,
        first: bool,
    ) -> Result<apps::App, DeployError> {
        let (remote, how) = apps::resolve(self.session, &app.app, self.default_space).await?;
        if first {
            self.report.id(&remote.guid);
        }
        self.report.log(&match (&app.app, how) {
            (AppRef::Name { name, .. }, Resolution::Found) => {
                format!("cf: app {name:?} is {} (v3, {})", remote.guid, remote.state)
            }
            (AppRef::Name { name, .. }, Resolution::Created) => {
                format!("cf: created app {name:?} as {} (v3)", remote.guid)
            }
            _ => format!(
                "cf: {}app {} (v3, {})",
                prefix(plan, app),
                remote.guid,
                remote.state
            ),
        });
        Ok(remote)
    }

    /// Step, for a docker app: its package names the image.
    async fn docker_package(
        &self,
        app_guid: &str,
        image: &super::manifest::DockerImage,
        progress: &mut Progress,
    ) -> Result<(package::Package, Value), DeployError> {
        let password = image.username.as_ref().and(self.docker_password);
        if image.username.is_some() && password.is_none() {
            return Err(DeployError::NotConfigured {
                backend: "cf",
                missing: format!(
                    "the password of docker user {:?} for {}: set CF_DOCKER_PASSWORD (or PUSHFS_CF_DOCKER_PASSWORD) where pushfs mounts",
                    image.username.as_deref().unwrap_or_default(),
                    image.image
                ),
            });
        }
        let created = package::create_docker(
            self.session,
            app_guid,
            &image.image,
            image.username.as_deref(),
            password,
        )
        .await?;
        self.report.log(&format!(
            "cf: docker package {} for {}",
            created.guid, image.image
        ));
        progress.set(self.report, "package", &created.guid, &created.state);
        self.report.state(DeployState::Processing);
        let poller = Poller::new(self.timing.interval, self.timing.package_timeout);
        package::wait_ready(self.session, created, poller, progress, self.report).await
    }

    /// Step, for bits: matching, the zip, the package and its upload, and
    /// the wait for READY. Returns the package and its last body.
    async fn upload_package(
        &self,
        app_guid: &str,
        plan: &BitsPlan<'_>,
        progress: &mut Progress,
    ) -> Result<(package::Package, Value), DeployError> {
        let (report, session) = (self.report, self.session);
        let candidates = plan.candidates(&self.window);
        let matched = if candidates.is_empty() {
            resources::Matched::default()
        } else {
            match resources::match_resources(session, &candidates).await {
                Ok(matched) => matched,
                Err(err) => {
                    report.log(&format!(
                        "cf: resource match failed ({err}); uploading every file"
                    ));
                    resources::Matched::default()
                }
            }
        };
        let (in_pool, to_zip) = plan.split(&matched.sha1s, &self.window);
        let pooled_bytes: u64 = in_pool.iter().map(|f| f.size).sum();
        report.log(&format!(
            "cf: {} files fingerprinted, {} asked about, {} already on the server ({} bytes not sent)",
            plan.fingerprints.len(),
            candidates.len(),
            in_pool.len(),
            pooled_bytes
        ));
        // Sent back as the server answered them, but only those the split
        // kept out of the zip (a mode the upload would refuse stays in it).
        let pooled_paths: HashSet<&str> = in_pool.iter().map(|f| f.path.as_str()).collect();
        let pooled: Vec<Value> = matched
            .resources
            .into_iter()
            .filter(|r| {
                r.get("path")
                    .and_then(Value::as_str)
                    .is_some_and(|p| pooled_paths.contains(p))
            })
            .collect();
        let zip = bits::zip_if_needed(&to_zip, report).await?;

        let created = package::create(session, app_guid).await?;
        progress.set(report, "package", &created.guid, &created.state);
        let (uploaded, body) =
            package::upload(session, &created.guid, &pooled, zip.as_ref(), report).await?;
        drop(zip);
        report.response(&body);
        progress.set(report, "package", &uploaded.guid, &uploaded.state);
        report.state(DeployState::Processing);
        let poller = Poller::new(self.timing.interval, self.timing.package_timeout);
        package::wait_ready(session, uploaded, poller, progress, report).await
    }

    /// `no_start`: nothing staged, the current droplet unchanged, a
    /// started app stopped (`cf push --no-start`).
    async fn leave_stopped(&self, remote: &apps::App) -> Result<(), DeployError> {
        if remote.state == "STARTED" {
            apps::stop(self.session, &remote.guid).await?;
            self.report
                .log("cf: no_start: the app was started and is now stopped");
        }
        self.report
            .log("cf: no_start: not staged, the current droplet is unchanged");
        Ok(())
    }

    /// Step: a build of the package, waited until STAGED; the build's and
    /// the droplet's guids. A failed build brings its staging output into
    /// the log, from log-cache.
    async fn stage(
        &self,
        app_guid: &str,
        package_guid: &str,
        progress: &mut Progress,
        started: impl FnOnce(),
    ) -> Result<(String, String), DeployError> {
        let (report, session) = (self.report, self.session);
        // log-cache's clock is not ours: a little slack before the build.
        let since = SystemTime::now() - Duration::from_secs(5);
        let build = build::create(session, package_guid).await?;
        let build_guid = build.guid.clone();
        progress.set(report, "build", &build.guid, &build.state);
        started();
        let poller = Poller::new(self.timing.interval, self.timing.staging_timeout);
        match build::wait_staged(session, build, poller, progress, report).await {
            Ok(droplet) => {
                report.log(&format!("cf: staged droplet {}", droplet.guid));
                Ok((build_guid, droplet.guid))
            }
            Err(err) => {
                self.copy_staging_log(app_guid, since).await;
                Err(err)
            }
        }
    }

    async fn copy_staging_log(&self, app_guid: &str, since: SystemTime) {
        let Some(log_cache) = &self.log_cache else {
            self.report.log(
                "cf: this foundation links no log-cache; `cf logs APP --recent` shows the staging output",
            );
            return;
        };
        match staging_log::read_staging(self.session, log_cache, app_guid, since).await {
            Ok(lines) if lines.is_empty() => {
                self.report.log("cf: log-cache holds no staging output")
            }
            Ok(lines) => {
                for line in lines {
                    self.report.log(&format!("cf: staging: {line}"));
                }
            }
            Err(err) => self
                .report
                .log(&format!("cf: cannot read the staging output ({err})")),
        }
    }

    /// Step, rolling: a deployment replaces the instances with no stop.
    async fn roll_out(&self, app_guid: &str, droplet: &str) -> Result<String, DeployError> {
        let report = self.report;
        let created = deployment::create(self.session, app_guid, droplet).await?;
        report.log(&format!(
            "cf: rolling deployment {} of droplet {droplet}",
            created.guid
        ));
        let poller = Poller::new(self.timing.interval, self.timing.startup_timeout);
        let guid = created.guid.clone();
        deployment::wait_deployed(self.session, created, poller, report, |shown| {
            report.log(&format!("poll: deployment {guid} is {shown}"))
        })
        .await?;
        report.log(&format!("cf: deployment {guid} DEPLOYED"));
        Ok(guid)
    }

    /// Step: the app's routes as URLs. Reading them is no reason to fail
    /// a deploy that runs: a failure is logged and the list left empty.
    async fn read_routes(&self, app_guid: &str) -> Vec<String> {
        match routes::list(self.session, app_guid, &self.routes).await {
            Ok(urls) => {
                if urls.is_empty() {
                    self.report
                        .log("cf: the app has no route (no-route, or none in the manifest)");
                } else {
                    self.report.log(&format!("cf: routes: {}", urls.join(" ")));
                }
                urls
            }
            Err(err) => {
                self.report
                    .log(&format!("cf: cannot read the app's routes ({err})"));
                Vec::new()
            }
        }
    }
}

/// `shop: ` before a log line when the folder deploys several apps.
fn prefix(plan: &DeployPlan, app: &PushPlan) -> String {
    if plan.apps.len() > 1 {
        format!("{}: ", app.label())
    } else {
        String::new()
    }
}
