//! The Cloud Foundry v3 push, in the cf CLI v8's order: the app (found or
//! created), `resource_matches`, a bits package with its upload, the wait
//! for READY; then, unless `no_start`, a build staged into a droplet, the
//! droplet made current, a restart, and the wait for a RUNNING instance.

mod apps;
mod build;
mod error;
mod package;
mod poll;
mod progress;
mod resources;
mod start;

use std::collections::HashSet;

use serde_json::Value;

use self::poll::Poller;
use self::progress::Progress;
use super::api::CcSession;
use super::apps::Resolution;
use super::bits::{self, BitsPlan};
use super::spec::{AppRef, AppSpec};
use crate::backend::{DeployError, DeployOutcome, DeployState, Report};
use crate::package::fingerprint::PoolWindow;

pub use self::poll::Timing;

/// One v3 push.
pub struct Push<'a> {
    pub session: &'a CcSession<'a>,
    pub spec: &'a AppSpec,
    pub default_space: Option<&'a str>,
    pub window: PoolWindow,
    pub timing: Timing,
    pub report: &'a dyn Report,
}

impl Push<'_> {
    /// The state reads `uploading` from the first request on (the caller
    /// set it), then `processing`, `staging` and `starting`.
    pub async fn run(&self, plan: &BitsPlan<'_>) -> Result<DeployOutcome, DeployError> {
        let report = self.report;
        let (app, how) = apps::resolve(self.session, &self.spec.app, self.default_space).await?;
        report.id(&app.guid);
        report.log(&match (&self.spec.app, how) {
            (AppRef::Name { name, .. }, Resolution::Found) => {
                format!("cf: app {name:?} is {} (v3, {})", app.guid, app.state)
            }
            (AppRef::Name { name, .. }, Resolution::Created) => {
                format!("cf: created app {name:?} as {} (v3)", app.guid)
            }
            _ => format!("cf: app {} (v3, {})", app.guid, app.state),
        });

        let mut progress = Progress::default();
        let (ready, last) = self.upload_package(&app.guid, plan, &mut progress).await?;
        let hash = ready.sha256();
        report.log(&format!(
            "cf: package {} READY, sha256 {}",
            ready.guid,
            hash.as_deref().unwrap_or("(not reported)")
        ));

        if self.spec.no_start {
            if app.state == "STARTED" {
                apps::stop(self.session, &app.guid).await?;
                report.log("cf: no_start: the app was started and is now stopped");
            }
            report.log("cf: no_start: not staged, the current droplet is unchanged");
        } else {
            self.stage_and_start(&app.guid, &ready.guid, &mut progress)
                .await?;
        }
        Ok(DeployOutcome {
            id: Some(app.guid),
            hash,
            revision: None,
            job: Some(progress.job()),
            response: (!last.is_null()).then_some(last),
            warnings: Vec::new(),
        })
    }

    /// Matching, the zip, the package and its upload, and the wait for
    /// READY. Returns the package and its last body.
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

    /// What `cf push` does after the package: build, droplet, restart, and
    /// the wait for RUNNING.
    async fn stage_and_start(
        &self,
        app_guid: &str,
        package_guid: &str,
        progress: &mut Progress,
    ) -> Result<(), DeployError> {
        let (report, session) = (self.report, self.session);
        report.state(DeployState::Staging);
        let build = build::create(session, package_guid).await?;
        progress.set(report, "build", &build.guid, &build.state);
        let poller = Poller::new(self.timing.interval, self.timing.staging_timeout);
        let droplet = build::wait_staged(session, build, poller, progress, report).await?;
        report.log(&format!("cf: staged droplet {}", droplet.guid));

        report.state(DeployState::Starting);
        start::run_droplet(session, app_guid, &droplet.guid).await?;
        report.log(&format!(
            "cf: droplet {} is current; app restarted",
            droplet.guid
        ));
        start::wait_running(
            session,
            app_guid,
            self.timing.interval,
            self.timing.startup_timeout,
            report,
        )
        .await?;
        report.log("cf: the app is running");
        Ok(())
    }
}
