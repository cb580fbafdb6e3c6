//! Per-second rates and increases of monotonic counters, with resets.
//!
//! A counter only goes up until its process restarts, when it starts again
//! from zero. Like Prometheus's `rate()` and `increase()`, a drop in value
//! is read as a reset, so the whole new value counts as the increase since
//! the previous sample. A rate is never made up: the first sample, a NaN or
//! infinite value, and a time step of zero or less all give `None`.

/// Rate tracker fed with successive samples of one counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CounterRate {
    last: Option<(i64, f64)>,
    rate: Option<f64>,
}

impl CounterRate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a sample taken at `time_ms` (milliseconds) and returns the
    /// per-second rate since the previous valid sample.
    ///
    /// Returns `None` for the first sample, for a value that is NaN or
    /// infinite (the sample is then ignored, so the next rate spans the gap),
    /// and when `time_ms` is not after the previous sample's time. In that
    /// last case the new sample replaces the previous one, because a clock
    /// that went back makes the old time useless as a base.
    pub fn push(&mut self, time_ms: i64, value: f64) -> Option<f64> {
        if !value.is_finite() {
            self.rate = None;
            return None;
        }

        let previous = self.last.replace((time_ms, value));
        self.rate = previous.and_then(|(t0, v0)| rate_between((t0, v0), (time_ms, value)));
        self.rate
    }

    /// Returns the rate computed by the latest [`push`](Self::push).
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Returns the latest valid sample as `(time_ms, value)`.
    pub fn last_sample(&self) -> Option<(i64, f64)> {
        self.last
    }
}

/// Returns the increase of a counter over `samples`, which must be in time
/// order, counting each drop in value as a reset to zero.
///
/// Samples that are NaN or infinite, or not later than the previous valid
/// sample, are skipped. Returns `None` when fewer than two valid samples
/// remain.
///
/// NOTE: unlike Prometheus's `increase()`, this does not extrapolate to the
/// edges of a query window. It is the increase between the first and the last
/// valid sample only.
pub fn increase(samples: &[(i64, f64)]) -> Option<f64> {
    let mut valid = samples
        .iter()
        .copied()
        .filter(|(_, value)| value.is_finite());
    let mut previous = valid.next()?;
    let mut total = None;

    for (time_ms, value) in valid {
        if time_ms <= previous.0 {
            continue;
        }

        total = Some(total.unwrap_or(0.0) + counter_delta(previous.1, value));
        previous = (time_ms, value);
    }

    total
}

/// Returns the per-second rate between two samples, or `None` unless the
/// second is strictly later and both values are finite.
fn rate_between(earlier: (i64, f64), later: (i64, f64)) -> Option<f64> {
    let elapsed_ms = later.0.checked_sub(earlier.0)?;
    if elapsed_ms <= 0 || !earlier.1.is_finite() || !later.1.is_finite() {
        return None;
    }

    let seconds = elapsed_ms as f64 / 1000.0;
    Some(counter_delta(earlier.1, later.1) / seconds)
}

