//! `POST /v3/spaces/:guid/actions/apply_manifest`, as `cf push` sends it
//! before anything else, and the wait for its job (`GET /v3/jobs/:guid`):
//! the Cloud Controller creates the apps, sets what the manifest says and
//! makes their routes.

use std::time::Duration;

use serde::Deserialize;

use super::super::api::CcSession;
use super::error::{read, PushError};
use super::poll::Poller;
use crate::backend::{DeployError, Report};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct Job {
    guid: String,
    state: String,
    #[serde(default)]
    errors: Vec<JobError>,
    #[serde(default)]
    warnings: Vec<JobWarning>,
}

#[derive(Debug, Deserialize)]
struct JobError {
    detail: String,
}

#[derive(Debug, Deserialize)]
struct JobWarning {
    detail: String,
}

/// Applies `yaml` to the space and waits until its job is COMPLETE; a
/// FAILED job ends the deploy with the Cloud Controller's words.
pub async fn apply_manifest(
    session: &CcSession<'_>,
    space: &str,
    yaml: &str,
    mut poller: Poller,
    report: &dyn Report,
) -> Result<(), DeployError> {
    let url = session.url(&format!("/v3/spaces/{space}/actions/apply_manifest"));
    let body = yaml.to_string();
    let (_, _, location) = session
        .send_located(|http| {
            Ok(http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-yaml")
                .body(body.clone())
                .timeout(REQUEST_TIMEOUT))
        })
        .await?;
    let location = location.ok_or_else(|| {
        DeployError::Protocol("apply_manifest answered without the Location of its job".into())
    })?;
    let job_url = session.url(&location);
    loop {
        let Some(answer) = poller.next(session, &job_url, report).await? else {
            return Err(PushError::TimedOut {
                what: "the apply_manifest job".into(),
                state: "PROCESSING".into(),
                after: poller.timeout_text(),
            }
            .into());
        };
        let job: Job = read("GET /v3/jobs/:guid", &answer)?;
        match job.state.as_str() {
            "COMPLETE" => {
                for warning in &job.warnings {
                    report.log(&format!("cf: manifest warning: {}", warning.detail));
                }
                report.log(&format!("cf: manifest applied (job {})", job.guid));
                return Ok(());
            }
            "FAILED" => {
                report.response(&answer);
                let details: Vec<&str> = job.errors.iter().map(|e| e.detail.as_str()).collect();
                return Err(PushError::ManifestFailed {
                    reason: if details.is_empty() {
                        "the server gave no reason".into()
                    } else {
                        details.join("; ")
                    },
                }
                .into());
            }
            _ => {}
        }
    }
}
