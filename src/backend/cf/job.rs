//! Waits for the Cloud Controller's bits job: polls `GET /v2/jobs/:guid`
//! with a growing pause until it is `finished` or `failed`, within a bound.

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::api::{CcSession, CfErrorBody};
use crate::backend::{DeployError, DeployState, JobInfo, Report};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Failed polls in a row that are tolerated before giving up: a network
/// blip after a good upload should not cost a second upload.
const TOLERATED_POLL_FAILURES: u32 = 3;

#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first_pause: Duration,
    pub max_pause: Duration,
    /// How long the job may take in all.
    pub timeout: Duration,
}

impl Polling {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

    pub fn with_timeout(timeout: Duration) -> Polling {
        Polling {
            first_pause: Duration::from_millis(100),
            max_pause: Duration::from_secs(2),
            timeout,
        }
    }
}

/// A v2 job body (`JobPresenter`).
#[derive(Debug, Clone, Deserialize)]
pub struct JobBody {
    pub metadata: JobMetadata,
    pub entity: JobEntity,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobMetadata {
    pub guid: String,
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JobEntity {
    pub status: String,
    #[serde(default)]
    pub error_details: Option<CfErrorBody>,
}

impl JobBody {
    /// The job in an upload's answer; `None` for a synchronous `{}`.
    pub fn from_upload(body: &serde_json::Value) -> Result<Option<JobBody>, DeployError> {
        if body.as_object().is_some_and(|o| o.is_empty()) {
            return Ok(None);
        }
        serde_json::from_value(body.clone())
            .map(Some)
            .map_err(|err| DeployError::Protocol(format!("bits upload answer is not a job: {err}")))
    }
}

/// Reports a job's state: `.pushfs/job` and the matching `.pushfs/state`.
pub fn report_status(report: &dyn Report, guid: &str, status: &str) {
    report.job(&JobInfo::new(guid, status));
    match status {
        "queued" => report.state(DeployState::Queued),
        "running" => report.state(DeployState::Running),
        _ => {}
    }
}

/// Polls until the job ends. Returns the final job and the last body.
/// The guid stays the upload's: once finished, the server forgets the job
/// and answers for guid "0".
pub async fn wait(
    session: &CcSession<'_>,
    job: JobBody,
    polling: Polling,
    report: &dyn Report,
) -> Result<(JobInfo, serde_json::Value), DeployError> {
    let guid = job.metadata.guid.clone();
    let path = match job.metadata.url.as_deref() {
        Some(url) if url.starts_with('/') => url.to_string(),
        _ => format!("/v2/jobs/{guid}"),
    };
    let url = session.url(&path);
    let deadline = Instant::now() + polling.timeout;
    let mut status = job.entity.status.clone();
    let mut pause = polling.first_pause;
    let mut failures = 0;
    let mut last = serde_json::Value::Null;
    let mut current = job;
    loop {
        match current.entity.status.as_str() {
            "finished" => break,
            "failed" => {
                let message = current
                    .entity
                    .error_details
                    .as_ref()
                    .map(CfErrorBody::message)
                    .unwrap_or_else(|| "the server gave no error details".into());
                return Err(DeployError::JobFailed(message));
            }
            "queued" | "running" => {}
            other => {
                return Err(DeployError::Protocol(format!(
                    "job {guid} has an unknown status {other:?}"
                )))
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(DeployError::JobFailed(format!(
                "job {guid} was still {status} after {}; the server may yet finish it",
                humantime::format_duration(polling.timeout)
            )));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(polling.max_pause);
        match session
            .send(|http| Ok(http.get(&url).timeout(REQUEST_TIMEOUT)))
            .await
        {
            Ok((_, body)) => {
                failures = 0;
                current = serde_json::from_value(body.clone())
                    .map_err(|err| DeployError::Protocol(format!("job {guid} answer: {err}")))?;
                report.response(&body);
                last = body;
            }
            Err(err) if err.is_retryable() && failures < TOLERATED_POLL_FAILURES => {
                failures += 1;
                report.log(&format!(
                    "cf: polling job {guid} failed ({err}); polling again"
                ));
                continue;
            }
            Err(err) => return Err(err),
        }
        if current.entity.status != status {
            status = current.entity.status.clone();
            report_status(report, &guid, &status);
        }
    }
    Ok((JobInfo::new(guid, "finished"), last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_answers_are_a_job_or_a_synchronous_empty_object() {
        assert!(JobBody::from_upload(&serde_json::json!({}))
            .unwrap()
            .is_none());
        let job = JobBody::from_upload(&serde_json::json!({
            "metadata": {"guid": "g", "created_at": "2016-06-08T16:41:21Z", "url": "/v2/jobs/g"},
            "entity": {"guid": "g", "status": "queued"}
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            (job.metadata.guid.as_str(), job.entity.status.as_str()),
            ("g", "queued")
        );
        assert!(matches!(
            JobBody::from_upload(&serde_json::json!({"what": 1})),
            Err(DeployError::Protocol(_))
        ));
    }
}
