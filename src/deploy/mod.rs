//! Per-app deploy lifecycle: settle timer, snapshot, single-flight queue,
//! retries and persisted state; drives a [`crate::backend::Backend`].
//!
//! Each app has one worker task. File system events only touch a few
//! fields and wake it, so FUSE handlers never wait on a deploy or the network.

mod app;
pub mod claims;
pub mod log;
pub mod records;
mod retry;
/// The snapshot types live on the ground floor; kept here under their old path.
pub use crate::snapshot;
pub mod status;
pub mod status_view;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use tokio::runtime::Handle;

use crate::backend::{Backend, BackendKind, IgnoreProfile};
use crate::config::RetryPolicy;
use crate::tree::status_files::StatusFile;
use crate::tree::{AppId, CtlCommand, DeployHooks, RolledBack, Tree};

use app::AppDeploy;

/// What the deploy layer needs to know, taken from the configuration.
#[derive(Debug, Clone)]
pub struct DeploySettings {
    pub settle: Duration,
    pub retry: RetryPolicy,
    pub state_dir: PathBuf,
    /// How many of each app's deployed trees stay restorable.
    pub history_keep: usize,
}

pub struct Deployer {
    runtime: Handle,
    backends: HashMap<BackendKind, Arc<dyn Backend>>,
    settings: DeploySettings,
    apps: DashMap<AppId, Arc<AppDeploy>>,
    /// Set by `start`; until then apps are only registered, not run.
    tree: OnceLock<Weak<Tree>>,
    /// Which folder deploys to which remote app.
    claims: Arc<claims::RemoteClaims>,
}

impl Deployer {
    pub fn new(
        runtime: Handle,
        backends: Vec<Arc<dyn Backend>>,
        settings: DeploySettings,
    ) -> Arc<Deployer> {
        Arc::new(Deployer {
            runtime,
            backends: backends.into_iter().map(|b| (b.kind(), b)).collect(),
            settings,
            apps: DashMap::new(),
            tree: OnceLock::new(),
            claims: Arc::default(),
        })
    }

    /// Connects the tree and starts a worker for every app known so far.
    pub fn start(&self, tree: &Arc<Tree>) {
        let _ = self.tree.set(Arc::downgrade(tree));
        for app in self.apps.iter() {
            self.spawn_worker(app.value().clone());
        }
    }

    fn spawn_worker(&self, app: Arc<AppDeploy>) {
        let Some(tree) = self.tree.get().cloned() else {
            return;
        };
        let Some(backend) = self.backends.get(&app.backend).cloned() else {
            return;
        };
        let settings = self.settings.clone();
        let claims = self.claims.clone();
        self.runtime
            .spawn(worker::run(app, tree, backend, settings, claims));
    }

    /// Stops every worker; a deploy in flight is abandoned and resumes on the next mount.
    pub fn shutdown(&self) {
        for app in self.apps.iter() {
            app.value().stop();
        }
    }

    fn app(&self, app: &AppId) -> Option<Arc<AppDeploy>> {
        self.apps.get(app).map(|a| a.value().clone())
    }
}

impl DeployHooks for Deployer {
    fn app_created(&self, app: &AppId, backend: BackendKind, name: &str) {
        let deploy = Arc::new(AppDeploy::load(
            app,
            backend,
            name,
            &self.settings.state_dir,
        ));
        self.apps.insert(app.clone(), deploy.clone());
        // Before `start` there is no tree yet and this does nothing; `start`
        // runs the workers of the apps restored until then.
        self.spawn_worker(deploy);
    }

    fn app_changed(&self, app: &AppId) {
        if let Some(deploy) = self.app(app) {
            deploy.mark_changed();
        }
    }

    fn app_renamed(&self, app: &AppId, name: &str) {
        if let Some(deploy) = self.app(app) {
            deploy.renamed(name);
        }
        self.claims.renamed(app, name);
    }

    fn app_note(&self, app: &AppId, message: &str) {
        if let Some(deploy) = self.app(app) {
            deploy.log("recovery", message);
        }
    }

    fn app_held(&self, app: &AppId, reason: &str) {
        if let Some(deploy) = self.app(app) {
            deploy.hold(reason);
        }
    }

    fn app_removed(&self, app: &AppId) {
        if let Some((_, deploy)) = self.apps.remove(app) {
            deploy.remove();
        }
        self.claims.release(app);
        if let Err(err) = records::remove_app(&self.settings.state_dir, &app.0) {
            tracing::warn!(app = %app, %err, "cannot delete the removed app's records");
        }
    }

    fn command(&self, app: &AppId, command: CtlCommand) {
        if let Some(deploy) = self.app(app) {
            match command {
                CtlCommand::Deploy => deploy.force(),
                CtlCommand::Cancel => deploy.cancel(),
                CtlCommand::Hold => {
                    deploy.hold("held through .pushfs/ctl; write `release` to resume")
                }
                CtlCommand::Release => deploy.release(),
                CtlCommand::Renew(blocks) => deploy.renew(blocks),
                // The tree carries out a rollback, then calls `app_rolled_back`.
                CtlCommand::Rollback(_) => {}
            }
        }
    }

    fn command_refused(&self, app: &AppId, message: &str) {
        if let Some(deploy) = self.app(app) {
            deploy.log("trigger", message);
        }
    }

    fn app_rolled_back(&self, app: &AppId, rollback: &RolledBack) {
        if let Some(deploy) = self.app(app) {
            deploy.rolled_back(rollback);
        }
    }

    fn ignore_profile(&self, backend: BackendKind) -> IgnoreProfile {
        self.backends
            .get(&backend)
            .map(|b| b.ignore_profile())
            .unwrap_or_default()
    }

    fn status_file(&self, app: &AppId, file: StatusFile) -> Vec<u8> {
        match self.app(app) {
            Some(deploy) => deploy.render(file),
            None => Vec::new(),
        }
    }

    fn wait(&self, app: &AppId, done: Box<dyn FnOnce(Vec<u8>) + Send>) {
        let Some(deploy) = self.app(app) else {
            return done(Vec::new());
        };
        self.runtime.spawn(async move {
            deploy.until_idle().await;
            done(deploy.render(StatusFile::Wait));
        });
    }
}
