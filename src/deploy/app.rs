//! One app's deploy state, shared between FUSE threads (which mark changes
//! and read status) and the app's worker task (which deploys).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::log::AppLog;
use super::records::{app_dir, write_atomically};
use super::status::{now_rfc3339, short_digest, AppStatus};
use crate::backend::{
    BackendKind, DeployState, JobInfo, Lease, PaymentDue, ProgressPhase, RemoteApp, Report,
};
use crate::printable::printable;
use crate::progress::Progress;
use crate::tree::status_files::StatusFile;
use crate::tree::{AppId, RolledBack};

const STATUS_FILE: &str = "status.json";

pub struct AppDeploy {
    pub id: AppId,
    pub backend: BackendKind,
    dir: PathBuf,
    status: Mutex<AppStatus>,
    log: Mutex<AppLog>,
    /// When the last unhandled change happened; `None` when clean.
    changed_at: Mutex<Option<Instant>>,
    /// `deploy` was written to ctl: deploy even if the digest is unchanged.
    forced: AtomicBool,
    /// A deploy is running (changes during it queue a follow-up).
    deploying: AtomicBool,
    pub wake: Notify,
    busy: watch::Sender<bool>,
    cancel: Mutex<Option<CancellationToken>>,
    stopped: CancellationToken,
    removed: AtomicBool,
    /// Restored from disk: the first snapshot only deploys if the content
    /// differs from the last attempt, or that attempt never finished.
    recheck: AtomicBool,
    /// `changed_at` was set by [`AppDeploy::recheck_quietly`], not by a
    /// change: the first real change must still show `pending`.
    quiet: AtomicBool,
    /// Automatic deploys are stopped, for this reason, until the user asks.
    held: Mutex<Option<String>>,
    /// `renew` was written to ctl: extend the app's paid time (by these
    /// blocks, or the spec's own length).
    renew: Mutex<Option<Option<u64>>>,
}

