//! One trait in front of the three deploy APIs, and the types they share.
//!
//! A backend receives an immutable [`Snapshot`] of an app (already filtered by
//! the ignore rules), validates its spec, uploads it and polls until the
//! server's answer is final. It reports progress through [`Report`] so the
//! status files move while it works. It never touches the filesystem tree.

pub mod bytenite;
pub mod cf;
mod error;
pub mod flux;
pub mod http;
pub mod metered;
pub mod retry_after;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::DeployError;

pub use crate::kind::{BackendKind, IgnoreProfile};
use crate::printable::printable;
pub use crate::progress::ProgressPhase;
use crate::snapshot::Snapshot;

/// The states shown in `.pushfs/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployState {
    Idle,
    Pending,
    /// Automatic deploys are stopped (`hold`, or recovery after an unclean stop).
    Held,
    Packaging,
    Uploading,
    Queued,
    Running,
    /// Cloud Foundry v3: the uploaded package is being processed.
    Processing,
    /// Cloud Foundry v3: the build stages the package into a droplet.
    Staging,
    /// Cloud Foundry v3: the app restarts on the new droplet.
    Starting,
    Deployed,
    Failed,
    Retrying,
    /// The server accepted the deploy; it goes live once the user pays its
    /// fee (Flux). See `.pushfs/payment`.
    #[serde(rename = "awaiting_payment")]
    AwaitingPayment,
    /// The fee is paid; waiting for the network to run the app (Flux).
    Paid,
    /// The app's paid time ran out and the network dropped it (Flux).
    Expired,
    /// The fee was paid, but below the price: the network keeps the message
    /// and does not run it (Flux). A payment cannot be topped up.
    Underpaid,
}

impl DeployState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeployState::Idle => "idle",
            DeployState::Pending => "pending",
            DeployState::Held => "held",
            DeployState::Packaging => "packaging",
            DeployState::Uploading => "uploading",
            DeployState::Queued => "queued",
            DeployState::Running => "running",
            DeployState::Processing => "processing",
            DeployState::Staging => "staging",
            DeployState::Starting => "starting",
            DeployState::Deployed => "deployed",
            DeployState::Failed => "failed",
            DeployState::Retrying => "retrying",
            DeployState::AwaitingPayment => "awaiting_payment",
            DeployState::Paid => "paid",
            DeployState::Expired => "expired",
            DeployState::Underpaid => "underpaid",
        }
    }

    /// A deploy in this state has ended; `.pushfs/wait` returns on it.
    /// Waiting on the user's payment counts: it may take an hour.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeployState::Idle
                | DeployState::Held
                | DeployState::Deployed
                | DeployState::Failed
                | DeployState::AwaitingPayment
                | DeployState::Paid
                | DeployState::Expired
                | DeployState::Underpaid
        )
    }
}

impl fmt::Display for DeployState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An asynchronous server-side job (Cloud Foundry), shown in `.pushfs/job`.
/// `guid` and `state` are the object being waited on now; `steps` lists
/// every object of a multi-step deploy (CF v3: package, build, droplet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    pub guid: String,
    pub state: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<JobStep>,
}

/// One server-side object of a deploy, e.g. `package <guid> READY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStep {
    pub kind: String,
    pub guid: String,
    pub state: String,
}

impl JobInfo {
    /// A single job: `.pushfs/job` reads `<guid> <state>`.
    pub fn new(guid: impl Into<String>, state: impl Into<String>) -> JobInfo {
        JobInfo {
            guid: guid.into(),
            state: state.into(),
            steps: Vec::new(),
        }
    }

    /// The text of `.pushfs/job`: `<guid> <state>`, or one line per step
    /// (`<kind> <guid> <state>`); the server's words shown [`printable`].
    pub fn render(&self) -> String {
        if self.steps.is_empty() {
            return format!("{} {}\n", printable(&self.guid), printable(&self.state));
        }
        self.steps
            .iter()
            .map(|s| {
                format!(
                    "{} {} {}\n",
                    printable(&s.kind),
                    printable(&s.guid),
                    printable(&s.state)
                )
            })
            .collect()
    }
}

