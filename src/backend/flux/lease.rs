//! How long a deployed Flux app lives, and the watch that follows it.
//!
//! FluxOS keeps an app while the chain is at or below the height of the
//! message that holds its spec plus that spec's `expire` (blocks), and
//! drops it once the chain passes it (`expireGlobalApplications` in
//! `ZelBack/src/services/appDatabase/registryManager.js`). Since the PON
//! fork at height 2,020,000 a block comes every 30 s, before it every
//! 2 min; an app registered before the fork whose life crosses it has its
//! post-fork blocks multiplied by 4, so it keeps the time it paid for.
//! The watch reads the height (`/daemon/getblockcount`), the registration
//! (`/apps/appspecifications/<name>`) and the locations, reports the
//! [`Lease`], warns within the renew window, and ends when the app is gone.

use std::time::Duration;

use serde_json::Value;

use super::clock::Clock;
use super::payment::rfc3339;
use super::queries::NodeQueries;
use super::validate::DAEMON_PON_FORK;
use crate::backend::{DeployError, Lease, Report};

/// FluxOS `blocksLasting`: one month of blocks before the PON fork.
const BLOCKS_LASTING: u64 = 22_000;
/// Seconds per block before and after the PON fork.
const BLOCK_SECS_BEFORE_PON: u64 = 120;
const BLOCK_SECS_AFTER_PON: u64 = 30;

/// How the watch of a deployed app runs: `[flux] watch_interval_secs`
/// (default 5 minutes while deployed) and `renew_warning` (default 7 days).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LivePolicy {
    pub interval: Duration,
    pub warning: Duration,
}

