//! Response-time histogram with fixed log-spaced buckets, updated with relaxed atomics
//! on the proxy's hot path, and its snapshot, which a metrics collector diffs between
//! two reads to get the counts of one interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Buckets per doubling of the response time. Four give bucket widths of 19%, so an
/// interpolated quantile is at most about 19% off the true value.
pub const BUCKETS_PER_DOUBLING: usize = 4;

/// Doublings above 1 µs that the buckets cover: 2^27 µs is about 134 s.
const DOUBLINGS: usize = 27;

/// Number of buckets: one below 1 µs, [`BUCKETS_PER_DOUBLING`] per doubling from 1 µs to
/// about 134 s, and one overflow bucket above.
pub const BUCKET_COUNT: usize = DOUBLINGS * BUCKETS_PER_DOUBLING + 2;

/// Returns the lower and upper bound in microseconds of bucket `index`. The last bucket's
/// upper bound is infinite.
pub fn bucket_bounds_micros(index: usize) -> (f64, f64) {
    let bound = |edge: usize| 2f64.powf(edge as f64 / BUCKETS_PER_DOUBLING as f64);
    match index {
        0 => (0.0, 1.0),
        _ if index >= BUCKET_COUNT - 1 => (bound(BUCKET_COUNT - 2), f64::INFINITY),
        _ => (bound(index - 1), bound(index)),
    }
}

/// Returns the bucket for a response time of `micros` microseconds.
fn bucket_index(micros: f64) -> usize {
    // NaN, which a Duration cannot produce, also lands in the first bucket.
    if micros.is_nan() || micros < 1.0 {
        return 0;
    }
    let index = (micros.log2() * BUCKETS_PER_DOUBLING as f64).floor() as usize + 1;
    index.min(BUCKET_COUNT - 1)
}

/// Live histogram of one endpoint, shared by its connection tasks.
#[derive(Debug)]
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            buckets: (0..BUCKET_COUNT).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    pub(crate) fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_secs_f64() * 1e6;
        self.buckets[bucket_index(micros)].fetch_add(1, Ordering::Relaxed);
        let whole_micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(whole_micros, Ordering::Relaxed);
    }

    /// Reads every bucket. Each is read on its own, so a snapshot taken while requests
    /// complete may miss a request in one bucket that `sum_micros` already includes.
    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: self
                .buckets
                .iter()
                .map(|bucket| bucket.load(Ordering::Relaxed))
                .collect(),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// Snapshot of response times: counts per bucket since the endpoint was bound, with
/// the bucket bounds given by [`bucket_bounds_micros`]. Bucket counts are not
/// cumulative across buckets: each counts only the responses within its own bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LatencyHistogram {
    /// Responses per bucket, [`BUCKET_COUNT`] entries.
    pub counts: Vec<u64>,
    /// Sum of all recorded response times, in whole microseconds.
    pub sum_micros: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: vec![0; BUCKET_COUNT],
            sum_micros: 0,
        }
    }
}

impl LatencyHistogram {
    /// Returns the responses recorded between `earlier` and `self`, two snapshots of the
    /// same endpoint. When any count in `self` is lower than in `earlier`, the endpoint
    /// was replaced by a new one whose counts started from zero, so this returns `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        let went_down = self.sum_micros < earlier.sum_micros
            || self.counts.len() != earlier.counts.len()
            || self
                .counts
                .iter()
                .zip(&earlier.counts)
                .any(|(now, before)| now < before);
        if went_down {
            return self.clone();
        }

