//! How often progress is shown: every status update takes the app's lock
//! and restamps it, so a reader or stream moving thousands of chunks a
//! second must not report each one.

use std::time::{Duration, Instant};

/// Lets a progress value through at most once per interval; the first
/// value and the completed one pass at once, an unchanged one never.
#[derive(Debug, Clone)]
pub struct Throttle {
    every: Duration,
    last: Option<(Instant, u64)>,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle { every, last: None }
    }

    /// Whether `done` (of `total`) should be shown at `now`; if so, it is
    /// remembered as shown.
    pub fn admit(&mut self, now: Instant, done: u64, total: u64) -> bool {
        let pass = match self.last {
            None => true,
            Some((_, shown)) if shown == done => false,
            // The end is worth showing without waiting: it is the last value.
            Some(_) if done >= total => true,
            Some((at, _)) => now.saturating_duration_since(at) >= self.every,
        };
        if pass {
            self.last = Some((now, done));
        }
        pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_millis(250);

    #[test]
    fn the_first_value_passes_then_at_most_one_per_interval() {
        let start = Instant::now();
        let mut throttle = Throttle::new(EVERY);
        assert!(throttle.admit(start, 0, 1000));
        assert!(!throttle.admit(start + Duration::from_millis(10), 5, 1000));
        assert!(!throttle.admit(start + Duration::from_millis(249), 50, 1000));
        assert!(throttle.admit(start + EVERY, 60, 1000));
        assert!(!throttle.admit(start + Duration::from_millis(400), 70, 1000));
        assert!(throttle.admit(start + Duration::from_millis(500), 80, 1000));
    }

    #[test]
    fn an_unchanged_value_is_never_shown_again() {
        let start = Instant::now();
        let mut throttle = Throttle::new(EVERY);
        assert!(throttle.admit(start, 10, 1000));
        assert!(!throttle.admit(start + Duration::from_secs(5), 10, 1000));
    }

    #[test]
    fn completion_passes_at_once_but_only_once() {
        let start = Instant::now();
        let mut throttle = Throttle::new(EVERY);
        assert!(throttle.admit(start, 10, 1000));
        assert!(throttle.admit(start + Duration::from_millis(1), 1000, 1000));
        assert!(!throttle.admit(start + Duration::from_millis(2), 1000, 1000));
    }

    #[test]
    fn a_flood_of_updates_is_cut_to_the_interval() {
        let start = Instant::now();
        let mut throttle = Throttle::new(EVERY);
        // One chunk every millisecond for two seconds.
        let shown = (0..2000u64)
            .filter(|ms| throttle.admit(start + Duration::from_millis(*ms), ms + 1, 1_000_000))
            .count();
        assert_eq!(shown, 8, "one at the start, then one every 250 ms");
    }
}
