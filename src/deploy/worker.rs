//! The loop that drives one app: wait for changes to settle, snapshot,
//! skip if unchanged, deploy with retries, record the result; and for a
//! deploy that waits on its payment (Flux), watch it until it is live.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::app::{AppDeploy, StatusReport};
use super::claims::RemoteClaims;
use super::retry::{wait_to_retry, RetryResume, RetryWait};
use super::status::{clock, now_rfc3339, rfc3339, short_digest, AppStatus};
use super::DeploySettings;
use crate::backend::{Backend, DeployError, DeployState, PaymentDue};
use crate::snapshot::Snapshot;
use crate::tree::{DeployRecord, Tree};

/// How often a worker re-checks an app whose files are still being written,
/// in case a wake-up was coalesced away.
const WRITER_RECHECK: Duration = Duration::from_secs(2);

/// The most paths `status.json`'s `waiting_for` names.
const WAITING_SHOWN: usize = 5;
/// How often a status that could not be saved is tried again.
const RECORD_RETRY: Duration = Duration::from_secs(5);

pub async fn run(
    app: Arc<AppDeploy>,
    tree: Weak<Tree>,
    backend: Arc<dyn Backend>,
    settings: DeploySettings,
    claims: Arc<RemoteClaims>,
) {
    loop {
        if app.stopped().is_cancelled() {
            return;
        }
        let (changed_at, forced) = app.pending_change();
        if changed_at.is_none() && !forced {
            if let Some(blocks) = app.take_renew() {
                renew(&app, &*backend, &tree, blocks).await;
                continue;
            }
            app.settle_idle();
            let watched = app.status().watched_payment().cloned();
            if let Some(due) = watched.filter(|_| app.held().is_none()) {
                if !watch_payment(&app, &*backend, &due, &tree, settings.history_keep).await {
                    return;
                }
                continue;
            }
            let live = app.status().live_app().map(str::to_string);
            if let Some(name) = live {
                if !watch_live(&app, &*backend, &name).await {
                    return;
                }
                continue;
            }
            let retry = app.record_behind().then_some(RECORD_RETRY);
            if !wait_for_wake(&app, retry).await {
                return;
            }
            app.retry_record();
            continue;
        }
        if let Some(at) = changed_at {
            let quiet = at.elapsed();
            if quiet < settings.settle {
                if !wait_for_wake(&app, Some(settings.settle - quiet)).await {
                    return;
                }
                continue;
            }
        }
        if let Some(reason) = app.held() {
            app.claim_change();
            if app.status().state != DeployState::Held {
                app.update(true, |s| {
                    s.state = DeployState::Held;
                    s.error = Some(reason);
                });
            }
            continue;
        }
        let Some(live) = tree.upgrade() else { return };
        let profile = backend.ignore_profile();
        let Some(readiness) = live.readiness(&app.id, backend.spec_files()) else {
            return;
        };
        // Only a file the package would carry holds the deploy back: an
        // editor's open swap file, or anything ignored, never does.
        let waiting = live.packaged_of(&app.id, &readiness.being_written, &profile);
        if app.status().waiting_for != waiting {
            let shown: Vec<String> = waiting.iter().take(WAITING_SHOWN).cloned().collect();
            app.update(false, |s| s.waiting_for = shown);
        }
        if !waiting.is_empty() {
            drop(live);
            if !wait_for_wake(&app, Some(WRITER_RECHECK)).await {
                return;
            }
            continue;
        }
        let forced = app.claim_change();
        if !readiness.has_spec {
            let wanted = backend.spec_files().join(" or ");
            let message = match readiness.spec_not_a_file {
                Some((name, what)) => format!(
                    "{name} is {what}, not a file: pushfs reads the spec from a regular file \
                     (waiting for {wanted})"
                ),
                None => format!("waiting for {wanted} in the app folder before deploying"),
            };
            if app.status().error.as_deref() != Some(message.as_str()) {
                app.log("trigger", &message);
            }
            app.update(true, |s| {
                s.state = DeployState::Idle;
                s.error = Some(message);
            });
            continue;
        }
        let Some((name, entries, being_written, pins)) = live.snapshot_entries(&app.id) else {
            return;
        };
        if !live
            .packaged_of(&app.id, &being_written, &profile)
            .is_empty()
        {
            // A file to package was opened for writing since the check.
            app.mark_changed();
            continue;
        }
        drop(live);
        let snapshot = Snapshot::build(name, backend.kind(), entries, &profile);
        if let Some(remote) = backend.remote_name(&snapshot) {
            if let Err(other) = claims.claim(backend.kind(), &remote, &app.id, &snapshot.app) {
                let message = format!(
                    "{remote} is already deployed from the folder {other}: one remote app, one \
                     folder; rename the app in this folder's spec, or remove one of the folders"
                );
                if app.status().error.as_deref() != Some(message.as_str()) {
                    app.log("trigger", &message);
                }
                app.update(true, |s| {
                    s.state = DeployState::Failed;
                    s.error = Some(message);
                });
                continue;
            }
        }
        let status = app.status();
        let recheck = app.take_recheck();
        if let Some(due) = status.watched_payment() {
            if !forced && status.digest.as_deref() == Some(snapshot.digest.as_str()) {
                // The message that waits for its payment is this content:
                // sending it again would only make a new one to pay.
                let state = due.stage.watched_state().unwrap_or(status.state);
                if status.state != state {
                    app.log(
                        "trigger",
                        &format!(
                            "content is the same as message {}, which waits for its payment; watching it again",
                            due.memo
                        ),
                    );
                }
                app.update(true, |s| s.state = state);
                continue;
            }
        }
        // A failure is only final for the content the server refused
        // (below); one for a local cause (configuration, I/O) is tried
        // again on the next mount.
        if recheck
            && !forced
            && status.state.is_final()
            && status.state != DeployState::Failed
            && status.digest.as_deref() == Some(snapshot.digest.as_str())
        {
            continue;
        }
        if !forced && status.refused_digest.as_deref() == Some(snapshot.digest.as_str()) {
            if status.state != DeployState::Failed {
                app.log(
                    "trigger",
                    "content is the same as the deploy the server refused; nothing uploaded (write `deploy` to .pushfs/ctl to try again)",
                );
            }
            app.update(true, |s| {
                s.state = DeployState::Failed;
                s.digest = Some(snapshot.digest.clone());
            });
            continue;
        }
        if !forced && status.deployed_digest.as_deref() == Some(snapshot.digest.as_str()) {
            if status.state != DeployState::Deployed || status.error.is_some() {
                app.log(
                    "trigger",
                    "content is the same as the last deploy; nothing uploaded",
                );
            }
            app.update(true, |s| {
                s.state = DeployState::Deployed;
                s.digest = Some(snapshot.digest.clone());
                s.error = None;
            });
            continue;
        }
        let resume = (!forced && status.digest.as_deref() == Some(snapshot.digest.as_str()))
            .then(|| RetryResume::from_status(&status))
            .flatten();
        // The deploy takes the snapshot; the folder it keeps for the
        // history is the same shared list, not a copy.
        let deployed = snapshot.clone();
        if let Some(outcome) = deploy(&app, &*backend, &settings, snapshot, forced, resume).await {
            let kept = outcome != "failed" && outcome != "cancelled";
            let server = server_words(&app.status());
            let record = DeployRecord {
                outcome,
                digest: &deployed.digest,
                server: server.as_deref(),
                folder: kept.then_some(&deployed),
            };
            // Recorded while the pins hold the blobs the kept tree names.
            record_history(&app, &tree, record, settings.history_keep);
        }
        // The blobs may go now if the user deleted their files meanwhile.
        drop(pins);
        drop(deployed);
        give_back_memory();
    }
}

