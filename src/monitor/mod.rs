//! Metrics and alerts: time series arithmetic, and later the collectors and
//! the alert evaluator.
//!
//! NOTE: nothing collects metrics yet; this module has the pieces that the
//! collectors will use.

pub mod collect;
pub mod series;
