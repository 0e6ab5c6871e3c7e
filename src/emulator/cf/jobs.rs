//! `GET /v2/jobs/:guid`: a bits job's progress, paced by polls
//! ([`JobPacing`](super::JobPacing)). A finished job's row is gone, so it
//! reads as the null job (guid "0"); a failed one stays, with its error.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::apps::timestamp;
use super::auth::authenticate;
use super::errors::CfApiError;
use super::CfEmulator;

pub(crate) struct Job {
    pub guid: String,
    created_at: String,
    polls: u32,
    /// Decided when the upload was processed; revealed by the pacing.
    outcome: Result<(), CfApiError>,
}

impl Job {
    pub fn new(outcome: Result<(), CfApiError>) -> Job {
        Job {
            guid: uuid::Uuid::new_v4().to_string(),
            created_at: timestamp(SystemTime::now()),
            polls: 0,
            outcome,
        }
    }

    /// The `JobPresenter` body in `status`.
    pub fn body(&self, status: &str) -> Value {
        let mut body = json!({
            "metadata": {
                "guid": self.guid,
                "created_at": self.created_at,
                "url": format!("/v2/jobs/{}", self.guid),
            },
            "entity": {"guid": self.guid, "status": status},
        });
        if let (Err(err), "failed") = (&self.outcome, status) {
            body["entity"]["error"] =
                "Use of entity>error is deprecated in favor of entity>error_details.".into();
            body["entity"]["error_details"] = err.body();
        }
        body
    }
}

fn null_job() -> Value {
    json!({
        "metadata": {"guid": "0", "created_at": "1970-01-01T00:00:00Z", "url": "/v2/jobs/0"},
        "entity": {"guid": "0", "status": "finished"},
    })
}

pub(super) async fn show(
    State(emu): State<Arc<CfEmulator>>,
    Path(guid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, CfApiError> {
    let mut state = emu.state.lock();
    let caller = authenticate(&state.tokens, &headers, Duration::ZERO)?;
    if !caller.can_read() {
        return Err(CfApiError::insufficient_scope());
    }
    let pacing = state.settings.job_pacing;
    let Some(job) = state.jobs.get_mut(&guid) else {
        return Ok(Json(null_job()));
    };
    job.polls = job.polls.saturating_add(1);
    let status = if job.polls <= pacing.queued_polls {
        "queued"
    } else if job.polls <= pacing.queued_polls + pacing.running_polls {
        "running"
    } else if job.outcome.is_ok() {
        // Delayed::Job deletes a job's row when it succeeds.
        state.jobs.remove(&guid);
        return Ok(Json(null_job()));
    } else {
        "failed"
    };
    Ok(Json(job.body(status)))
}