impl AppDeploy {
    /// Restores the app's status and log from its directory, if any. A
    /// deploy that was under way when pushfs stopped is resumed.
    pub fn load(id: &AppId, backend: BackendKind, name: &str, state_dir: &Path) -> AppDeploy {
        let dir = app_dir(state_dir, &id.0);
        let saved = std::fs::read(dir.join(STATUS_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<AppStatus>(&b).ok());
        let log = AppLog::open(&dir);
        let mut resume = false;
        let mut held = None;
        let restored = saved.is_some();
        let status = match saved {
            Some(mut s) => {
                s.app = name.to_string();
                // Whatever was under way starts over.
                s.progress = None;
                if s.state == DeployState::Held {
                    held = s.error.clone();
                } else if s.state == DeployState::Retrying {
                    // Shown as it was: the worker waits for the saved
                    // `next_attempt_at` and goes on retrying.
                } else if !s.state.is_final() {
                    resume = true;
                    s.state = DeployState::Pending;
                }
                s
            }
            None => AppStatus::new(name, backend),
        };
        let app = AppDeploy {
            id: id.clone(),
            backend,
            dir,
            status: Mutex::new(status),
            log: Mutex::new(log),
            changed_at: Mutex::new(None),
            forced: AtomicBool::new(false),
            deploying: AtomicBool::new(false),
            wake: Notify::new(),
            busy: watch::channel(false).0,
            cancel: Mutex::new(None),
            stopped: CancellationToken::new(),
            removed: AtomicBool::new(false),
            recheck: AtomicBool::new(!resume),
            quiet: AtomicBool::new(false),
            held: Mutex::new(held),
            renew: Mutex::new(None),
        };
        if resume {
            app.log(
                "trigger",
                "resuming the deploy interrupted when pushfs last stopped",
            );
        }
        if resume || !restored {
            app.mark_changed();
        } else {
            // Changes made just before the last shutdown may not have been
            // deployed; the worker compares digests and decides, without
            // showing `pending` for an app whose outcome is recorded.
            app.recheck_quietly();
        }
        app
    }

    /// Has the worker snapshot the app and compare digests, leaving the
    /// shown state alone: `.pushfs/wait` blocks until it has looked.
    fn recheck_quietly(&self) {
        self.quiet.store(true, Ordering::SeqCst);
        *self.changed_at.lock() = Some(Instant::now());
        self.busy.send_replace(true);
        self.wake.notify_one();
    }

    /// A change in the app. Only the first change since the worker last
    /// claimed one wakes it: later ones just move `changed_at`, which the
    /// worker reads again when its settle timer fires. A copy of thousands
    /// of files thus costs one wake-up, not thousands.
    pub fn mark_changed(&self) {
        let first = self.changed_at.lock().replace(Instant::now()).is_none();
        if first || self.quiet.swap(false, Ordering::SeqCst) {
            self.note_change();
        }
    }

    fn note_change(&self) {
        self.busy.send_replace(true);
        let mut status = self.status.lock();
        if self.deploying.load(Ordering::SeqCst) {
            status.followup_queued = true;
        } else if status.state != DeployState::Pending && status.state != DeployState::Held {
            status.state = DeployState::Pending;
            status.updated_at = now_rfc3339();
        }
        drop(status);
        self.wake.notify_one();
    }

    /// `deploy` through ctl: deploys now, and ends a hold.
    pub fn force(&self) {
        self.force_because("deploy requested through .pushfs/ctl");
    }

    fn force_because(&self, why: &str) {
        self.held.lock().take();
        self.forced.store(true, Ordering::SeqCst);
        self.log("trigger", why);
        *self.changed_at.lock() = Some(Instant::now());
        self.note_change();
    }

    /// The folder was put back to a kept tree: it deploys, even if held,
    /// as `deploy` would.
    pub fn rolled_back(&self, rollback: &RolledBack) {
        let to = short_digest(&rollback.to);
        let why = match &rollback.replaced {
            Some(old) => format!(
                "rolled back to {to} through .pushfs/ctl; the tree it replaced is kept as {} \
                 (see .pushfs/history); deploying",
                short_digest(old)
            ),
            None => format!("rollback to {to}: the folder already holds that tree; deploying it"),
        };
        self.force_because(&why);
    }

    /// Stops automatic deploys; the deploy in flight, if any, finishes.
    pub fn hold(&self, reason: &str) {
        *self.held.lock() = Some(reason.to_string());
        self.log("trigger", &format!("held: {reason}"));
        self.update(true, |s| {
            if s.state.is_final() || s.state == DeployState::Pending {
                s.state = DeployState::Held;
            }
            s.error = Some(reason.to_string());
        });
        self.wake.notify_one();
    }

    /// Resumes automatic deploys; the worker deploys if the tree changed.
    pub fn release(&self) {
        if self.held.lock().take().is_none() {
            self.log("trigger", "release requested, but the app is not held");
            return;
        }
        self.log("trigger", "released through .pushfs/ctl");
        self.update(true, |s| {
            s.error = None;
            if s.state == DeployState::Held {
                s.state = DeployState::Idle;
            }
        });
        self.recheck.store(true, Ordering::SeqCst);
        self.mark_changed();
    }

    /// `renew` through ctl: the worker sends the renewal once nothing else
    /// is pending.
    pub fn renew(&self, blocks: Option<u64>) {
        let by = match blocks {
            Some(b) => format!("{b} blocks from now"),
            None => "the spec's expire, from now".to_string(),
        };
        self.log(
            "trigger",
            &format!("renew requested through .pushfs/ctl ({by})"),
        );
        *self.renew.lock() = Some(blocks);
        self.busy.send_replace(true);
        self.wake.notify_one();
    }

    /// Takes the pending `renew` request, if any.
    pub fn take_renew(&self) -> Option<Option<u64>> {
        self.renew.lock().take()
    }

    /// Why automatic deploys are stopped, if they are.
    pub fn held(&self) -> Option<String> {
        self.held.lock().clone()
    }

    pub fn cancel(&self) {
        match self.cancel.lock().as_ref() {
            Some(token) => {
                self.log("trigger", "cancel requested through .pushfs/ctl");
                token.cancel();
            }
            None => self.log("trigger", "cancel requested, but no deploy is running"),
        }
    }

    pub fn renamed(&self, name: &str) {
        self.status.lock().app = name.to_string();
        self.log("trigger", &format!("app directory renamed to {name}"));
    }

    pub fn remove(&self) {
        self.removed.store(true, Ordering::SeqCst);
        self.log.lock().detach();
        self.stop();
    }

    /// Ends the worker (unmount or removal) and any deploy in flight.
    pub fn stop(&self) {
        self.stopped.cancel();
        if let Some(token) = self.cancel.lock().as_ref() {
            token.cancel();
        }
        self.busy.send_replace(false);
    }

    pub fn stopped(&self) -> &CancellationToken {
        &self.stopped
    }

    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// Takes the pending change: `(changed_at, forced)`.
    pub fn pending_change(&self) -> (Option<Instant>, bool) {
        (*self.changed_at.lock(), self.forced.load(Ordering::SeqCst))
    }

    /// Whether this is the first look at an app restored from disk.
    pub fn take_recheck(&self) -> bool {
        self.recheck.swap(false, Ordering::SeqCst)
    }

    /// Claims the pending change for the deploy about to start. Returns whether it was forced.
    pub fn claim_change(&self) -> bool {
        *self.changed_at.lock() = None;
        self.quiet.store(false, Ordering::SeqCst);
        self.forced.swap(false, Ordering::SeqCst)
    }

    /// Clears `busy` unless a change arrived since the last claim.
    pub fn settle_idle(&self) {
        let clean = self.changed_at.lock().is_none() && !self.forced.load(Ordering::SeqCst);
        if clean {
            self.busy.send_replace(false);
        }
    }

    pub async fn until_idle(&self) {
        let mut rx = self.busy.subscribe();
        let _ = rx.wait_for(|busy| !*busy).await;
    }

    pub fn set_deploying(&self, token: Option<CancellationToken>) {
        let ended = token.is_none();
        self.deploying.store(!ended, Ordering::SeqCst);
        *self.cancel.lock() = token;
        if ended && self.status.lock().progress.is_some() {
            // However it ended (a shutdown leaves the state as it was).
            self.update(false, |s| s.progress = None);
        }
    }

    pub fn status(&self) -> AppStatus {
        self.status.lock().clone()
    }

    /// Edits the status, stamps it, and saves it if `persist` (or if an
    /// earlier save failed). A failed save leaves `record_behind` set in
    /// what the status files show, until a later save succeeds.
    pub fn update(&self, persist: bool, edit: impl FnOnce(&mut AppStatus)) {
        let mut status = self.status.lock();
        edit(&mut status);
        status.settle_progress();
        status.updated_at = now_rfc3339();
        if (persist || status.record_behind) && !self.is_removed() {
            let was_behind = status.record_behind;
            status.record_behind = false;
            let bytes = serde_json::to_vec_pretty(&*status).unwrap_or_default();
            match write_atomically(&self.dir, STATUS_FILE, &bytes) {
                Ok(()) if was_behind => {
                    tracing::info!(app = %self.id, "the deploy status is saved again")
                }
                Ok(()) => {}
                Err(err) => {
                    status.record_behind = true;
                    if !was_behind {
                        tracing::error!(app = %self.id, %err, "cannot save the deploy status; retrying");
                    }
                }
            }
        }
    }

    /// Saves the status and the log again if their last save failed.
    pub fn retry_record(&self) {
        if self.status.lock().record_behind {
            self.update(true, |_| {});
        }
        self.log.lock().flush();
    }

    pub fn record_behind(&self) -> bool {
        self.status.lock().record_behind || self.log.lock().behind()
    }

    pub fn log(&self, event: &str, message: &str) {
        let message = &*printable(message);
        let name = self.status.lock().app.clone();
        tracing::info!(app = %name, backend = %self.backend, event, "{message}");
        self.log.lock().push(event, message);
    }

    /// One status file's bytes, rendered under the status lock: reading
    /// `state` costs a word, not a copy of the whole status.
    pub fn render(&self, file: StatusFile) -> Vec<u8> {
        let lines = if file == StatusFile::Log {
            self.log.lock().lines()
        } else {
            Vec::new()
        };
        let mut status = self.status.lock();
        status.busy = *self.busy.borrow();
        super::status_view::render(file, &status, &lines)
    }
}

/// Hands a backend's live progress to the status files.
pub struct StatusReport<'a> {
    pub app: &'a AppDeploy,
}

