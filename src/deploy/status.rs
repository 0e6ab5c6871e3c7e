//! What the status files show: one app's deploy status, and its log.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::backend::{
    BackendKind, DeployOutcome, DeployState, JobInfo, Lease, PaymentDue, PreviousDeploy, RemoteApp,
};
use crate::progress::{Progress, ProgressPhase};

/// Everything `.pushfs/status.json` shows; the other status files are views of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    pub app: String,
    pub backend: BackendKind,
    pub state: DeployState,
    /// A deploy is settling, running or queued: `.pushfs/wait` blocks.
    pub busy: bool,
    /// What `hash` holds per backend: README, "Status files".
    pub hash: Option<String>,
    pub revision: Option<String>,
    pub id: Option<String>,
    pub job: Option<JobInfo>,
    pub error: Option<String>,
    /// pushfs's digest of the tree as last snapshotted.
    pub digest: Option<String>,
    /// The digest of the last successful deploy; an equal tree is not uploaded again.
    pub deployed_digest: Option<String>,
    /// A change arrived during the running deploy; one more deploy follows.
    pub followup_queued: bool,
    /// Attempt number of the running deploy (retries count up).
    pub attempt: u32,
    pub updated_at: String,
    pub deployed_at: Option<String>,
    /// The last response body from the server.
    pub response: Option<serde_json::Value>,
    /// What the last successful deploy wants the user to know.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What to pay for the last accepted deploy to go live (Flux), and
    /// how far it got; kept after it is settled, as a record.
    #[serde(default)]
    pub payment: Option<PaymentDue>,
    /// The last save of this status to the state directory failed (a full
    /// or failing disk): what is on disk is older than this. Retried.
    #[serde(default)]
    pub record_behind: bool,
    /// While `retrying`: when the next attempt starts (RFC 3339, UTC).
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    /// While `retrying`: when this content first failed (RFC 3339); the
    /// retries stop `[retry] deadline` after it.
    #[serde(default)]
    pub retrying_since: Option<String>,
    /// The last error of the deploy, as the server or network gave it;
    /// `error` words it for the user ("retrying at ... after: ...").
    #[serde(default)]
    pub last_error: Option<String>,
    /// The digest the server refused with a final 4xx in the last deploy:
    /// not sent again (after a remount either) unless it changes or
    /// `deploy` is written to ctl.
    #[serde(default)]
    pub refused_digest: Option<String>,
    /// Bytes packaged or sent so far, while the deploy packages or uploads;
    /// `null` otherwise. Its updates are not saved: a save per update would
    /// fsync several times a second, and a restored deploy starts over.
    #[serde(default)]
    pub progress: Option<Progress>,
    /// Files the package will carry that are still open for writing (a
    /// few): the deploy waits for them to close.
    #[serde(default)]
    pub waiting_for: Vec<String>,
    /// Every server-side app the folder deploys (Cloud Foundry), in order.
    #[serde(default)]
    pub apps: Vec<RemoteApp>,
    /// Where the app is reached: the first route of the first app.
    #[serde(default)]
    pub url: Option<String>,
    /// A deployed app rented by the block (Flux): the chain height after
    /// which the network drops it, the blocks left until then, and an
    /// estimate of when that is (RFC 3339).
    #[serde(default)]
    pub expire_height: Option<u64>,
    #[serde(default)]
    pub blocks_left: Option<i64>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl AppStatus {
    pub fn new(app: &str, backend: BackendKind) -> AppStatus {
        AppStatus {
            app: app.to_string(),
            backend,
            state: DeployState::Idle,
            busy: false,
            hash: None,
            revision: None,
            id: None,
            job: None,
            error: None,
            digest: None,
            deployed_digest: None,
            followup_queued: false,
            attempt: 0,
            updated_at: now_rfc3339(),
            deployed_at: None,
            response: None,
            warnings: Vec::new(),
            payment: None,
            record_behind: false,
            next_attempt_at: None,
            retrying_since: None,
            last_error: None,
            refused_digest: None,
            progress: None,
            waiting_for: Vec::new(),
            apps: Vec::new(),
            url: None,
            expire_height: None,
            blocks_left: None,
            expires_at: None,
        }
    }

    /// The apps as the backend reports them; `url` follows the first route.
    pub fn set_apps(&mut self, apps: &[RemoteApp]) {
        self.apps = apps.to_vec();
        self.url = apps.iter().find_map(|a| a.routes.first().cloned());
    }

    /// Progress belongs to the phase that counts it: any other state (the
    /// deploy moved on, ended, waits to retry or is held) drops it.
    pub fn settle_progress(&mut self) {
        let counting = matches!(
            (self.progress.map(|p| p.phase), self.state),
            (Some(ProgressPhase::Packaging), DeployState::Packaging)
                | (Some(ProgressPhase::Uploading), DeployState::Uploading)
        );
        if !counting {
            self.progress = None;
        }
    }

    /// The app's lease as the backend last reported it; its renew warning
    /// replaces the last one among `warnings`.
    pub fn set_lease(&mut self, lease: &Lease) {
        self.expire_height = Some(lease.expire_height);
        self.blocks_left = Some(lease.blocks_left);
        self.expires_at = Some(lease.expires_at.clone());
        self.warnings.retain(|w| !w.contains(RENEW_HINT));
        if let Some(warning) = &lease.warning {
            self.warnings.push(warning.clone());
        }
    }

    /// The name of a deployed app whose paid time the backend watches: it
    /// was paid for, runs, or runs on while a renewal was underpaid.
    pub fn live_app(&self) -> Option<&str> {
        let due = self.payment.as_ref()?;
        let live = match self.state {
            DeployState::Deployed => true,
            DeployState::Underpaid => due.renewal,
            _ => false,
        };
        (live && self.deployed_digest.is_some()).then_some(due.app_name.as_str())
    }

    /// The payment being watched, if the last deploy waits on one.
    pub fn watched_payment(&self) -> Option<&PaymentDue> {
        self.payment
            .as_ref()
            .filter(|p| p.stage.watched_state().is_some())
    }

    /// The server took the deploy: its error and retries are over, and
    /// what it named (hash, id, revision, job, body, warnings) is kept; a
    /// name it did not give keeps its earlier value.
    pub fn record_accepted(&mut self, outcome: DeployOutcome) {
        self.error = None;
        self.last_error = None;
        self.next_attempt_at = None;
        self.retrying_since = None;
        self.hash = outcome.hash.or(self.hash.take());
        self.id = outcome.id.or(self.id.take());
        self.revision = outcome.revision.or(self.revision.take());
        self.job = outcome.job.or(self.job.take());
        if let Some(body) = outcome.response {
            self.response = Some(capped_response(body));
        }
        self.warnings = outcome.warnings;
    }

    pub fn previous(&self) -> PreviousDeploy {
        PreviousDeploy {
            id: self.id.clone(),
            hash: self.hash.clone(),
            revision: self.revision.clone(),
        }
    }
}

