//! Metrics and alerts: reading process usage from /proc, time series
//! arithmetic, the Prometheus text format, counter rates, and the alert
//! rule evaluator.
//!
//! NOTE: the scrape, the rates and the alert evaluator are not wired into
//! the agent yet, so `monitoring.scrape` and `monitoring.alerts` are
//! validated but do nothing.

pub mod alerts;
pub mod collect;
pub mod exposition;
pub mod rate;
pub mod series;