/// A deploy of a big app holds a list of every file, and its stages make
/// many small short-lived allocations on several threads; glibc keeps freed
/// memory in per-thread arenas for reuse, so a mount that deployed a big app
/// once would keep tens of MiB for good. Handing it back after each deploy
/// keeps an idle mount small.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no inputs.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The server's names for what runs, as `key=value` words for the history.
fn server_words(status: &AppStatus) -> Option<String> {
    let words: Vec<String> = [
        ("hash", &status.hash),
        ("revision", &status.revision),
        ("id", &status.id),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        let value = value
            .as_deref()?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join("_");
        Some(format!("{key}={value}"))
    })
    .collect();
    (!words.is_empty()).then(|| words.join(","))
}

/// Adds a line to the app's history; a failure to record it is logged, and
/// the deploy's outcome stands.
fn record_history(app: &AppDeploy, tree: &Weak<Tree>, record: DeployRecord, keep: usize) {
    let Some(tree) = tree.upgrade() else { return };
    if let Err(err) = tree.record_deploy(&app.id, record, keep) {
        app.log(
            "result",
            &format!("could not add the deploy to .pushfs/history: {err}"),
        );
    }
}

/// Waits for a change (or `timeout`); false once the app is stopped.
async fn wait_for_wake(app: &AppDeploy, timeout: Option<Duration>) -> bool {
    let stopped = app.stopped().clone();
    let timer = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = stopped.cancelled() => false,
        _ = app.wake.notified() => true,
        _ = timer => true,
    }
}