/// Returns how much a counter grew from `previous` to `next`. A drop means the
/// counter was reset to zero in between, so all of `next` is new.
fn counter_delta(previous: f64, next: f64) -> f64 {
    if next >= previous {
        next - previous
    } else {
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counter samples as `(time_ms, value)`.
    type Samples = &'static [(i64, f64)];

    fn rates(samples: &[(i64, f64)]) -> Vec<Option<f64>> {
        let mut tracker = CounterRate::new();
        samples.iter().map(|&(t, v)| tracker.push(t, v)).collect()
    }

    #[test]
    fn rate_table() {
        const NAN: f64 = f64::NAN;
        let cases: &[(&str, Samples, &[Option<f64>])] = &[
            ("first sample", &[(0, 5.0)], &[None]),
            (
                "monotonic",
                &[(0, 0.0), (1_000, 10.0), (3_000, 30.0)],
                &[None, Some(10.0), Some(10.0)],
            ),
            (
                "flat counter",
                &[(0, 7.0), (10_000, 7.0)],
                &[None, Some(0.0)],
            ),
            (
                "reset in the middle",
                &[(0, 100.0), (1_000, 110.0), (2_000, 4.0), (3_000, 8.0)],
                &[None, Some(10.0), Some(4.0), Some(4.0)],
            ),
            (
                "reset to zero",
                &[(0, 50.0), (2_000, 0.0), (4_000, 6.0)],
                &[None, Some(0.0), Some(3.0)],
            ),
            (
                "equal timestamps",
                &[(1_000, 1.0), (1_000, 2.0), (2_000, 4.0)],
                &[None, None, Some(2.0)],
            ),
            (
                "clock went back",
                &[(5_000, 10.0), (4_000, 12.0), (6_000, 16.0)],
                &[None, None, Some(2.0)],
            ),
            (
                "NaN is skipped",
                &[(0, 0.0), (1_000, NAN), (2_000, 20.0)],
                &[None, None, Some(10.0)],
            ),
            (
                "NaN first",
                &[(0, NAN), (1_000, 3.0), (2_000, 5.0)],
                &[None, None, Some(2.0)],
            ),
            (
                "infinity is skipped",
                &[(0, 1.0), (500, f64::INFINITY), (1_000, 2.0)],
                &[None, None, Some(1.0)],
            ),
            (
                "sub-second interval",
                &[(0, 0.0), (250, 1.0)],
                &[None, Some(4.0)],
            ),
        ];

        for (name, samples, expected) in cases {
            assert_eq!(rates(samples), *expected, "case {name}");
        }
    }

    #[test]
    fn rate_keeps_latest_result() {
        let mut tracker = CounterRate::new();
        tracker.push(0, 0.0);
        tracker.push(2_000, 8.0);

        assert_eq!(tracker.rate(), Some(4.0));
        assert_eq!(tracker.last_sample(), Some((2_000, 8.0)));

        tracker.push(3_000, f64::NAN);
        assert_eq!(tracker.rate(), None);
        assert_eq!(tracker.last_sample(), Some((2_000, 8.0)));
    }

    #[test]
    fn rate_extreme_timestamps() {
        let mut tracker = CounterRate::new();
        tracker.push(i64::MAX, 1.0);

        assert_eq!(tracker.push(i64::MIN, 2.0), None);
    }

    #[test]
    fn increase_table() {
        const NAN: f64 = f64::NAN;
        let cases: &[(&str, Samples, Option<f64>)] = &[
            ("empty", &[], None),
            ("first sample only", &[(0, 3.0)], None),
            (
                "monotonic",
                &[(0, 1.0), (1_000, 4.0), (2_000, 9.0)],
                Some(8.0),
            ),
            (
                "reset in the middle",
                &[(0, 10.0), (1_000, 15.0), (2_000, 2.0), (3_000, 7.0)],
                Some(12.0),
            ),
            (
                "reset to zero",
                &[(0, 10.0), (1_000, 0.0), (2_000, 3.0)],
                Some(3.0),
            ),
            (
                "two resets",
                &[(0, 5.0), (1_000, 1.0), (2_000, 0.0), (3_000, 2.0)],
                Some(3.0),
            ),
            (
                "equal timestamps skipped",
                &[(0, 1.0), (0, 100.0), (1_000, 3.0)],
                Some(2.0),
            ),
            (
                "NaN skipped",
                &[(0, 1.0), (1_000, NAN), (2_000, 4.0)],
                Some(3.0),
            ),
            ("only NaN", &[(0, NAN), (1_000, NAN)], None),
            ("one valid among NaN", &[(0, NAN), (1_000, 2.0)], None),
        ];

        for (name, samples, expected) in cases {
            assert_eq!(increase(samples), *expected, "case {name}");
        }
    }
}
