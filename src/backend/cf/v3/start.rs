//! Running the new droplet as `cf push` does: make it the app's current
//! droplet, restart the app, then watch every process's instances until
//! one runs (or the process has none), failing when all have crashed.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::super::api::CcSession;
use super::error::{read, PushError};
use super::poll::Poller;
use crate::backend::{DeployError, Report};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
struct List<T> {
    resources: Vec<T>,
}

#[derive(Debug, Deserialize)]
struct Process {
    guid: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct Instance {
    state: String,
}

/// `PATCH /v3/apps/:guid/relationships/current_droplet`, then
/// `POST /v3/apps/:guid/actions/restart`.
pub async fn run_droplet(
    session: &CcSession<'_>,
    app_guid: &str,
    droplet_guid: &str,
) -> Result<(), DeployError> {
    let url = session.url(&format!(
        "/v3/apps/{app_guid}/relationships/current_droplet"
    ));
    let body = json!({"data": {"guid": droplet_guid}});
    session
        .send(|http| Ok(http.patch(&url).json(&body).timeout(REQUEST_TIMEOUT)))
        .await?;
    let url = session.url(&format!("/v3/apps/{app_guid}/actions/restart"));
    session
        .send(|http| Ok(http.post(&url).timeout(REQUEST_TIMEOUT)))
        .await?;
    Ok(())
}

/// How a process's instances stand.
#[derive(Debug, PartialEq, Eq)]
enum Stability {
    /// No instances, or at least one RUNNING.
    Stable,
    /// Instances exist and all are CRASHED.
    Crashed,
    Waiting,
}

fn stability(instances: &[Instance]) -> Stability {
    if instances.is_empty() || instances.iter().any(|i| i.state == "RUNNING") {
        Stability::Stable
    } else if instances.iter().all(|i| i.state == "CRASHED") {
        Stability::Crashed
    } else {
        Stability::Waiting
    }
}

/// Polls `GET /v3/processes/:guid/stats` for each of the app's processes
/// until every one is stable, as the cf CLI's `PollStart` does.
pub async fn wait_running(
    session: &CcSession<'_>,
    app_guid: &str,
    interval: Duration,
    timeout: Duration,
    report: &dyn Report,
) -> Result<(), DeployError> {
    let url = session.url(&format!("/v3/apps/{app_guid}/processes"));
    let (_, body) = session
        .send(|http| Ok(http.get(&url).timeout(REQUEST_TIMEOUT)))
        .await?;
    let processes: List<Process> = read("GET /v3/apps/:guid/processes", &body)?;
    for process in processes.resources {
        let url = session.url(&format!("/v3/processes/{}/stats", process.guid));
        let mut poller = Poller::new(interval, timeout);
        let mut last_states = String::new();
        loop {
            let Some(body) = poller.next(session, &url, report).await? else {
                return Err(PushError::TimedOut {
                    what: format!("process {} ({})", process.kind, process.guid),
                    state: if last_states.is_empty() {
                        "starting".into()
                    } else {
                        last_states
                    },
                    after: format!(
                        "{} (the app must listen on $PORT; [cf] startup_timeout_secs)",
                        poller.timeout_text()
                    ),
                }
                .into());
            };
            let stats: List<Instance> = read("GET /v3/processes/:guid/stats", &body)?;
            let states: Vec<&str> = stats.resources.iter().map(|i| i.state.as_str()).collect();
            let joined = states.join(",");
            if joined != last_states {
                report.log(&format!(
                    "poll: process {} instances {}",
                    process.kind,
                    if joined.is_empty() { "none" } else { &joined }
                ));
                last_states = joined;
            }
            match stability(&stats.resources) {
                Stability::Stable => break,
                Stability::Crashed => {
                    report.response(&body);
                    return Err(PushError::AllInstancesCrashed {
                        process_type: process.kind,
                    }
                    .into());
                }
                Stability::Waiting => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instances(states: &[&str]) -> Vec<Instance> {
        states
            .iter()
            .map(|s| Instance {
                state: s.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_process_is_stable_when_one_runs_or_none_exist() {
        assert_eq!(stability(&[]), Stability::Stable);
        assert_eq!(
            stability(&instances(&["CRASHED", "RUNNING"])),
            Stability::Stable
        );
        assert_eq!(
            stability(&instances(&["CRASHED", "CRASHED"])),
            Stability::Crashed
        );
        assert_eq!(
            stability(&instances(&["STARTING", "CRASHED"])),
            Stability::Waiting
        );
        assert_eq!(stability(&instances(&["DOWN"])), Stability::Waiting);
    }
}