        LatencyHistogram {
            counts: self
                .counts
                .iter()
                .zip(&earlier.counts)
                .map(|(now, before)| now - before)
                .collect(),
            sum_micros: self.sum_micros - earlier.sum_micros,
        }
    }

    /// Adds the responses of `other`, such as another endpoint of the same deployment.
    pub fn merge(&mut self, other: &Self) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (total, count) in self.counts.iter_mut().zip(&other.counts) {
            *total = total.saturating_add(*count);
        }
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
    }

    /// Returns the number of recorded responses.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Returns the mean response time in microseconds, or `None` when nothing was recorded.
    pub fn mean_micros(&self) -> Option<f64> {
        let count = self.count();
        (count > 0).then(|| self.sum_micros as f64 / count as f64)
    }

    /// Returns the response time in microseconds below which a fraction `q` of the
    /// responses fall, interpolated linearly within the bucket that contains it, or `None`
    /// when nothing was recorded. `q` is clamped to 0..=1. In the overflow bucket, which
    /// has no upper bound, this returns the bucket's lower bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 || q.is_nan() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;

        let mut below = 0u64;
        for (index, &in_bucket) in self.counts.iter().enumerate() {
            if in_bucket == 0 || ((below + in_bucket) as f64) < rank {
                below += in_bucket;
                continue;
            }
            let (lower, upper) = bucket_bounds_micros(index);
            if upper.is_infinite() {
                return Some(lower);
            }
            let fraction = ((rank - below as f64) / in_bucket as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * fraction);
        }
        // Unreachable with a non-zero count, because the last non-empty bucket reaches `count`.
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram_of(micros: &[u64]) -> LatencyHistogram {
        let live = AtomicHistogram::default();
        for &value in micros {
            live.record(Duration::from_micros(value));
        }
        live.snapshot()
    }

    #[test]
    fn bucket_index_follows_bounds() {
        for index in 1..BUCKET_COUNT - 1 {
            let (lower, upper) = bucket_bounds_micros(index);
            let middle = (lower + upper) / 2.0;
            assert_eq!(bucket_index(middle), index, "middle of bucket {index}");
        }
        assert_eq!(bucket_index(0.0), 0);
        assert_eq!(bucket_index(0.5), 0);
        assert_eq!(bucket_index(1.0), 1);
        assert_eq!(bucket_index(1e12), BUCKET_COUNT - 1);
    }

    #[test]
    fn buckets_reach_past_one_hundred_seconds() {
        let (lower, upper) = bucket_bounds_micros(BUCKET_COUNT - 1);
        assert!(lower > 100e6, "overflow starts at {lower} µs");
        assert!(upper.is_infinite());
    }

    #[test]
    fn empty_histogram_has_no_mean_or_quantile() {
        let empty = LatencyHistogram::default();

        assert_eq!(empty.count(), 0);
        assert_eq!(empty.mean_micros(), None);
        assert_eq!(empty.quantile(0.95), None);
    }

    #[test]
    fn mean_uses_sum_of_micros() {
        let histogram = histogram_of(&[100, 200, 600]);

        assert_eq!(histogram.count(), 3);
        assert_eq!(histogram.sum_micros, 900);
        assert_eq!(histogram.mean_micros(), Some(300.0));
    }

    #[test]
    fn quantile_within_bucket_width() {
        let values: Vec<u64> = (1..=1000).collect();
        let histogram = histogram_of(&values);

        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let estimate = histogram.quantile(q).expect("histogram is not empty");
            let error = (estimate - exact).abs() / exact;
            assert!(error < 0.19, "q{q}: estimate {estimate}, exact {exact}");
        }
    }

    #[test]
    fn quantile_of_one_value_stays_in_its_bucket() {
        let histogram = histogram_of(&[5000]);
        let index = bucket_index(5000.0);
        let (lower, upper) = bucket_bounds_micros(index);

        for q in [0.0, 0.5, 0.95, 1.0] {
            let estimate = histogram.quantile(q).expect("histogram is not empty");
            assert!(estimate >= lower, "q{q}: {estimate} below {lower}");
            assert!(estimate <= upper, "q{q}: {estimate} above {upper}");
        }
    }

    #[test]
    fn quantile_in_overflow_returns_lower_bound() {
        let histogram = histogram_of(&[200_000_000]);
        let (lower, _) = bucket_bounds_micros(BUCKET_COUNT - 1);

        assert_eq!(histogram.quantile(0.5), Some(lower));
    }

    #[test]
    fn quantile_clamps_q() {
        let histogram = histogram_of(&[10, 20]);

        assert_eq!(histogram.quantile(-1.0), histogram.quantile(0.0));
        assert_eq!(histogram.quantile(7.0), histogram.quantile(1.0));
        assert_eq!(histogram.quantile(f64::NAN), None);
    }

    #[test]
    fn since_subtracts_earlier_snapshot() {
        let live = AtomicHistogram::default();
        live.record(Duration::from_micros(100));
        let earlier = live.snapshot();
        live.record(Duration::from_micros(3000));
        live.record(Duration::from_micros(3000));

        let delta = live.snapshot().since(&earlier);

        assert_eq!(delta.count(), 2);
        assert_eq!(delta.sum_micros, 6000);
        assert_eq!(delta.mean_micros(), Some(3000.0));
    }

    #[test]
    fn since_returns_self_after_replacement() {
        let earlier = histogram_of(&[100, 100, 100]);
        let replaced = histogram_of(&[5000]);

        assert_eq!(replaced.since(&earlier), replaced);
    }
}
