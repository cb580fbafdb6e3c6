//! Metrics and alerts: reading process usage from /proc, time series
//! arithmetic, the Prometheus text format, counter rates, and the alert
//! rule evaluator.

pub mod alerts;
pub mod collect;
pub mod exposition;
pub mod rate;
pub mod scrape;
pub mod series;
