//! The v3 package: `POST /v3/packages` (type bits), the multipart upload
//! (`resources` first, then the zip as `bits`, or only `resources` when the
//! pool holds everything), and the wait for READY or FAILED.

use std::fs::File;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::json;

use super::super::api::CcSession;
use super::super::bits;
use super::error::{read, PushError};
use super::poll::Poller;
use super::progress::Progress;
use crate::backend::metered::metered;
use crate::backend::{DeployError, ProgressPhase, Report};
use crate::package::zip::ZipSummary;
use crate::progress::ByteCounter;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The cf CLI's upload timeout.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub guid: String,
    pub state: String,
    #[serde(default)]
    pub data: PackageData,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PackageData {
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub checksum: Option<PackageChecksum>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PackageChecksum {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: Option<String>,
}

impl Package {
    /// The server's SHA-256 of the package, once READY.
    pub fn sha256(&self) -> Option<String> {
        self.data
            .checksum
            .as_ref()
            .filter(|c| c.kind == "sha256")
            .and_then(|c| c.value.clone())
    }
}

pub async fn create(session: &CcSession<'_>, app_guid: &str) -> Result<Package, DeployError> {
    let url = session.url("/v3/packages");
    let body = json!({"type": "bits", "relationships": {"app": {"data": {"guid": app_guid}}}});
    let (_, answer) = session
        .send(|http| Ok(http.post(&url).json(&body).timeout(REQUEST_TIMEOUT)))
        .await?;
    read("POST /v3/packages", &answer)
}

/// `POST /v3/packages/:guid/upload`. `resources` is the pool's answer,
/// verbatim; `zip` is absent when every file came from the pool. The zip's
/// bytes sent so far are reported as progress.
/// A docker package (`cf push --docker-image`): READY at once, no bits.
pub async fn create_docker(
    session: &CcSession<'_>,
    app_guid: &str,
    image: &str,
    username: Option<&str>,
    password: Option<&str>,
) -> Result<Package, DeployError> {
    let url = session.url("/v3/packages");
    let mut data = json!({"image": image});
    if let (Some(username), Some(password)) = (username, password) {
        data["username"] = json!(username);
        data["password"] = json!(password);
    }
    let body = json!({
        "type": "docker",
        "data": data,
        "relationships": {"app": {"data": {"guid": app_guid}}},
    });
    let (_, answer) = session
        .send(|http| Ok(http.post(&url).json(&body).timeout(REQUEST_TIMEOUT)))
        .await?;
    read("POST /v3/packages (docker)", &answer)
}

pub async fn upload(
    session: &CcSession<'_>,
    guid: &str,
    resources: &[serde_json::Value],
    zip: Option<&(File, ZipSummary)>,
    report: &dyn Report,
) -> Result<(Package, serde_json::Value), DeployError> {
    let url = session.url(&format!("/v3/packages/{guid}/upload"));
    let resources = serde_json::to_string(resources)
        .map_err(|err| DeployError::Protocol(format!("encoding resources: {err}")))?;
    let sent = ByteCounter::new();
    let request = session.send(|http| {
        let mut form = Form::new().part("resources", Part::text(resources.clone()));
        if let Some(zip) = zip {
            let part = bits::zip_part(zip, "package.zip", "application/octet-stream", &sent)?;
            form = form.part("bits", part);
        }
        Ok(http.post(&url).multipart(form).timeout(UPLOAD_TIMEOUT))
    });
    let total = bits::zip_len(zip);
    let (_, body) = metered(report, ProgressPhase::Uploading, &sent, total, request).await?;
    Ok((read("POST /v3/packages/:guid/upload", &body)?, body))
}

/// Polls the package until READY; FAILED carries its `data.error`.
pub async fn wait_ready(
    session: &CcSession<'_>,
    mut package: Package,
    mut poller: Poller,
    progress: &mut Progress,
    report: &dyn Report,
) -> Result<(Package, serde_json::Value), DeployError> {
    let url = session.url(&format!("/v3/packages/{}", package.guid));
    let mut last = serde_json::Value::Null;
    loop {
        match package.state.as_str() {
            "READY" if !last.is_null() => return Ok((package, last)),
            "FAILED" => {
                return Err(PushError::PackageFailed {
                    guid: package.guid,
                    reason: package
                        .data
                        .error
                        .unwrap_or_else(|| "the server gave no reason".into()),
                }
                .into())
            }
            "EXPIRED" => return Err(PushError::PackageExpired { guid: package.guid }.into()),
            _ => {}
        }
        let Some(body) = poller.next(session, &url, report).await? else {
            return Err(PushError::TimedOut {
                what: format!("package {}", package.guid),
                state: package.state,
                after: poller.timeout_text(),
            }
            .into());
        };
        report.response(&body);
        let fresh: Package = read("GET /v3/packages/:guid", &body)?;
        if fresh.state != package.state {
            progress.set(report, "package", &fresh.guid, &fresh.state);
        }
        package = fresh;
        last = body;
    }
}
