//! Waiting between the attempts of a deploy that failed for now: until the
//! next attempt is due, or until the user or a change cuts the wait short.

use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::app::AppDeploy;
use super::status::{parse_rfc3339, AppStatus};
use crate::backend::DeployState;

/// A retrying deploy restored from the saved status (after a remount).
#[derive(Debug, Clone, Copy)]
pub struct RetryResume {
    /// The attempt that is due next.
    pub attempt: u32,
    /// When the content first failed; the deadline counts from here.
    pub since: SystemTime,
    /// When the next attempt is due.
    pub at: SystemTime,
}

impl RetryResume {
    /// The retry the status was waiting for, if it is `retrying`.
    pub fn from_status(status: &AppStatus) -> Option<RetryResume> {
        if status.state != DeployState::Retrying {
            return None;
        }
        let at = parse_rfc3339(status.next_attempt_at.as_deref()?)?;
        let since = status
            .retrying_since
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(at);
        Some(RetryResume {
            attempt: status.attempt.max(2),
            since,
            at,
        })
    }
}

/// How a wait between attempts ended.
pub enum RetryWait {
    /// The next attempt is due.
    Elapsed,
    /// Cancelled through ctl, or the mount stops.
    Cancelled,
    /// A change, `deploy` through ctl, or a hold: the worker takes over,
    /// with a fresh snapshot (at once, for `deploy`).
    Superseded,
}

/// Sleeps `pause`, unless cancelled or superseded first.
pub async fn wait_to_retry(
    app: &AppDeploy,
    token: &CancellationToken,
    pause: Duration,
) -> RetryWait {
    let until = tokio::time::Instant::now() + pause;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return RetryWait::Elapsed,
            _ = token.cancelled() => return RetryWait::Cancelled,
            _ = app.wake.notified() => {}
        }
        if let Some(reason) = app.held() {
            app.update(true, |s| {
                s.state = DeployState::Held;
                s.error = Some(reason);
                s.next_attempt_at = None;
            });
            return RetryWait::Superseded;
        }
        let (changed_at, forced) = app.pending_change();
        if changed_at.is_some() || forced {
            let why = if forced {
                "deploy requested through .pushfs/ctl; retrying now"
            } else {
                "the files changed; the retry takes the new content"
            };
            app.log("trigger", why);
            app.update(true, |s| {
                s.state = DeployState::Pending;
                s.next_attempt_at = None;
            });
            return RetryWait::Superseded;
        }
    }
}
