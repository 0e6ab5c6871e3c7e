//! Turns an [`AppRef`] into an app guid: checks a given guid, or finds the
//! app by name in its space (`GET /v2/apps?q=…`) and creates it when absent.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::api::CcSession;
use super::spec::AppRef;
use crate::backend::DeployError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How the guid was found, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Given,
    Found,
    Created,
}

#[derive(Deserialize)]
struct AppList {
    #[serde(default)]
    resources: Vec<AppResource>,
}

#[derive(Deserialize)]
struct AppResource {
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Metadata {
    guid: String,
}

/// The app's guid. `default_space` serves an [`AppRef::Name`] without a
/// space of its own.
pub async fn resolve(
    session: &CcSession<'_>,
    app: &AppRef,
    default_space: Option<&str>,
) -> Result<(String, Resolution), DeployError> {
    match app {
        AppRef::Guid(guid) => {
            let url = session.url(&format!("/v2/apps/{guid}"));
            session
                .send(|http| Ok(http.get(&url).timeout(REQUEST_TIMEOUT)))
                .await?;
            Ok((guid.clone(), Resolution::Given))
        }
        AppRef::Name { name, space_guid } => {
            let space = space_guid.as_deref().or(default_space).ok_or_else(|| {
                DeployError::InvalidSpec(format!(
                    "app {name:?} has no space: add \"space_guid\" to spec.json, set [cf] space_guid, or target a space with `cf target -s`"
                ))
            })?;
            if let Some(guid) = find(session, name, space).await? {
                return Ok((guid, Resolution::Found));
            }
            let url = session.url("/v2/apps");
            let body = json!({"name": name, "space_guid": space});
            let (_, created) = session
                .send(|http| Ok(http.post(&url).json(&body).timeout(REQUEST_TIMEOUT)))
                .await?;
            let created: AppResource = serde_json::from_value(created)
                .map_err(|err| DeployError::Protocol(format!("POST /v2/apps answer: {err}")))?;
            Ok((created.metadata.guid, Resolution::Created))
        }
    }
}

async fn find(
    session: &CcSession<'_>,
    name: &str,
    space: &str,
) -> Result<Option<String>, DeployError> {
    let url = session.url("/v2/apps");
    // The cf CLI repeats `q`, one filter each.
    let query = [
        ("q", format!("name:{name}")),
        ("q", format!("space_guid:{space}")),
    ];
    let (_, list) = session
        .send(|http| Ok(http.get(&url).query(&query).timeout(REQUEST_TIMEOUT)))
        .await?;
    let list: AppList = serde_json::from_value(list)
        .map_err(|err| DeployError::Protocol(format!("GET /v2/apps answer: {err}")))?;
    Ok(list.resources.into_iter().next().map(|r| r.metadata.guid))
}
