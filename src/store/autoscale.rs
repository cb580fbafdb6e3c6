//! The autoscaler's decisions, keyed by deployment id and the time of the
//! evaluation, so that a prefix scan lists one deployment's in order.
//!
//! Each deployment keeps its newest [`DECISIONS_KEPT`]: at the default
//! 15 s period that is a little over four hours, enough to explain what
//! an operator sees on the dashboard's charts.

use crate::autoscale::Decision;

use super::{decode, encode, keys, storage, Store, StoreError, AUTOSCALE_DECISIONS};

/// How many decisions each deployment keeps.
pub const DECISIONS_KEPT: usize = 1000;

impl Store {
    /// Stores one decision and drops the oldest beyond [`DECISIONS_KEPT`].
    pub fn put_autoscale_decision(
        &self,
        deployment_id: &str,
        decision: &Decision,
    ) -> Result<(), StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let key = keys::numbered(deployment_id, decision.at_ms);
        let value = encode(AUTOSCALE_DECISIONS, &key, decision)?;
        self.autoscale_decisions
            .insert(key, value)
            .map_err(storage(AUTOSCALE_DECISIONS))?;
        self.trim_decisions(deployment_id)
    }

    fn trim_decisions(&self, deployment_id: &str) -> Result<(), StoreError> {
        let prefix = keys::prefix(deployment_id);
        let count = self.autoscale_decisions.scan_prefix(&prefix).count();
        let excess = count.saturating_sub(DECISIONS_KEPT);
        for item in self.autoscale_decisions.scan_prefix(&prefix).take(excess) {
            let (key, _) = item.map_err(storage(AUTOSCALE_DECISIONS))?;
            self.autoscale_decisions
                .remove(key)
                .map_err(storage(AUTOSCALE_DECISIONS))?;
        }
        Ok(())
    }

    /// Returns up to `limit` of a deployment's newest decisions, newest
    /// first. A record that cannot be read is skipped and logged, so one
    /// damaged entry never hides the others.
    pub fn autoscale_decisions(
        &self,
        deployment_id: &str,
        limit: usize,
    ) -> Result<Vec<Decision>, StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let mut decisions = Vec::new();
        for item in self
            .autoscale_decisions
            .scan_prefix(keys::prefix(deployment_id))
            .rev()
            .take(limit)
        {
            let (key, value) = item.map_err(storage(AUTOSCALE_DECISIONS))?;
            match decode(AUTOSCALE_DECISIONS, &key, &value) {
                Ok(decision) => decisions.push(decision),
                Err(error) => tracing::warn!(%error, "skipping an unreadable autoscaling decision"),
            }
        }
        Ok(decisions)
    }
}
