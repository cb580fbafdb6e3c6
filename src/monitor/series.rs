//! Time series arithmetic: rolling raw points up into coarser intervals, and
//! aligning points to the steps of a chart.

use std::time::Duration;

use crate::store::MetricPoint;

/// How long each resolution of a series is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesRetention {
    pub raw: Duration,
    pub minute: Duration,
}

impl Default for SeriesRetention {
    /// Raw points for a day, one-minute rollups for 30 days.
    fn default() -> Self {
        Self {
            raw: Duration::from_secs(24 * 3600),
            minute: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Milliseconds in one rollup interval of [`crate::store::Resolution::Minute`].
pub const MINUTE_MS: u64 = 60_000;

/// Merges `points` into one point per `interval_ms`, each starting at a
/// multiple of the interval. Non-finite values are left out, so one NaN
/// sample cannot poison an hour of averages. Returns the points in time
/// order.
pub fn rollup(points: &[MetricPoint], interval_ms: u64) -> Vec<MetricPoint> {
    let interval_ms = interval_ms.max(1);
    let mut merged: Vec<MetricPoint> = Vec::new();

    let mut sorted: Vec<&MetricPoint> = points
        .iter()
        .filter(|point| point.min.is_finite() && point.max.is_finite() && point.sum.is_finite())
        .collect();
    sorted.sort_by_key(|point| point.time_ms);

    for point in sorted {
        let start = point.time_ms - point.time_ms % interval_ms;
        match merged.last_mut() {
            Some(last) if last.time_ms == start => merge_into(last, point),
            _ => merged.push(MetricPoint {
                time_ms: start,
                ..*point
            }),
        }
    }
    merged
}

fn merge_into(target: &mut MetricPoint, point: &MetricPoint) {
    target.min = target.min.min(point.min);
    target.max = target.max.max(point.max);
    target.sum += point.sum;
    target.count = target.count.saturating_add(point.count);
}

/// One step of an aligned series: the average of the samples in the step,
/// or `None` where there were none (a gap, drawn as such).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlignedPoint {
    pub time_ms: u64,
    pub value: Option<f64>,
    /// Sum of the samples in the step, which for a per-interval count such
    /// as `requests_total` is the count over the whole step.
    pub sum: Option<f64>,
    /// Lowest and highest sample in the step, so a spike shows in a long
    /// window even when the average hides it.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Aligns `points` to steps of `step_ms` from `from_ms` up to `to_ms`, so
/// that charts of different series line up point for point.
pub fn align(points: &[MetricPoint], from_ms: u64, to_ms: u64, step_ms: u64) -> Vec<AlignedPoint> {
    let step_ms = step_ms.max(1);
    let first = from_ms - from_ms % step_ms;
    let steps = to_ms.saturating_sub(first).div_ceil(step_ms);
    let steps = usize::try_from(steps).unwrap_or(usize::MAX).min(MAX_STEPS);

    let mut steps_seen = vec![StepTotals::default(); steps];
    for point in points {
        if point.time_ms < first || point.time_ms >= to_ms || !point.sum.is_finite() {
            continue;
        }
        let index = usize::try_from((point.time_ms - first) / step_ms).unwrap_or(usize::MAX);
        if let Some(step) = steps_seen.get_mut(index) {
            step.add(point);
        }
    }

    steps_seen
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let seen = step.count > 0;
            AlignedPoint {
                time_ms: first + index as u64 * step_ms,
                value: seen.then(|| step.sum / step.count as f64),
                sum: seen.then_some(step.sum),
                min: seen.then_some(step.min),
                max: seen.then_some(step.max),
            }
        })
        .collect()
}

/// Samples of one step of an aligned series.
#[derive(Debug, Clone, Copy)]
struct StepTotals {
    sum: f64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for StepTotals {
    fn default() -> Self {
        Self {
            sum: 0.0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl StepTotals {
    fn add(&mut self, point: &MetricPoint) {
        self.sum += point.sum;
        self.count += u64::from(point.count);
        self.min = self.min.min(point.min);
        self.max = self.max.max(point.max);
    }
}

/// Maximum number of steps in one aligned query. A chart is a few hundred
/// columns wide, so this is plenty, and a careless step cannot make the
/// agent allocate without bound.
pub const MAX_STEPS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(time_ms: u64, value: f64) -> MetricPoint {
        MetricPoint::sample(time_ms, value)
    }

    #[test]
    fn rollup_merges_per_interval() {
        let points = [
            sample(60_500, 1.0),
            sample(1_000, 4.0),
            sample(59_999, 2.0),
            sample(61_000, 5.0),
        ];
        let rolled = rollup(&points, MINUTE_MS);
        assert_eq!(rolled.len(), 2);
        assert_eq!(rolled[0].time_ms, 0);
        assert_eq!(
            (rolled[0].min, rolled[0].max, rolled[0].count),
            (2.0, 4.0, 2)
        );
        assert_eq!(rolled[0].average(), 3.0);
        assert_eq!(rolled[1].time_ms, 60_000);
        assert_eq!(rolled[1].average(), 3.0);
    }

    #[test]
    fn rollup_skips_non_finite_values() {
        let rolled = rollup(
            &[
                sample(0, f64::NAN),
                sample(1, 2.0),
                sample(2, f64::INFINITY),
            ],
            MINUTE_MS,
        );
        assert_eq!(rolled.len(), 1);
        assert_eq!(rolled[0].count, 1);
        assert_eq!(rolled[0].average(), 2.0);
    }

    #[test]
    fn rollups_of_rollups_keep_counts() {
        let minute = rollup(
            &[sample(0, 1.0), sample(1_000, 3.0), sample(60_000, 5.0)],
            MINUTE_MS,
        );
        let hour = rollup(&minute, 3_600_000);
        assert_eq!(hour.len(), 1);
        assert_eq!(hour[0].count, 3);
        assert_eq!(hour[0].average(), 3.0);
    }

    #[test]
    fn align_marks_gaps_and_averages_steps() {
        let points = [
            sample(10_000, 1.0),
            sample(11_000, 3.0),
            sample(35_000, 7.0),
        ];
        let aligned = align(&points, 10_000, 40_000, 10_000);
        let values: Vec<Option<f64>> = aligned.iter().map(|point| point.value).collect();
        assert_eq!(values, vec![Some(2.0), None, Some(7.0)]);
        let times: Vec<u64> = aligned.iter().map(|point| point.time_ms).collect();
        assert_eq!(times, vec![10_000, 20_000, 30_000]);
    }

    #[test]
    fn align_starts_on_a_step_boundary() {
        let aligned = align(&[sample(12_000, 1.0)], 15_000, 30_000, 10_000);
        assert_eq!(aligned[0].time_ms, 10_000);
        assert_eq!(aligned[0].value, Some(1.0));
    }

    #[test]
    fn align_bounds_the_number_of_steps() {
        let aligned = align(&[], 0, u64::MAX, 1);
        assert_eq!(aligned.len(), MAX_STEPS);
        assert!(
            align(&[], 10, 5, 1).is_empty(),
            "an empty window has no steps"
        );
        assert_eq!(
            align(&[], 0, 10, 0).len(),
            10,
            "a zero step counts as one ms"
        );
    }

    #[test]
    fn empty_point_average_is_nan() {
        let empty = MetricPoint {
            count: 0,
            ..sample(0, 0.0)
        };
        assert!(empty.average().is_nan());
    }
}