/// What a successful deploy returned; fills the status files.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployOutcome {
    /// The server's id for the app (ByteNite id, CF guid, Flux message hash).
    pub id: Option<String>,
    /// What `hash` holds per backend: README, "Status files".
    pub hash: Option<String>,
    /// ByteNite's revision.
    pub revision: Option<String>,
    /// Cloud Foundry's job, in its final state.
    pub job: Option<JobInfo>,
    /// The last response body from the server.
    pub response: Option<serde_json::Value>,
    /// Things the user should know although the deploy succeeded (shown in
    /// `status.json` and the log), e.g. a server hash that differs from ours.
    pub warnings: Vec<String>,
}

/// Where an accepted deploy stands on its way from "accepted" to "live".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStage {
    /// Accepted, waiting for the fee.
    Unpaid,
    /// The fee is paid; the network has not started the app yet.
    Paid,
    /// The app runs: the deploy is done.
    Running,
    /// Not paid before the deadline: the server dropped it.
    Expired,
    /// Paid below the price: kept by the server, never run.
    Underpaid,
}

impl PaymentStage {
    /// The deploy state this stage shows while it is being watched.
    pub fn watched_state(self) -> Option<DeployState> {
        match self {
            PaymentStage::Unpaid => Some(DeployState::AwaitingPayment),
            PaymentStage::Paid => Some(DeployState::Paid),
            PaymentStage::Running | PaymentStage::Expired | PaymentStage::Underpaid => None,
        }
    }
}

/// What the user must pay, to whom and by when, for an accepted deploy to
/// go live; shown in `.pushfs/payment` and `status.json`. pushfs never pays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentDue {
    /// The address to pay (Flux: the deployment address); unknown if the
    /// server could not be asked.
    pub address: Option<String>,
    /// The fee in `currency` for this exact spec; unknown as above.
    pub price: Option<f64>,
    pub currency: String,
    /// The text the payment must carry (Flux: the message hash, as OP_RETURN).
    pub memo: String,
    /// RFC 3339: unpaid after this, the server drops the deploy.
    pub deadline: String,
    /// The same deadline in milliseconds since the Unix epoch.
    pub deadline_ms: u64,
    /// The app's name on the server, to follow it once paid.
    pub app_name: String,
    pub stage: PaymentStage,
    /// A link a wallet opens to pay (Flux: Zelcore's `zel:?action=pay...`),
    /// once the address and price are known; `.pushfs/payment.png` is its QR code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The payment extends an app that runs (a renewal): unpaid, the app
    /// runs on until its old expiry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub renewal: bool,
}

/// How long a deployed app stays on a network that rents by the block
/// (Flux): shown in `status.json` while the app runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The chain height after which the network drops the app.
    pub expire_height: u64,
    /// `expire_height` less the chain's height now (negative once past).
    pub blocks_left: i64,
    /// RFC 3339: an estimate of when the chain reaches `expire_height`.
    pub expires_at: String,
    /// Set once the expiry is near: when, and how to renew.
    pub warning: Option<String>,
}

/// One server-side app of a folder that deploys several (a Cloud Foundry
/// manifest), as `status.json`'s `apps` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteApp {
    pub name: String,
    pub guid: Option<String>,
    /// Where this app's push stands: `pending` until its turn, `idle` if
    /// an earlier app failed and it was never pushed.
    pub state: DeployState,
    /// The step running now, or the last one (`apply_manifest`, `upload`,
    /// `stage`, `restart`, `deployment`, `wait_running`, `routes`).
    #[serde(default)]
    pub step: Option<String>,
    /// Where the app is reached: URLs of its routes.
    #[serde(default)]
    pub routes: Vec<String>,
    pub package: Option<String>,
    pub build: Option<String>,
    pub droplet: Option<String>,
    #[serde(default)]
    pub deployment: Option<String>,
}

impl RemoteApp {
    pub fn pending(name: &str) -> RemoteApp {
        RemoteApp {
            name: name.to_string(),
            guid: None,
            state: DeployState::Pending,
            step: None,
            routes: Vec::new(),
            package: None,
            build: None,
            droplet: None,
            deployment: None,
        }
    }
}

