//! Polling a v3 object: the cf CLI's rhythm (first look at once, then one
//! every interval, 3 s by default) within a bound, tolerating a few
//! network blips so a good upload is not lost to one failed GET.

use std::time::Duration;

use tokio::time::Instant;

use super::super::api::CcSession;
use crate::backend::{DeployError, Report};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Retryable poll failures in a row that are tolerated.
const TOLERATED_FAILURES: u32 = 3;

/// The waits of a v3 push; defaults are the cf CLI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `DefaultPollingInterval`.
    pub interval: Duration,
    /// The package's processing (the cf CLI has no bound; pushfs uses
    /// `job_timeout_secs`).
    pub package_timeout: Duration,
    /// `CF_STAGING_TIMEOUT`.
    pub staging_timeout: Duration,
    /// `CF_STARTUP_TIMEOUT`.
    pub startup_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            interval: Duration::from_secs(3),
            package_timeout: Duration::from_secs(15 * 60),
            staging_timeout: Duration::from_secs(15 * 60),
            startup_timeout: Duration::from_secs(5 * 60),
        }
    }
}

/// One wait: successive GETs of one URL.
pub struct Poller {
    interval: Duration,
    timeout: Duration,
    deadline: Instant,
    first: bool,
}

impl Poller {
    pub fn new(interval: Duration, timeout: Duration) -> Poller {
        Poller {
            interval,
            timeout,
            deadline: Instant::now() + timeout,
            first: true,
        }
    }

    /// The bound, for messages.
    pub fn timeout_text(&self) -> String {
        humantime::format_duration(self.timeout).to_string()
    }

    /// The next answer from `GET url`, or `None` once the bound has passed.
    pub async fn next(
        &mut self,
        session: &CcSession<'_>,
        url: &str,
        report: &dyn Report,
    ) -> Result<Option<serde_json::Value>, DeployError> {
        let mut failures = 0;
        loop {
            if !self.first {
                let now = Instant::now();
                if now >= self.deadline {
                    return Ok(None);
                }
                tokio::time::sleep(self.interval.min(self.deadline - now)).await;
            }
            self.first = false;
            match session
                .send(|http| Ok(http.get(url).timeout(REQUEST_TIMEOUT)))
                .await
            {
                Ok((_, body)) => return Ok(Some(body)),
                Err(err) if err.is_retryable() && failures < TOLERATED_FAILURES => {
                    failures += 1;
                    report.log(&format!("cf: polling failed ({err}); polling again"));
                }
                Err(err) => return Err(err),
            }
        }
    }
}