impl Report for StatusReport<'_> {
    fn state(&self, state: DeployState) {
        self.app.update(false, |s| s.state = state);
    }

    /// Dropped unless the state is the phase's own (see
    /// [`AppStatus::settle_progress`]): a late update cannot outlive its phase.
    fn progress(&self, phase: ProgressPhase, done: u64, total: u64) {
        self.app.update(false, |s| {
            s.progress = Some(Progress {
                phase,
                bytes_done: done,
                bytes_total: total,
            })
        });
    }

    /// A line that starts with an event name (`package: ...`) keeps it;
    /// anything else is filed under `upload`.
    fn log(&self, line: &str) {
        match line.split_once(": ") {
            Some((event, rest)) if matches!(event, "package" | "upload" | "poll" | "result") => {
                self.app.log(event, rest)
            }
            _ => self.app.log("upload", line),
        }
    }

    fn id(&self, id: &str) {
        self.app.update(false, |s| s.id = Some(id.to_string()));
    }

    fn job(&self, job: &JobInfo) {
        let changed = self.app.status().job.as_ref() != Some(job);
        self.app.update(false, |s| s.job = Some(job.clone()));
        if changed {
            self.app
                .log("poll", &format!("job {} is {}", job.guid, job.state));
        }
    }

    fn response(&self, body: &serde_json::Value) {
        let kept = super::status::capped_response(body.clone());
        self.app.update(false, |s| s.response = Some(kept));
    }

    /// Names and routes come from the manifest and the server: shown
    /// printable, like every other server text.
    fn apps(&self, apps: &[RemoteApp]) {
        let shown: Vec<RemoteApp> = apps
            .iter()
            .map(|a| RemoteApp {
                name: printable(&a.name).into_owned(),
                routes: a.routes.iter().map(|r| printable(r).into_owned()).collect(),
                ..a.clone()
            })
            .collect();
        self.app.update(false, |s| s.set_apps(&shown));
    }

    /// Saved when the expiry or the warning changes; the count of blocks
    /// left moves every block and is shown from memory.
    fn lease(&self, lease: &Lease) {
        let status = self.app.status();
        let warned = |w: &Option<String>| w.is_some();
        let changed = status.expire_height != Some(lease.expire_height)
            || warned(&lease.warning)
                != status.warnings.iter().any(|w| w.contains("write `renew`"));
        self.app.update(changed, |s| s.set_lease(lease));
    }

    /// Saved at once, with the state its stage shows once the deploy is
    /// accepted (the worker sets `awaiting_payment` when `deploy` returns).
    fn payment(&self, due: &PaymentDue) {
        self.app.update(true, |s| {
            if s.watched_payment().is_some() {
                if let Some(state) = due.stage.watched_state() {
                    s.state = state;
                }
            }
            s.payment = Some(due.clone());
        });
    }
}