impl Default for LivePolicy {
    fn default() -> Self {
        LivePolicy {
            interval: Duration::from_secs(300),
            warning: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The height after which the network drops an app whose spec was paid
/// at `height` with `expire` blocks (`None`: the default month), seen
/// from a chain at `chain_height`. As FluxOS's `expireGlobalApplications`.
pub fn expire_height(height: u64, expire: Option<u64>, chain_height: u64) -> u64 {
    let default = if height >= DAEMON_PON_FORK {
        BLOCKS_LASTING * 4
    } else {
        BLOCKS_LASTING
    };
    let end = height + expire.filter(|e| *e > 0).unwrap_or(default);
    if height < DAEMON_PON_FORK && chain_height >= DAEMON_PON_FORK && end > DAEMON_PON_FORK {
        DAEMON_PON_FORK + (end - DAEMON_PON_FORK) * 4
    } else {
        end
    }
}

/// How long the chain takes from `from` to `to`, at each era's block time.
pub fn chain_time(from: u64, to: u64) -> Duration {
    if to <= from {
        return Duration::ZERO;
    }
    let before = DAEMON_PON_FORK.clamp(from, to) - from;
    let after = to - from - before;
    Duration::from_secs(before * BLOCK_SECS_BEFORE_PON + after * BLOCK_SECS_AFTER_PON)
}

/// The lease of an app whose registration `spec` (with its `height`) the
/// node returned, with the chain at `chain_height` at `now_ms`.
pub fn lease_of(spec: &Value, chain_height: u64, now_ms: u64) -> Option<Lease> {
    let height = spec.get("height").and_then(Value::as_u64)?;
    let expire = spec.get("expire").and_then(Value::as_u64);
    let end = expire_height(height, expire, chain_height);
    let ahead = chain_time(chain_height, end);
    Some(Lease {
        expire_height: end,
        blocks_left: end as i64 - chain_height as i64,
        expires_at: rfc3339(now_ms + ahead.as_millis() as u64),
        warning: None,
    })
}

/// `3 days 4h`, `5h 12m`, `40s`: time left as people read it.
pub fn time_left(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (1, h, _) => format!("1 day {h}h"),
        (d, h, _) => format!("{d} days {h}h"),
    }
}

/// What one look found.
enum Look {
    Live { lease: Lease, running: usize },
    Gone(String),
}

pub async fn watch_live(
    node: &NodeQueries<'_>,
    clock: &dyn Clock,
    name: &str,
    policy: LivePolicy,
    report: &dyn Report,
) -> Result<(), DeployError> {
    let mut last: Option<Lease> = None;
    let mut last_running = None;
    let mut unreachable = false;
    loop {
        match look(node, clock, name, policy, last.as_ref()).await {
            Ok(Look::Live { lease, running }) => {
                if unreachable {
                    report.log("poll: the node answers again");
                    unreachable = false;
                }
                if lease.warning.is_some() && last.as_ref().is_none_or(|l| l.warning.is_none()) {
                    report.log(&format!(
                        "poll: {}",
                        lease.warning.as_deref().unwrap_or_default()
                    ));
                }
                if last.as_ref().map(|l| l.expire_height) != Some(lease.expire_height) {
                    report.log(&format!(
                        "poll: {name} is paid until height {} (about {}; {} blocks from now)",
                        lease.expire_height, lease.expires_at, lease.blocks_left
                    ));
                }
                if last_running.is_some_and(|n| n != running) {
                    report.log(&format!("poll: {name} runs on {running} node(s)"));
                }
                last_running = Some(running);
                report.lease(&lease);
                last = Some(lease);
            }
            Ok(Look::Gone(why)) => return Err(DeployError::AppExpired(why)),
            Err(err) => {
                if !unreachable {
                    report.log(&format!(
                        "poll: cannot ask the node about {name} ({err}); trying again"
                    ));
                }
                unreachable = true;
            }
        }
        tokio::time::sleep(policy.interval).await;
    }
}

async fn look(
    node: &NodeQueries<'_>,
    clock: &dyn Clock,
    name: &str,
    policy: LivePolicy,
    last: Option<&Lease>,
) -> Result<Look, DeployError> {
    let chain = node.block_count().await?;
    let now = clock.now_ms();
    let since = |end: u64| {
        let ago = chain_time(end, chain);
        rfc3339(now.saturating_sub(ago.as_millis() as u64))
    };
    let renew_again =
        "Change the app, or write `deploy` to .pushfs/ctl, to register it again (and pay)";
    let Some(spec) = node.app_specification(name).await? else {
        let why = match last {
            Some(l) if chain > l.expire_height => format!(
                "{name} expired at height {} (about {}); the network dropped it (chain at {chain}). {renew_again}",
                l.expire_height,
                since(l.expire_height)
            ),
            Some(l) => format!(
                "{name} is no longer registered on the network (gone from /apps/appspecifications since about {}, before its expiry at height {}). {renew_again}",
                rfc3339(now),
                l.expire_height
            ),
            None => format!(
                "{name} is not registered on the network (not in /apps/appspecifications at height {chain}). {renew_again}"
            ),
        };
        return Ok(Look::Gone(why));
    };
    let mut lease = lease_of(&spec, chain, now).ok_or_else(|| {
        DeployError::Protocol(format!(
            "GET /apps/appspecifications/{name} gave no registration height"
        ))
    })?;
    if lease.blocks_left < 0 {
        // FluxOS sweeps expired apps every few blocks; past its height the
        // app is gone whether or not the sweep ran yet.
        return Ok(Look::Gone(format!(
            "{name} expired at height {} (about {}); the chain is at {chain}. {renew_again}",
            lease.expire_height,
            since(lease.expire_height)
        )));
    }
    let left = chain_time(chain, lease.expire_height);
    if left <= policy.warning {
        lease.warning = Some(format!(
            "{name} expires in about {} (height {}, about {}): write `renew` to .pushfs/ctl to extend it by the spec's expire, or `renew <blocks>`, then pay",
            time_left(left),
            lease.expire_height,
            lease.expires_at
        ));
    }
    let running = node.nodes_running_any(name).await?;
    Ok(Look::Live { lease, running })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiry_follows_fluxos_across_the_pon_fork() {
        // After the fork: height plus expire.
        assert_eq!(expire_height(2_100_000, Some(88_000), 2_150_000), 2_188_000);
        // No expire: the default month of its era.
        assert_eq!(expire_height(2_100_000, None, 2_150_000), 2_188_000);
        assert_eq!(expire_height(1_900_000, None, 1_910_000), 1_922_000);
        // Registered before the fork, ending after it: the tail counts 4x once past the fork.
        assert_eq!(
            expire_height(2_010_000, Some(22_000), 2_050_000),
            2_020_000 + 12_000 * 4
        );
        assert_eq!(expire_height(2_010_000, Some(22_000), 2_015_000), 2_032_000);
    }

    #[test]
    fn time_is_counted_at_each_eras_block_time() {
        assert_eq!(chain_time(2_100_000, 2_100_100), Duration::from_secs(3000));
        assert_eq!(
            chain_time(2_019_990, 2_020_010),
            Duration::from_secs(1200 + 300)
        );
        assert_eq!(chain_time(10, 5), Duration::ZERO);
    }

    #[test]
    fn a_lease_estimates_the_time_from_the_height() {
        let spec = json!({"name": "app", "expire": 1000, "height": 2_200_000});
        let lease = lease_of(&spec, 2_200_400, 1_800_000_000_000).unwrap();
        assert_eq!(lease.expire_height, 2_201_000);
        assert_eq!(lease.blocks_left, 600);
        // 600 blocks × 30 s = 5 h.
        assert_eq!(lease.expires_at, rfc3339(1_800_000_000_000 + 18_000_000));
        assert_eq!(time_left(Duration::from_secs(18_000)), "5h 0m");
        assert_eq!(
            time_left(Duration::from_secs(3 * 86_400 + 7200)),
            "3 days 2h"
        );
    }
}
