//! Reports a [`ByteCounter`] through [`Report::progress`] while the work
//! that advances it runs.
//!
//! The bytes move where the report cannot go (a blocking thread, a body
//! stream owned by the HTTP client), so the counter is read from here, on a
//! short tick, and the [`Throttle`] decides what is shown.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use super::Report;
use crate::progress::{ByteCounter, ProgressPhase, Throttle};

/// The most often progress is shown.
pub const SHOW_EVERY: Duration = Duration::from_millis(250);

/// How often the counter is read: well under [`SHOW_EVERY`], so a shown
/// value is never much older than the interval.
const LOOK_EVERY: Duration = Duration::from_millis(50);

/// Runs `work`, reporting `counter` as `done` of `total` bytes of `phase`:
/// at once, then at most every [`SHOW_EVERY`]. With nothing to count
/// (`total` 0) it only runs `work`.
pub async fn metered<F: Future>(
    report: &dyn Report,
    phase: ProgressPhase,
    counter: &ByteCounter,
    total: u64,
    work: F,
) -> F::Output {
    if total == 0 {
        return work.await;
    }
    let mut throttle = Throttle::new(SHOW_EVERY);
    let mut show = || {
        let done = counter.get().min(total);
        if throttle.admit(Instant::now(), done, total) {
            report.progress(phase, done, total);
        }
    };
    // The phase shows at once, before any work.
    show();
    let start = tokio::time::Instant::now() + LOOK_EVERY;
    let mut ticks = tokio::time::interval_at(start, LOOK_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticks.tick() => show(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{DeployState, JobInfo};
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Shown(Mutex<Vec<(ProgressPhase, u64, u64)>>);

    impl Report for Shown {
        fn state(&self, _: DeployState) {}
        fn log(&self, _: &str) {}
        fn id(&self, _: &str) {}
        fn job(&self, _: &JobInfo) {}
        fn response(&self, _: &serde_json::Value) {}
        fn progress(&self, phase: ProgressPhase, done: u64, total: u64) {
            self.0.lock().push((phase, done, total));
        }
    }

    #[tokio::test]
    async fn progress_is_shown_at_once_then_at_a_bounded_rate() {
        let shown = Shown::default();
        let counter = ByteCounter::new();
        let started = Instant::now();
        let work = async {
            // A chunk every millisecond or so, for about half a second.
            for _ in 0..500 {
                counter.add(1000);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            "done"
        };
        let out = metered(&shown, ProgressPhase::Uploading, &counter, 1_000_000, work).await;
        assert_eq!(out, "done");
        let took = started.elapsed();
        let shown = shown.0.into_inner();
        assert_eq!(shown[0], (ProgressPhase::Uploading, 0, 1_000_000));
        let most = 2 + (took.as_millis() / SHOW_EVERY.as_millis()) as usize;
        assert!(
            shown.len() <= most,
            "{} updates in {took:?}: {shown:?}",
            shown.len()
        );
        assert!(shown.windows(2).all(|w| w[0].1 < w[1].1), "{shown:?}");
        assert!(shown.iter().all(|s| s.1 <= s.2));
    }

    #[tokio::test]
    async fn nothing_to_count_reports_nothing() {
        let shown = Shown::default();
        let counter = ByteCounter::new();
        metered(&shown, ProgressPhase::Packaging, &counter, 0, async {}).await;
        assert!(shown.0.into_inner().is_empty());
    }
}