/// Follows an accepted deploy until it is paid and live, or expired.
/// Returns early (true) when a change or command wakes the worker: a newer
/// deploy supersedes the message and this watch stops. False once stopped.
async fn watch_payment(
    app: &AppDeploy,
    backend: &dyn Backend,
    due: &PaymentDue,
    tree: &Weak<Tree>,
    keep: usize,
) -> bool {
    app.log(
        "poll",
        &format!(
            "watching message {} until it is paid (deadline {}) and runs",
            due.memo, due.deadline
        ),
    );
    let stopped = app.stopped().clone();
    let report = StatusReport { app };
    let result = tokio::select! {
        r = backend.watch(due, &report) => r,
        _ = stopped.cancelled() => return false,
        _ = app.wake.notified() => {
            if app.pending_change() != (None, false) {
                app.log(
                    "trigger",
                    &format!("a newer change supersedes message {}; its watch stops", due.memo),
                );
            }
            return true;
        }
    };
    let outcome = if due.renewal { "renewed" } else { "deployed" };
    match result {
        Ok(()) => {
            app.log(
                "result",
                &format!("{outcome}; message {} is paid and runs", due.memo),
            );
            app.update(true, |s| {
                s.state = DeployState::Deployed;
                s.error = None;
                s.deployed_digest = s.digest.clone();
                s.deployed_at = Some(now_rfc3339());
                s.warnings.clear();
            });
            let status = app.status();
            if let Some(digest) = &status.digest {
                // Its tree was kept when the server accepted it.
                let server = server_words(&status);
                let record = DeployRecord {
                    outcome,
                    digest,
                    server: server.as_deref(),
                    folder: None,
                };
                record_history(app, tree, record, keep);
            }
        }
        Err(DeployError::ExpiredUnpaid(why)) if due.renewal => {
            // The app itself is untouched: it runs to its old expiry.
            app.log("result", &format!("renewal not paid: {why}"));
            app.update(true, |s| {
                s.state = DeployState::Deployed;
                s.error = None;
                s.warnings.clear();
            });
        }
        Err(DeployError::Underpaid(why)) => {
            app.log("result", &format!("underpaid: {why}"));
            app.update(true, |s| {
                s.state = DeployState::Underpaid;
                s.error = Some(why);
            });
        }
        Err(err) => {
            let message = err.to_string();
            app.log("result", &format!("failed: {message}"));
            app.update(true, |s| {
                s.state = DeployState::Failed;
                s.error = Some(message);
            });
        }
    }
    true
}

/// Follows a deployed app's paid time until the network drops it (the
/// state becomes `expired`). Returns early (true) when a change or command
/// wakes the worker; false once stopped.
async fn watch_live(app: &AppDeploy, backend: &dyn Backend, name: &str) -> bool {
    let stopped = app.stopped().clone();
    let report = StatusReport { app };
    let result = tokio::select! {
        r = backend.watch_live(name, &report) => r,
        _ = stopped.cancelled() => return false,
        _ = app.wake.notified() => return true,
    };
    match result {
        Err(DeployError::AppExpired(why)) => {
            app.log("result", &format!("expired: {why}"));
            app.update(true, |s| {
                s.state = DeployState::Expired;
                s.error = Some(why);
                s.warnings.clear();
                // Gone from the network: the same content deploys again
                // when asked, instead of reading as deployed.
                s.deployed_digest = None;
            });
            true
        }
        other => {
            // Only a local cause (configuration) ends the watch otherwise:
            // looking again at once would only spin.
            if let Err(err) = other {
                app.log(
                    "poll",
                    &format!(
                        "cannot watch {name}'s expiry: {err}; watching again on the next change"
                    ),
                );
            }
            wait_for_wake(app, None).await
        }
    }
}

