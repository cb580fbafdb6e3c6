//! The `metrics` tree: time series of each deployment.
//!
//! A key is `deployment id, NUL, series name, NUL, resolution, time in
//! milliseconds`, with the time big-endian, so one range scan returns a
//! window of one series in time order. A value is a [`MetricPoint`]: the
//! minimum, maximum, sum and count of the samples it stands for. A raw point
//! has one sample; a rollup has every sample of its interval.

use super::{keys, storage, Change, Store, StoreError, METRICS};

/// The time resolution of a stored point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// One point per collection.
    Raw,
    /// One point per minute, rolled up from the raw points.
    Minute,
}

impl Resolution {
    fn code(self) -> u8 {
        match self {
            Resolution::Raw => 0,
            Resolution::Minute => 1,
        }
    }
}

/// One stored point: the aggregate of the samples in its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricPoint {
    /// Start of the interval, in milliseconds since the epoch.
    pub time_ms: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub count: u32,
}

impl MetricPoint {
    /// Returns a point of one sample.
    pub fn sample(time_ms: u64, value: f64) -> Self {
        Self {
            time_ms,
            min: value,
            max: value,
            sum: value,
            count: 1,
        }
    }

    pub fn average(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        self.sum / f64::from(self.count)
    }

    fn encode(&self) -> [u8; 28] {
        let mut out = [0u8; 28];
        out[0..8].copy_from_slice(&self.min.to_be_bytes());
        out[8..16].copy_from_slice(&self.max.to_be_bytes());
        out[16..24].copy_from_slice(&self.sum.to_be_bytes());
        out[24..28].copy_from_slice(&self.count.to_be_bytes());
        out
    }

    fn decode(time_ms: u64, bytes: &[u8]) -> Option<Self> {
        let float = |at: usize| -> Option<f64> {
            let array: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
            Some(f64::from_be_bytes(array))
        };
        let count: [u8; 4] = bytes.get(24..28)?.try_into().ok()?;
        Some(Self {
            time_ms,
            min: float(0)?,
            max: float(8)?,
            sum: float(16)?,
            count: u32::from_be_bytes(count),
        })
    }
}

/// Prefix of every key of one series at one resolution.
fn series_prefix(deployment_id: &str, series: &str, resolution: Resolution) -> Vec<u8> {
    let mut key = keys::prefix(deployment_id);
    key.extend_from_slice(series.as_bytes());
    key.push(0);
    key.push(resolution.code());
    key
}

fn point_key(prefix: &[u8], time_ms: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&time_ms.to_be_bytes());
    key
}

impl Store {
    /// Stores `points` of `series`, replacing points with the same time.
    pub fn put_metric_points(
        &self,
        deployment_id: &str,
        series: &str,
        resolution: Resolution,
        points: &[MetricPoint],
    ) -> Result<(), StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        keys::check_component("series name", series)?;
        let prefix = series_prefix(deployment_id, series, resolution);
        let mut batch = sled::Batch::default();
        for point in points {
            batch.insert(point_key(&prefix, point.time_ms), &point.encode()[..]);
        }
        self.metrics.apply_batch(batch).map_err(storage(METRICS))
    }

    /// Stores one raw sample of each series in `samples` at `time_ms`, in one
    /// write, since the collector writes every series of a deployment at once.
    pub fn put_metric_samples(
        &self,
        deployment_id: &str,
        time_ms: u64,
        samples: &[(&str, f64)],
    ) -> Result<(), StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let mut batch = sled::Batch::default();
        for (series, value) in samples {
            keys::check_component("series name", series)?;
            let prefix = series_prefix(deployment_id, series, Resolution::Raw);
            let point = MetricPoint::sample(time_ms, *value);
            batch.insert(point_key(&prefix, time_ms), &point.encode()[..]);
        }
        self.metrics.apply_batch(batch).map_err(storage(METRICS))?;
        self.announce(Change::Metrics {
            id: deployment_id.to_owned(),
        });
        Ok(())
    }

    /// Returns the points of `series` with times in `from_ms..to_ms`, oldest
    /// first. A point that cannot be decoded is left out with a warning.
    pub fn metric_points(
        &self,
        deployment_id: &str,
        series: &str,
        resolution: Resolution,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<MetricPoint>, StoreError> {
        let prefix = series_prefix(deployment_id, series, resolution);
        let range = point_key(&prefix, from_ms)..point_key(&prefix, to_ms);
        let mut points = Vec::new();
        for item in self.metrics.range(range) {
            let (key, value) = item.map_err(storage(METRICS))?;
            let time_ms = keys::trailing_number(&key).unwrap_or(0);
            match MetricPoint::decode(time_ms, &value) {
                Some(point) => points.push(point),
                None => tracing::warn!(
                    deployment_id,
                    series,
                    time_ms,
                    "skipped an unreadable metric point"
                ),
            }
        }
        Ok(points)
    }

    /// Removes the points of `series` older than `before_ms`. Returns how
    /// many were removed.
    pub fn remove_metric_points_before(
        &self,
        deployment_id: &str,
        series: &str,
        resolution: Resolution,
        before_ms: u64,
    ) -> Result<usize, StoreError> {
        let prefix = series_prefix(deployment_id, series, resolution);
        let range = point_key(&prefix, 0)..point_key(&prefix, before_ms);
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for item in self.metrics.range(range) {
            let (key, _) = item.map_err(storage(METRICS))?;
            batch.remove(key);
            removed += 1;
        }
        self.metrics.apply_batch(batch).map_err(storage(METRICS))?;
        Ok(removed)
    }

    /// Lists the names of the series stored for a deployment, in byte order.
    ///
    /// Seeks past each series instead of reading its points, so the cost is
    /// one short range read per series, whatever their length.
    pub fn metric_series(&self, deployment_id: &str) -> Result<Vec<String>, StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let prefix = keys::prefix(deployment_id);
        let mut names = Vec::new();
        let mut from = prefix.clone();
        loop {
            let next = self
                .metrics
                .range(from.clone()..)
                .next()
                .transpose()
                .map_err(storage(METRICS))?;
            let Some((key, _)) = next else {
                break;
            };
            let Some(rest) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let Some(end) = rest.iter().position(|byte| *byte == 0) else {
                break;
            };
            names.push(String::from_utf8_lossy(&rest[..end]).into_owned());

            // The smallest key after every key of this series: its name
            // followed by byte 1 instead of the NUL separator.
            from = prefix.clone();
            from.extend_from_slice(&rest[..end]);
            from.push(1);
        }
        Ok(names)
    }
}
