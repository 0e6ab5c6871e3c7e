//! `POST /v3/deployments` and its wait: a rolling redeploy, as
//! `cf push --strategy rolling` makes it. The new droplet replaces the
//! running instances a few at a time; the app is never stopped.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::api::CcSession;
use super::error::{read, PushError};
use super::poll::Poller;
use crate::backend::{DeployError, Report};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub guid: String,
    pub status: DeploymentStatus,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeploymentStatus {
    pub value: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl Deployment {
    fn shown(&self) -> String {
        match &self.status.reason {
            Some(reason) => format!("{}/{reason}", self.status.value),
            None => self.status.value.clone(),
        }
    }
}

pub async fn create(
    session: &CcSession<'_>,
    app_guid: &str,
    droplet_guid: &str,
) -> Result<Deployment, DeployError> {
    let url = session.url("/v3/deployments");
    let body = json!({
        "droplet": {"guid": droplet_guid},
        "strategy": "rolling",
        "relationships": {"app": {"data": {"guid": app_guid}}},
    });
    let (_, answer) = session
        .send(|http| Ok(http.post(&url).json(&body).timeout(REQUEST_TIMEOUT)))
        .await?;
    read("POST /v3/deployments", &answer)
}

/// Polls until FINALIZED: DEPLOYED succeeds; CANCELED, SUPERSEDED or any
/// other reason fails with it. `seen` hears each new `value/reason`.
pub async fn wait_deployed(
    session: &CcSession<'_>,
    mut deployment: Deployment,
    mut poller: Poller,
    report: &dyn Report,
    mut seen: impl FnMut(&str),
) -> Result<Deployment, DeployError> {
    let url = session.url(&format!("/v3/deployments/{}", deployment.guid));
    loop {
        if deployment.status.value == "FINALIZED" {
            return match deployment.status.reason.as_deref() {
                Some("DEPLOYED") => Ok(deployment),
                _ => Err(PushError::DeploymentFailed {
                    guid: deployment.guid.clone(),
                    reason: deployment.shown(),
                }
                .into()),
            };
        }
        let Some(body) = poller.next(session, &url, report).await? else {
            return Err(PushError::TimedOut {
                what: format!("deployment {}", deployment.guid),
                state: deployment.shown(),
                after: poller.timeout_text(),
            }
            .into());
        };
        report.response(&body);
        let fresh: Deployment = read("GET /v3/deployments/:guid", &body)?;
        if fresh.shown() != deployment.shown() {
            seen(&fresh.shown());
        }
        deployment = fresh;
    }
}