/// `renew` from ctl: asks the backend to extend the deployed app's paid
/// time. Accepted, the renewal awaits its payment like a deploy; the app
/// runs on meanwhile. Refused, the app stays as it was and `error` says why.
async fn renew(app: &AppDeploy, backend: &dyn Backend, tree: &Weak<Tree>, blocks: Option<u64>) {
    let status = app.status();
    if status.live_app().is_none() {
        let message = format!(
            "renew: nothing to renew, the app is {} (renew extends a deployed app; write `deploy` to register it)",
            status.state
        );
        app.log("trigger", &message);
        app.update(true, |s| s.error = Some(message));
        return;
    }
    let Some(live) = tree.upgrade() else { return };
    let Some((name, entries, _, _pins)) = live.snapshot_entries(&app.id) else {
        return;
    };
    drop(live);
    let snapshot = Snapshot::build(name, backend.kind(), entries, &backend.ignore_profile());
    let report = StatusReport { app };
    let stopped = app.stopped().clone();
    let result = tokio::select! {
        r = backend.renew(&snapshot, blocks, &report) => r,
        _ = stopped.cancelled() => return,
    };
    match result {
        Ok(outcome) => {
            let Some(due) = app.status().watched_payment().cloned() else {
                // A backend that renews without a fee: done at once.
                app.log("result", "renewed");
                app.update(true, |s| s.record_accepted(outcome));
                return;
            };
            app.log(
                "result",
                &format!(
                    "renewal accepted; awaiting payment of message {} before {} (see .pushfs/payment); the app runs until its old expiry meanwhile",
                    due.memo, due.deadline
                ),
            );
            app.update(true, |s| {
                s.record_accepted(outcome);
                s.state = DeployState::AwaitingPayment;
            });
        }
        Err(err) => {
            let message = format!("renew failed: {err}");
            app.log("result", &message);
            app.update(true, |s| s.error = Some(message));
        }
    }
}

