//! The app through v3: a given guid is checked (`GET /v3/apps/:guid`), a
//! name is looked up in its space (`GET /v3/apps?names=…&space_guids=…`)
//! and created there when absent (`POST /v3/apps`).

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::api::CcSession;
use super::super::apps::Resolution;
use super::super::spec::AppRef;
use super::error::read;
use crate::backend::DeployError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The fields of a v3 app pushfs uses.
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    pub guid: String,
    /// `STARTED` or `STOPPED`.
    pub state: String,
}

#[derive(Deserialize)]
struct AppList {
    resources: Vec<App>,
}

pub async fn resolve(
    session: &CcSession<'_>,
    app: &AppRef,
    default_space: Option<&str>,
) -> Result<(App, Resolution), DeployError> {
    match app {
        AppRef::Guid(guid) => {
            let url = session.url(&format!("/v3/apps/{guid}"));
            let (_, body) = session
                .send(|http| Ok(http.get(&url).timeout(REQUEST_TIMEOUT)))
                .await?;
            Ok((read("GET /v3/apps/:guid", &body)?, Resolution::Given))
        }
        AppRef::Name { name, space_guid } => {
            let space = space_guid.as_deref().or(default_space).ok_or_else(|| {
                DeployError::InvalidSpec(format!(
                    "app {name:?} has no space: add \"space_guid\" to spec.json, set [cf] space_guid, or target a space with `cf target -s`"
                ))
            })?;
            let url = session.url("/v3/apps");
            // The cf CLI escapes a comma inside a name, as `names` is a list.
            let query = [
                ("names", name.replace(',', "%2C")),
                ("space_guids", space.to_string()),
            ];
            let (_, body) = session
                .send(|http| Ok(http.get(&url).query(&query).timeout(REQUEST_TIMEOUT)))
                .await?;
            let list: AppList = read("GET /v3/apps", &body)?;
            if let Some(app) = list.resources.into_iter().next() {
                return Ok((app, Resolution::Found));
            }
            let create = json!({
                "name": name,
                "relationships": {"space": {"data": {"guid": space}}},
            });
            let (_, body) = session
                .send(|http| Ok(http.post(&url).json(&create).timeout(REQUEST_TIMEOUT)))
                .await?;
            Ok((read("POST /v3/apps", &body)?, Resolution::Created))
        }
    }
}

/// `POST /v3/apps/:guid/actions/stop`, as `cf push --no-start` does for a
/// started app.
pub async fn stop(session: &CcSession<'_>, guid: &str) -> Result<(), DeployError> {
    let url = session.url(&format!("/v3/apps/{guid}/actions/stop"));
    session
        .send(|http| Ok(http.post(&url).timeout(REQUEST_TIMEOUT)))
        .await?;
    Ok(())
}
