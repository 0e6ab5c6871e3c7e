//! Staging: `POST /v3/builds` for the package, polled to STAGED (then the
//! droplet is read) or FAILED (its `error` is the reason shown).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::api::CcSession;
use super::error::{read, PushError};
use super::poll::Poller;
use super::progress::Progress;
use crate::backend::{DeployError, Report};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Deserialize)]
pub struct Build {
    pub guid: String,
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub droplet: Option<GuidRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GuidRef {
    pub guid: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Droplet {
    pub guid: String,
    pub state: String,
}

pub async fn create(session: &CcSession<'_>, package_guid: &str) -> Result<Build, DeployError> {
    let url = session.url("/v3/builds");
    let body = json!({"package": {"guid": package_guid}});
    let (_, answer) = session
        .send(|http| Ok(http.post(&url).json(&body).timeout(REQUEST_TIMEOUT)))
        .await?;
    read("POST /v3/builds", &answer)
}

/// Polls the build to STAGED and returns its droplet.
pub async fn wait_staged(
    session: &CcSession<'_>,
    mut build: Build,
    mut poller: Poller,
    progress: &mut Progress,
    report: &dyn Report,
) -> Result<Droplet, DeployError> {
    let url = session.url(&format!("/v3/builds/{}", build.guid));
    loop {
        match build.state.as_str() {
            "STAGED" => break,
            "FAILED" => {
                return Err(PushError::StagingFailed {
                    reason: build
                        .error
                        .unwrap_or_else(|| "the server gave no reason".into()),
                }
                .into())
            }
            _ => {}
        }
        let Some(body) = poller.next(session, &url, report).await? else {
            return Err(PushError::TimedOut {
                what: format!("build {}", build.guid),
                state: build.state,
                after: poller.timeout_text(),
            }
            .into());
        };
        report.response(&body);
        let fresh: Build = read("GET /v3/builds/:guid", &body)?;
        if fresh.state != build.state {
            progress.set(report, "build", &fresh.guid, &fresh.state);
        }
        build = fresh;
    }
    let droplet = build.droplet.ok_or_else(|| PushError::Unreadable {
        what: format!("build {}", build.guid),
        detail: "STAGED without a droplet".into(),
    })?;
    let url = session.url(&format!("/v3/droplets/{}", droplet.guid));
    let (_, body) = session
        .send(|http| Ok(http.get(&url).timeout(REQUEST_TIMEOUT)))
        .await?;
    let droplet: Droplet = read("GET /v3/droplets/:guid", &body)?;
    progress.set(report, "droplet", &droplet.guid, &droplet.state);
    Ok(droplet)
}
