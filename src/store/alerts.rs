//! Alert rules added through the API, alert states and silences.
//!
//! Rules and states are keyed by deployment id, NUL, rule name, so that a
//! prefix scan lists one deployment's entries. Silences are one list per
//! deployment id. States and silences are generic here because their types
//! belong to the alert evaluator, which sits above the store.

use serde::{de::DeserializeOwned, Serialize};

use crate::manifest::AlertRuleSpec;

use super::{
    decode, encode, keys, storage, Scan, Store, StoreError, ALERT_RULES, ALERT_STATE, SILENCES,
};

/// One stored alert state with the deployment and rule it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlertState<T> {
    pub deployment_id: String,
    pub rule: String,
    pub state: T,
}

impl Store {
    /// Stores an API alert rule of a deployment, replacing one of the same
    /// name. The caller flushes before it acknowledges the change.
    pub fn put_alert_rule(
        &self,
        deployment_id: &str,
        rule: &AlertRuleSpec,
    ) -> Result<(), StoreError> {
        let key = rule_key(deployment_id, &rule.name)?;
        let value = encode(ALERT_RULES, &key, rule)?;
        self.alert_rules
            .insert(key, value)
            .map_err(storage(ALERT_RULES))?;
        Ok(())
    }

    /// Removes an API alert rule and its state, and returns whether the rule
    /// existed. The caller flushes before it acknowledges the change.
    pub fn remove_alert_rule(&self, deployment_id: &str, name: &str) -> Result<bool, StoreError> {
        let key = rule_key(deployment_id, name)?;
        let removed = self
            .alert_rules
            .remove(&key)
            .map_err(storage(ALERT_RULES))?;
        self.alert_state
            .remove(&key)
            .map_err(storage(ALERT_STATE))?;
        Ok(removed.is_some())
    }

    /// Returns the API alert rules of one deployment, by name.
    pub fn alert_rules(&self, deployment_id: &str) -> Result<Scan<AlertRuleSpec>, StoreError> {
        let mut scan = Scan::default();
        for item in self.alert_rules.scan_prefix(keys::prefix(deployment_id)) {
            let (key, value) = item.map_err(storage(ALERT_RULES))?;
            scan.push(decode(ALERT_RULES, &key, &value));
        }
        Ok(scan)
    }

    /// Stores the alert state of one rule. It is not flushed: sled writes it
    /// within half a second, and a graceful stop flushes.
    pub fn put_alert_state<T: Serialize>(
        &self,
        deployment_id: &str,
        rule: &str,
        state: &T,
    ) -> Result<(), StoreError> {
        let key = rule_key(deployment_id, rule)?;
        let value = encode(ALERT_STATE, &key, state)?;
        self.alert_state
            .insert(key, value)
            .map_err(storage(ALERT_STATE))?;
        Ok(())
    }

    /// Removes the alert state of one rule.
    pub fn remove_alert_state(&self, deployment_id: &str, rule: &str) -> Result<(), StoreError> {
        let key = rule_key(deployment_id, rule)?;
        self.alert_state.remove(key).map_err(storage(ALERT_STATE))?;
        Ok(())
    }

    /// Returns every stored alert state.
    pub fn alert_states<T: DeserializeOwned>(
        &self,
    ) -> Result<Scan<StoredAlertState<T>>, StoreError> {
        let mut scan = Scan::default();
        for item in self.alert_state.iter() {
            let (key, value) = item.map_err(storage(ALERT_STATE))?;
            let Some((deployment_id, rule)) = split_rule_key(&key) else {
                scan.push(Err(StoreError::MalformedKey {
                    tree: ALERT_STATE,
                    key: keys::describe(ALERT_STATE, &key),
                }));
                continue;
            };
            scan.push(
                decode(ALERT_STATE, &key, &value).map(|state| StoredAlertState {
                    deployment_id,
                    rule,
                    state,
                }),
            );
        }
        Ok(scan)
    }

    /// Replaces the silences of a deployment; an empty list removes the
    /// entry. The caller flushes before it acknowledges a user's silence.
    pub fn put_silences<T: Serialize>(
        &self,
        deployment_id: &str,
        silences: &[T],
    ) -> Result<(), StoreError> {
        keys::check_component("deployment id", deployment_id)?;
        let key = deployment_id.as_bytes();
        if silences.is_empty() {
            self.silences.remove(key).map_err(storage(SILENCES))?;
        } else {
            let value = encode(SILENCES, key, &silences)?;
            self.silences
                .insert(key, value)
                .map_err(storage(SILENCES))?;
        }
        Ok(())
    }

    /// Returns the silences of every deployment, by deployment id.
    pub fn silences<T: DeserializeOwned>(&self) -> Result<Scan<(String, Vec<T>)>, StoreError> {
        let mut scan = Scan::default();
        for item in self.silences.iter() {
            let (key, value) = item.map_err(storage(SILENCES))?;
            let id = String::from_utf8_lossy(&key).into_owned();
            scan.push(decode(SILENCES, &key, &value).map(|silences| (id, silences)));
        }
        Ok(scan)
    }
}

fn rule_key(deployment_id: &str, rule: &str) -> Result<Vec<u8>, StoreError> {
    keys::check_component("deployment id", deployment_id)?;
    keys::check_component("alert rule name", rule)?;
    let mut key = keys::prefix(deployment_id);
    key.extend_from_slice(rule.as_bytes());
    Ok(key)
}

fn split_rule_key(key: &[u8]) -> Option<(String, String)> {
    let separator = key.iter().position(|byte| *byte == 0)?;
    let id = std::str::from_utf8(&key[..separator]).ok()?;
    let rule = std::str::from_utf8(&key[separator + 1..]).ok()?;
    Some((id.to_owned(), rule.to_owned()))
}