async fn deploy(
    app: &AppDeploy,
    backend: &dyn Backend,
    settings: &DeploySettings,
    snapshot: Snapshot,
    forced: bool,
    resume: Option<RetryResume>,
) -> Option<&'static str> {
    let token = CancellationToken::new();
    app.set_deploying(Some(token.clone()));
    let mut attempt = 1;
    let mut since = None;
    let mut wait = None;
    match resume {
        Some(resume) => {
            attempt = resume.attempt;
            since = Some(resume.since);
            wait = Some(
                resume
                    .at
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
            );
            app.log(
                "trigger",
                &format!(
                    "resuming the retries of content digest {}: attempt {attempt} at {}",
                    short_digest(&snapshot.digest),
                    clock(resume.at)
                ),
            );
        }
        None => {
            let files = snapshot.files().count();
            let bytes: u64 = snapshot.files().map(|(_, f)| f.blob.size).sum();
            let why = if forced {
                "requested"
            } else {
                "changes settled"
            };
            app.log(
                "package",
                &format!(
                    "deploying {files} files ({bytes} bytes), content digest {} ({why})",
                    short_digest(&snapshot.digest)
                ),
            );
            let leaving = snapshot.links_leaving_the_app();
            if !leaving.is_empty() {
                app.log(
                    "package",
                    &format!(
                        "symlinks pointing outside the app travel as links; pushfs never reads \
                         their targets: {}",
                        leaving.join(", ")
                    ),
                );
            }
            app.update(true, |s| {
                s.state = DeployState::Packaging;
                s.error = None;
                s.last_error = None;
                s.next_attempt_at = None;
                s.retrying_since = None;
                s.refused_digest = None;
                s.digest = Some(snapshot.digest.clone());
                s.followup_queued = false;
                s.attempt = 1;
                s.job = None;
                s.payment = None;
            });
        }
    }
    let previous = app.status().previous();
    let report = StatusReport { app };
    let result = loop {
        if let Some(pause) = wait.take() {
            match wait_to_retry(app, &token, pause).await {
                RetryWait::Elapsed => app.update(false, |s| {
                    s.next_attempt_at = None;
                    s.error = s.last_error.clone();
                }),
                RetryWait::Cancelled => break Err(DeployError::Cancelled),
                RetryWait::Superseded => {
                    app.set_deploying(None);
                    return None;
                }
            }
        }
        let outcome = tokio::select! {
            r = backend.deploy(&snapshot, &previous, &report) => r,
            _ = token.cancelled() => Err(DeployError::Cancelled),
        };
        let err = match outcome {
            Err(err) if err.is_retryable() => err,
            other => break other,
        };
        let now = SystemTime::now();
        let first = *since.get_or_insert(now);
        let failing_for = now.duration_since(first).unwrap_or_default();
        let Some(pause) = settings
            .retry
            .next_wait(attempt + 1, failing_for, err.retry_after())
        else {
            break Err(err);
        };
        attempt += 1;
        let at = now + pause;
        let of = settings
            .retry
            .attempts
            .map(|n| format!(" of {n}"))
            .unwrap_or_default();
        let asked = if err.retry_after().is_some() {
            ", as the server asked"
        } else {
            ""
        };
        app.log(
            "result",
            &format!(
                "{err}; retrying in {} ms at {}{asked} (attempt {attempt}{of})",
                pause.as_millis(),
                clock(at)
            ),
        );
        app.update(true, |s| {
            s.state = DeployState::Retrying;
            s.error = Some(format!("retrying at {} after: {err}", clock(at)));
            s.last_error = Some(err.to_string());
            s.next_attempt_at = Some(rfc3339(at));
            s.retrying_since = Some(rfc3339(first));
            s.attempt = attempt;
        });
        wait = Some(pause);
    };
    app.set_deploying(None);
    if app.stopped().is_cancelled() {
        if app.is_removed() {
            app.log("result", "app removed; upload cancelled");
            return None;
        }
        // Unmounting: the persisted state still says the deploy was under
        // way, so the next mount resumes it.
        app.log(
            "result",
            "interrupted by shutdown; resumes on the next mount",
        );
        return None;
    }
    // A backend that reported a payment left the deploy accepted, not live.
    let payment = app.status().watched_payment().cloned();
    match (result, payment) {
        (Ok(outcome), Some(due)) => {
            app.log(
                "result",
                &format!(
                    "accepted; awaiting payment of message {} before {} (see .pushfs/payment)",
                    due.memo, due.deadline
                ),
            );
            app.update(true, |s| {
                s.record_accepted(outcome);
                s.state = due
                    .stage
                    .watched_state()
                    .unwrap_or(DeployState::AwaitingPayment);
            });
            Some("accepted")
        }
        (Ok(outcome), None) => {
            let hash = outcome.hash.clone().unwrap_or_default();
            app.log("result", &format!("deployed; hash {hash}"));
            app.update(true, |s| {
                s.record_accepted(outcome);
                s.state = DeployState::Deployed;
                s.deployed_digest = Some(snapshot.digest.clone());
                s.deployed_at = Some(now_rfc3339());
            });
            Some("deployed")
        }
        (Err(err), _) => {
            let mut message = err.to_string();
            if err.is_retryable() {
                message.push_str("; gave up retrying ([retry] deadline or attempts reached)");
            }
            app.log("result", &format!("failed: {message}"));
            app.update(true, |s| {
                s.state = DeployState::Failed;
                s.last_error = Some(err.to_string());
                s.refused_digest = err.is_refusal().then(|| snapshot.digest.clone());
                s.error = Some(message);
                s.next_attempt_at = None;
                s.retrying_since = None;
            });
            Some(match err {
                DeployError::Cancelled => "cancelled",
                _ => "failed",
            })
        }
    }
}
