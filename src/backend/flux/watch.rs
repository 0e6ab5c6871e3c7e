//! Follows an accepted message until its app is live: temporary (unpaid)
//! → permanent (paid) → running with our hash on at least one node
//! (`/apps/location/<name>`); or until its deadline passes unpaid, or the
//! payment turns out below the price (underpaid: FluxOS keeps the message
//! but never registers the app). Polls politely: the interval doubles
//! while nothing changes, up to a maximum, and never sleeps past the
//! deadline. Network trouble is waited out.

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
            Err(err @ (DeployError::ExpiredUnpaid(_) | DeployError::Underpaid(_))) => {
                return Err(err)
            }
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
        if node.permanent_message(&hash).await?.is_none() {
            let temporary = node.temporary_message(&hash).await?;
            if let Some(spec) = temporary.as_ref().and_then(|t| t.spec.as_ref()) {
                if payment::complete(node, &spec.to_string(), due, report).await {
                    report.payment(due);
                }
            }
            if temporary.is_none() && clock.now_ms() >= due.deadline_ms {
                due.stage = PaymentStage::Expired;
                report.payment(due);
                let again = if due.renewal {
                    "The app runs until its old expiry; write `renew` to .pushfs/ctl to try again"
                } else {
                    "Change the app, or write `deploy` to .pushfs/ctl, to register again"
                };
                return Err(DeployError::ExpiredUnpaid(format!(
                    "message {hash} was not paid by {}; the network dropped it. {again}",
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
        if let Some(why) = underpaid(node, due).await? {
            due.stage = PaymentStage::Underpaid;
            report.payment(due);
            return Err(DeployError::Underpaid(why));
        }
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

/// Whether the paid message fell short of its price: its payment
/// (`valueSat`) is below the price asked, and the network did not register
/// the app with it. FluxOS then keeps the message for good and never runs
/// it; the check against the registration is what makes this safe, since
/// nodes accept anything from their own on-chain price up, which may be
/// below the price quoted. Says why, and what to do.
async fn underpaid(
    node: &NodeQueries<'_>,
    due: &PaymentDue,
) -> Result<Option<String>, DeployError> {
    let Some(price) = due.price else {
        return Ok(None);
    };
    let Some(paid) = node
        .permanent_message(&due.memo)
        .await?
        .and_then(|m| m.value_sat)
    else {
        return Ok(None);
    };
    let price_sat = (price * 1e8).round() as u64;
    if paid >= price_sat {
        return Ok(None);
    }
    let registered = node.app_specification(&due.app_name).await?;
    if registered
        .as_ref()
        .and_then(|spec| spec.get("hash"))
        .and_then(serde_json::Value::as_str)
        == Some(due.memo.as_str())
    {
        return Ok(None);
    }
    let fix = if due.renewal {
        "the app runs until its old expiry; write `renew` to .pushfs/ctl and pay the full price of the new message"
    } else {
        "register again (change the app, or write `deploy` to .pushfs/ctl) and pay the full price of the new message"
    };
    Ok(Some(format!(
        "message {} was paid {} {cur}, {} {cur} short of its price {} {cur}: the network keeps it but does not run {}. A payment cannot be topped up: {fix}",
        due.memo,
        flux_amount(paid),
        flux_amount(price_sat - paid),
        flux_amount(price_sat),
        due.app_name,
        cur = due.currency,
    )))
}

/// Satoshis as FLUX, without trailing zeros: `63000000` → `0.63`.
pub fn flux_amount(sat: u64) -> String {
    let text = format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_like_prices() {
        assert_eq!(flux_amount(63_000_000), "0.63");
        assert_eq!(flux_amount(1_000_000), "0.01");
        assert_eq!(flux_amount(200_000_000), "2");
        assert_eq!(flux_amount(1), "0.00000001");
    }
}