/// What every renew warning says, so a newer one replaces it.
const RENEW_HINT: &str = "write `renew` to .pushfs/ctl";

/// The first 12 digits of a content digest, as logs show it.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// A time this module wrote with [`rfc3339`]; `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(text).ok()
}

/// `HH:MM:SS` (UTC) of a time, for messages.
pub fn clock(at: SystemTime) -> String {
    let full = humantime::format_rfc3339_seconds(at).to_string();
    full.get(11..19).unwrap_or(&full).to_string()
}

/// The most of a server's answer kept in `response.json` and `status.json`.
pub const RESPONSE_LIMIT: usize = 256 << 10;

/// A server's answer as kept in the status: whole if small, else its first
/// [`RESPONSE_LIMIT`] bytes of JSON text, marked as cut; its strings
/// [`printable_json`], as everything a server says.
pub fn capped_response(body: serde_json::Value) -> serde_json::Value {
    let body = crate::printable::printable_json(body);
    let text = body.to_string();
    if text.len() <= RESPONSE_LIMIT {
        return body;
    }
    let mut end = RESPONSE_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({
        "cut": format!("the answer was {} bytes; its first {RESPONSE_LIMIT} are kept", text.len()),
        "head": &text[..end],
    })
}

#[cfg(test)]
mod progress_tests {
    use super::*;

    #[test]
    fn progress_lives_only_in_the_state_that_counts_it() {
        let mut status = AppStatus::new("site", BackendKind::Cf);
        let uploading = Progress {
            phase: ProgressPhase::Uploading,
            bytes_done: 5,
            bytes_total: 10,
        };
        status.state = DeployState::Uploading;
        status.progress = Some(uploading);
        status.settle_progress();
        assert_eq!(status.progress, Some(uploading));
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json["progress"],
            serde_json::json!({"phase": "uploading", "bytes_done": 5, "bytes_total": 10})
        );
        for ended in [
            DeployState::Packaging,
            DeployState::Processing,
            DeployState::Deployed,
            DeployState::Failed,
            DeployState::Retrying,
            DeployState::Held,
        ] {
            let mut s = status.clone();
            s.state = ended;
            s.settle_progress();
            assert_eq!(s.progress, None, "{ended}");
            assert!(serde_json::to_value(&s).unwrap()["progress"].is_null());
        }
    }
}

#[cfg(test)]
mod response_tests {
    use super::*;

    #[test]
    fn big_answers_are_cut_and_say_so() {
        let small = serde_json::json!({"ok": true});
        assert_eq!(capped_response(small.clone()), small);
        let big = serde_json::json!({"description": "x".repeat(RESPONSE_LIMIT * 2)});
        let kept = capped_response(big);
        assert!(kept["cut"].as_str().unwrap().contains("524"));
        assert_eq!(kept["head"].as_str().unwrap().len(), RESPONSE_LIMIT);
    }
}
