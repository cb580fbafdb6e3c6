//! Rate limiting of warnings that a flood of connections could repeat many times a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Minimum time between two warnings of the same kind from one endpoint.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Allows one warning per interval and counts the ones held back.
#[derive(Debug, Default)]
pub(crate) struct WarningLimiter {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl WarningLimiter {
    /// Returns `Some(n)` when a warning may be logged now, where `n` is the number of
    /// warnings held back since the previous one, and `None` when it must be skipped.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while logging, and the
        // stored instant is still valid, so keep using it.
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());

        let due = last.is_none_or(|previous| now.duration_since(previous) >= WARNING_INTERVAL);
        if !due {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }

        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_holds_back_repeats_within_interval() {
        let limiter = WarningLimiter::default();
        let start = Instant::now();

        assert_eq!(limiter.allow_at(start), Some(0));
        assert_eq!(limiter.allow_at(start + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow_at(start + Duration::from_secs(2)), None);
        assert_eq!(limiter.allow_at(start + WARNING_INTERVAL), Some(2));
        assert_eq!(limiter.allow_at(start + WARNING_INTERVAL), None);
    }
}