/// What the previous successful deploy of this app left behind, so a backend
/// can update rather than create (Flux update, a known CF guid).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreviousDeploy {
    pub id: Option<String>,
    pub hash: Option<String>,
    pub revision: Option<String>,
}

/// Live progress from a backend while it deploys. Implemented by the deploy
/// layer (it updates the status files) and by a recorder in tests.
pub trait Report: Send + Sync {
    /// Moves `.pushfs/state` (uploading, queued, running...).
    fn state(&self, state: DeployState);
    /// Appends one line to `.pushfs/log`. Never pass a secret.
    fn log(&self, line: &str);
    /// Sets `.pushfs/id` as soon as the server's id is known.
    fn id(&self, id: &str);
    /// Sets `.pushfs/job` while a server-side job runs.
    fn job(&self, job: &JobInfo);
    /// Sets `.pushfs/response.json` to the latest server response body.
    fn response(&self, body: &serde_json::Value);
    /// Sets `.pushfs/payment` (and saves it: a remount resumes the watch).
    /// Reported during [`Backend::deploy`], it means the deploy is accepted
    /// but goes live only once paid: the state becomes `awaiting_payment`.
    fn payment(&self, _due: &PaymentDue) {}
    /// Sets `status.json`'s `progress`: `done` of `total` bytes packaged or
    /// sent. Called at a bounded rate (see [`metered::metered`]), shown in
    /// memory only: a save per update would fsync several times a second.
    fn progress(&self, _phase: ProgressPhase, _done: u64, _total: u64) {}
    /// Sets `status.json`'s `apps` (and `.pushfs/url`, the first route of
    /// the first app): every server-side app the folder deploys.
    fn apps(&self, _apps: &[RemoteApp]) {}
    /// Sets `status.json`'s `expire_height`, `blocks_left`, `expires_at`,
    /// and the renew warning among its `warnings`.
    fn lease(&self, _lease: &Lease) {}
}

#[async_trait]
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// Files at the app root whose presence makes the app deployable
    /// (any one of them). Until one exists the app stays `idle`.
    fn spec_files(&self) -> &'static [&'static str];

    fn ignore_profile(&self) -> IgnoreProfile;

    /// The remote app this snapshot deploys to, as a key two folders must
    /// not share (`name@version`, a CF app in a space, a Flux name). `None`
    /// when the spec does not say yet; read locally, no network.
    fn remote_name(&self, _snapshot: &Snapshot) -> Option<String> {
        None
    }

    /// Validates the spec, packages, uploads and waits for the server's final
    /// answer. Local validation errors must come before any request is sent.
    async fn deploy(
        &self,
        snapshot: &Snapshot,
        previous: &PreviousDeploy,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError>;

    /// Follows a deploy that [`Backend::deploy`] left waiting for `due` to be
    /// paid, until it is live (`Ok`) or lost (`Err`). Network trouble is
    /// waited out here, not returned. Dropped when a newer deploy supersedes
    /// it; called again after a remount. Backends without payments never
    /// report a [`PaymentDue`], so the default is never called.
    async fn watch(&self, _due: &PaymentDue, _report: &dyn Report) -> Result<(), DeployError> {
        Ok(())
    }

    /// Follows a deployed app that the network keeps only while it is paid
    /// for (`app_name`, as [`PaymentDue::app_name`]), reporting its
    /// [`Lease`], until the network drops it ([`DeployError::AppExpired`]).
    /// Network trouble is waited out. Only called for apps that were paid
    /// for; other backends never are.
    async fn watch_live(&self, _app_name: &str, _report: &dyn Report) -> Result<(), DeployError> {
        std::future::pending().await
    }

    /// Extends a deployed app's paid time: `blocks` from now, or the spec's
    /// own length. Like [`Backend::deploy`] it reports a [`PaymentDue`]
    /// (marked `renewal`) and returns once the server accepted it.
    async fn renew(
        &self,
        _snapshot: &Snapshot,
        _blocks: Option<u64>,
        _report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        Err(DeployError::InvalidSpec(format!(
            "renew: {} apps are not rented by time; nothing to renew",
            self.kind()
        )))
    }
}
