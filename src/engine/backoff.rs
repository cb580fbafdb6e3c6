//! Restart backoff for crashed replicas: exponential from an initial delay
//! up to a maximum, with a little jitter so that replicas that crashed
//! together do not restart in lockstep, and reset once a replica has run
//! long enough.

use std::time::Duration;

/// A replica that ran this long before it exited starts over from the
/// initial delay, as the kubelet does for CrashLoopBackOff.
pub const RESET_AFTER: Duration = Duration::from_secs(10 * 60);

/// Jitter is at most this fraction of the delay, either way.
const JITTER_FRACTION: f64 = 0.1;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Exits in a row, each after a run shorter than [`RESET_AFTER`].
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            failures: 0,
        }
    }

    /// Returns the delay before the next start of a replica that ran for
    /// `ran_for` and then exited. `unit` is a random number in [0, 1) that
    /// picks the jitter; tests pass a fixed one.
    pub fn next_delay(&mut self, ran_for: Duration, unit: f64) -> Duration {
        if ran_for >= RESET_AFTER {
            self.failures = 0;
        }
        let base = self.base_delay();
        self.failures = self.failures.saturating_add(1);

        let spread = (unit.clamp(0.0, 1.0) * 2.0 - 1.0) * JITTER_FRACTION;
        let jittered = base.mul_f64(1.0 + spread);
        jittered.min(self.max)
    }

    /// `initial × 2^failures`, capped at `max`.
    fn base_delay(&self) -> Duration {
        let factor = 2u32.checked_pow(self.failures.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |delay| delay.min(self.max))
    }
}

/// A random number in [0, 1) from the OS generator, for jitter.
pub fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_JITTER: f64 = 0.5;

    fn seconds(value: u64) -> Duration {
        Duration::from_secs(value)
    }

    #[test]
    fn backoff_doubles_from_initial() {
        let mut backoff = Backoff::new(seconds(1), seconds(300));
        let delays: Vec<Duration> = (0..4)
            .map(|_| backoff.next_delay(seconds(0), NO_JITTER))
            .collect();
        assert_eq!(delays, vec![seconds(1), seconds(2), seconds(4), seconds(8)]);
    }

    #[test]
    fn backoff_stops_at_max() {
        let mut backoff = Backoff::new(seconds(1), seconds(5));
        for _ in 0..10 {
            backoff.next_delay(seconds(0), NO_JITTER);
        }
        assert_eq!(backoff.next_delay(seconds(0), NO_JITTER), seconds(5));
    }

    #[test]
    fn backoff_resets_after_long_run() {
        let mut backoff = Backoff::new(seconds(1), seconds(300));
        for _ in 0..5 {
            backoff.next_delay(seconds(1), NO_JITTER);
        }
        assert_eq!(backoff.next_delay(RESET_AFTER, NO_JITTER), seconds(1));
        assert_eq!(backoff.next_delay(seconds(1), NO_JITTER), seconds(2));
    }

    #[test]
    fn backoff_jitter_stays_within_ten_percent() {
        let mut low = Backoff::new(seconds(10), seconds(300));
        let mut high = Backoff::new(seconds(10), seconds(300));
        assert_eq!(low.next_delay(seconds(0), 0.0), seconds(9));
        let top = high.next_delay(seconds(0), 0.999_999);
        assert!(top > Duration::from_millis(10_990), "{top:?}");
        assert!(top <= seconds(11), "{top:?}");
    }

    #[test]
    fn backoff_survives_many_failures() {
        let mut backoff = Backoff::new(seconds(1), seconds(300));
        for _ in 0..100 {
            backoff.next_delay(seconds(0), NO_JITTER);
        }
        assert_eq!(backoff.next_delay(seconds(0), NO_JITTER), seconds(300));
    }

    #[test]
    fn random_unit_is_below_one() {
        for _ in 0..100 {
            let unit = random_unit();
            assert!((0.0..1.0).contains(&unit), "{unit}");
        }
    }
}
