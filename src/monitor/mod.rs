//! Metrics and alerts: reading process usage from /proc, time series
//! arithmetic, and the alert rule evaluator.
//!
//! NOTE: the alert evaluator is not wired into the agent yet, so rules in
//! `monitoring.alerts` are validated but never evaluated.

pub mod alerts;
pub mod collect;
pub mod series;
