//! Metrics and alerts: reading process usage from /proc, time series
//! arithmetic, the Prometheus text format, counter rates, and the alert
//! rule evaluator.
//!
//! NOTE: the exposition parser and the counter rates are not wired into the
//! agent yet, so `monitoring.scrape` is validated but does nothing.

pub mod alerts;
pub mod collect;
pub mod exposition;
pub mod rate;
pub mod series;
