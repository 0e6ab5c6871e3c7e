//! A backend whose answers a test scripts, and which records every snapshot
//! it receives: for lifecycle tests that need no server.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pushfs::backend::{
    Backend, BackendKind, DeployError, DeployOutcome, DeployState, IgnoreProfile, PreviousDeploy,
    Report,
};
use pushfs::deploy::snapshot::{EntryKind, Snapshot};

/// One scripted answer.
pub enum Answer {
    Ok,
    /// Succeed after a pause (to change files while it runs).
    SlowOk(Duration),
    Fail(DeployError),
}

pub struct ScriptedBackend {
    kind: BackendKind,
    answers: Mutex<VecDeque<Answer>>,
    /// What each deploy received, its files copied aside: pushfs frees a
    /// blob once no file and no deploy needs it.
    pub received: Mutex<Vec<Snapshot>>,
    copies: tempfile::TempDir,
    pub previous: Mutex<Vec<PreviousDeploy>>,
}

impl ScriptedBackend {
    pub fn new(kind: BackendKind) -> Arc<ScriptedBackend> {
        Arc::new(ScriptedBackend {
            kind,
            answers: Mutex::new(VecDeque::new()),
            received: Mutex::new(Vec::new()),
            copies: tempfile::tempdir().expect("a directory for received files"),
            previous: Mutex::new(Vec::new()),
        })
    }

    pub fn push(&self, answer: Answer) {
        self.answers.lock().push_back(answer);
    }

    pub fn deploys(&self) -> usize {
        self.received.lock().len()
    }

    pub fn last(&self) -> Snapshot {
        self.received
            .lock()
            .last()
            .cloned()
            .expect("a deploy happened")
    }
}

#[async_trait]
impl Backend for ScriptedBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn spec_files(&self) -> &'static [&'static str] {
        &["spec.json"]
    }

    fn ignore_profile(&self) -> IgnoreProfile {
        IgnoreProfile {
            ignore_files: &[],
            default_patterns: &["/ignored-by-backend/"],
        }
    }

    async fn deploy(
        &self,
        snapshot: &Snapshot,
        previous: &PreviousDeploy,
        report: &dyn Report,
    ) -> Result<DeployOutcome, DeployError> {
        let mut kept = snapshot.clone();
        // The copies keep the store's layout, so an entry finds them as it
        // found the blobs.
        let copies: std::sync::Arc<std::path::Path> = self.copies.path().into();
        for entry in std::sync::Arc::make_mut(&mut kept.entries) {
            if let EntryKind::File(content) = &mut entry.kind {
                let copy = pushfs::store::object_path(&copies, &content.blob.sha256_hex());
                std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
                std::fs::copy(content.path(), &copy).expect("the blob is there during the deploy");
                content.objects = copies.clone();
            }
        }
        self.received.lock().push(kept);
        self.previous.lock().push(previous.clone());
        report.state(DeployState::Uploading);
        report.log("scripted upload");
        let answer = self.answers.lock().pop_front().unwrap_or(Answer::Ok);
        if let Answer::SlowOk(pause) = &answer {
            tokio::time::sleep(*pause).await;
        }
        match answer {
            Answer::Fail(err) => Err(err),
            _ => {
                let n = self.deploys();
                Ok(DeployOutcome {
                    id: Some(format!("id-{}", snapshot.app)),
                    hash: Some(snapshot.digest.clone()),
                    revision: Some(n.to_string()),
                    job: None,
                    response: Some(serde_json::json!({"deploy": n})),
                    warnings: Vec::new(),
                })
            }
        }
    }
}

/// Three scripted backends, one per kind; the first is returned for assertions.
pub fn scripted_set() -> (Arc<ScriptedBackend>, Vec<Arc<dyn Backend>>) {
    let cf = ScriptedBackend::new(BackendKind::Cf);
    let all: Vec<Arc<dyn Backend>> = vec![
        cf.clone(),
        ScriptedBackend::new(BackendKind::Bytenite),
        ScriptedBackend::new(BackendKind::Flux),
    ];
    (cf, all)
}
