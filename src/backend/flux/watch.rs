//! Follows an accepted message until its app is live: temporary (unpaid)
//! → permanent (paid) → running with our hash on at least one node
//! (`/apps/location/<name>`); or until its deadline passes unpaid. Polls
//! politely: the interval doubles while nothing changes, up to a maximum,
//! and never sleeps past the deadline. Network trouble is waited out.

use std::time::Duration;

use super::clock::Clock;
use super::payment;
use super::queries::NodeQueries;
use crate::backend::{DeployError, DeployState, PaymentDue, PaymentStage, Report};

/// How often the node is asked; `[flux] watch_interval_secs` and
/// `watch_max_interval_secs`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchPolicy {
    pub interval: Duration,
    pub max_interval: Duration,
}

impl Default for WatchPolicy {
    fn default() -> Self {
        WatchPolicy {
            interval: Duration::from_secs(30),
            max_interval: Duration::from_secs(300),
        }
    }
}

/// Where one look at the node left the message.
enum Step {
    Unchanged,
    Moved,
    Live,
}

pub async fn watch(
    node: &NodeQueries<'_>,
    clock: &dyn Clock,
    due: &PaymentDue,
    policy: WatchPolicy,
    report: &dyn Report,
) -> Result<(), DeployError> {
    let mut due = due.clone();
    let mut interval = policy.interval;
    let mut unreachable = false;
    loop {
        match look(node, clock, &mut due, report).await {
            Ok(Step::Live) => return Ok(()),
            Ok(Step::Moved) => interval = policy.interval,
            Ok(Step::Unchanged) => interval = (interval * 2).min(policy.max_interval),
            Err(DeployError::ExpiredUnpaid(why)) => return Err(DeployError::ExpiredUnpaid(why)),
            Err(err) => {
                if !unreachable {
                    report.log(&format!(
                        "poll: cannot ask the node about message {} ({err}); trying again",
                        due.memo
                    ));
                }
                unreachable = true;
                interval = (interval * 2).min(policy.max_interval);
                tokio::time::sleep(interval).await;
                continue;
            }
        }
        if unreachable {
            report.log("poll: the node answers again");
            unreachable = false;
        }
        let now = clock.now_ms();
        let sleep = if due.stage == PaymentStage::Unpaid && now < due.deadline_ms {
            // Wake just after the deadline to report the expiry promptly.
            interval.min(Duration::from_millis(due.deadline_ms - now + 10))
        } else {
            interval
        };
        tokio::time::sleep(sleep).await;
    }
}

async fn look(
    node: &NodeQueries<'_>,
    clock: &dyn Clock,
    due: &mut PaymentDue,
    report: &dyn Report,
) -> Result<Step, DeployError> {
    let hash = due.memo.clone();
    let mut step = Step::Unchanged;
    if due.stage == PaymentStage::Unpaid {
        if !node.is_permanent(&hash).await? {
            let temporary = node.temporary_message(&hash).await?;
            if let Some(spec) = temporary.as_ref().and_then(|t| t.spec.as_ref()) {
                if payment::complete(node, &spec.to_string(), due, report).await {
                    report.payment(due);
                }
            }
            if temporary.is_none() && clock.now_ms() >= due.deadline_ms {
                due.stage = PaymentStage::Expired;
                report.payment(due);
                return Err(DeployError::ExpiredUnpaid(format!(
                    "message {hash} was not paid by {}; the network dropped it. Change the app, or write `deploy` to .pushfs/ctl, to register again",
                    due.deadline
                )));
            }
            return Ok(Step::Unchanged);
        }
        due.stage = PaymentStage::Paid;
        report.payment(due);
        report.state(DeployState::Paid);
        report.log(&format!(
            "poll: message {hash} is paid (a permanent message now); waiting for nodes to run {}",
            due.app_name
        ));
        step = Step::Moved;
    }
    let running = node.nodes_running(&due.app_name, &hash).await?;
    if running == 0 {
        return Ok(step);
    }
    due.stage = PaymentStage::Running;
    report.payment(due);
    report.log(&format!(
        "poll: {} runs message {hash} on {running} node(s)",
        due.app_name
    ));
    Ok(Step::Live)
}
