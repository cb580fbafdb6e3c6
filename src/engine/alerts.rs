//! The alert states of every deployment, their silences and
//! acknowledgements, shared by the metrics collector and the API.
//!
//! The book in memory is the working copy. Every change of a state (not
//! every evaluation) and every silence is also written to the store, and
//! [`Engine::load_alerts`] reads them back when the agent starts. So a
//! restart neither sends a firing notification again nor forgets a silence.

use std::collections::{HashMap, HashSet};
use std::sync::MutexGuard;

use time::OffsetDateTime;

use super::{Caller, Engine, EngineError};
use crate::model::Deployment;
use crate::monitor::alerts::{
    AlertRule, AlertState, AlertTransition, AlertView, Silence, SilenceTarget, SilenceView,
};

/// Maximum length of a silence: long enough for a maintenance window, short enough that
/// a mistyped unit (30d for 30m) does not mute paging for months.
const MAX_SILENCE: time::Duration = time::Duration::days(30);

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

/// Alert states by deployment id and rule name, and silences by deployment id.
#[derive(Default)]
pub(super) struct AlertBook {
    pub(super) states: HashMap<(String, String), AlertState>,
    pub(super) silences: HashMap<String, Vec<Silence>>,
    /// Bumped on every change of an API alert rule, so that the collector
    /// rebuilds the rule lists it caches.
    pub(super) rules_generation: u64,
}

impl AlertBook {
    /// Checks whether a silence mutes `rule` of `deployment_id` at `now`.
    pub(super) fn silenced(&self, deployment_id: &str, rule: &str, now: OffsetDateTime) -> bool {
        self.silenced_until(deployment_id, rule, now).is_some()
    }

    /// Returns the latest end among the silences that mute `rule` now.
    fn silenced_until(
        &self,
        deployment_id: &str,
        rule: &str,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        self.silences
            .get(deployment_id)?
            .iter()
            .filter(|silence| silence.covers(rule, now))
            .map(|silence| silence.until)
            .max()
    }
}

impl Engine {
    pub(super) fn alert_book(&self) -> MutexGuard<'_, AlertBook> {
        self.alerts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lists the alerts of one deployment, or of all, with their states.
    pub fn alerts(
        &self,
        name: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Vec<AlertView>, EngineError> {
        let only = name
            .map(|name| self.resolve(name, environment))
            .transpose()?;
        let deployments: HashMap<String, (String, String)> = self
            .all_snapshots()
            .into_iter()
            .map(|snapshot| {
                let deployment = snapshot.deployment;
                (deployment.id, (deployment.name, deployment.environment))
            })
            .collect();

        let now = OffsetDateTime::now_utc();
        let book = self.alert_book();
        let mut views: Vec<AlertView> = book
            .states
            .iter()
            .filter(|((id, _), _)| only.as_ref().is_none_or(|only| &only.id == id))
            .filter_map(|((id, rule), state)| {
                let (name, environment) = deployments.get(id)?.clone();
                Some(AlertView {
                    deployment: name,
                    environment,
                    rule: rule.clone(),
                    silenced: book.silenced(id, rule, now),
                    silenced_until: book.silenced_until(id, rule, now),
                    state: state.clone(),
                })
            })
            .collect();
        views.sort_by(|a, b| (&a.deployment, &a.rule).cmp(&(&b.deployment, &b.rule)));
        Ok(views)
    }

    /// Mutes notifications of one rule, or of the whole deployment, for
    /// `duration`. States still change while muted.
    pub fn silence(
        &self,
        name: &str,
        environment: Option<&str>,
        rule: Option<String>,
        until: OffsetDateTime,
        comment: &str,
        caller: &Caller,
    ) -> Result<Silence, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let now = OffsetDateTime::now_utc();
        if until - now > MAX_SILENCE {
            return Err(EngineError::Unsupported {
                field: "until".to_owned(),
                message: format!(
                    "a silence lasts at most {} days, and this one would end {}; silence for less, and silence again when it ends",
                    MAX_SILENCE.whole_days(),
                    rfc3339(until)
                ),
            });
        }
        if let Some(rule) = &rule {
            self.check_rule_exists(&deployment, rule)?;
        }
        let target = rule.map_or(SilenceTarget::Deployment, SilenceTarget::Rule);
        let silence =
            Silence::new(target, until, comment, &caller.user, now).map_err(alert_error)?;

        let mut book = self.alert_book();
        let silences = book.silences.entry(deployment.id.clone()).or_default();
        silences.retain(|existing| existing.until > now);
        silences.push(silence.clone());
        // Written under the lock, so that two silences added at once cannot
        // store their lists in the wrong order.
        let written = self.store.put_silences(&deployment.id, silences);
        drop(book);
        written?;
        self.store.flush()?;

        let what = match &silence.target {
            SilenceTarget::Rule(rule) => format!("rule {rule}"),
            SilenceTarget::Deployment => "every rule".to_owned(),
        };
        self.recorder.user_event(
            &deployment,
            &caller.user,
            "alert-silenced",
            true,
            &format!(
                "{what} silenced by {} until {} (silence {}): {comment}",
                caller.user,
                rfc3339(until),
                silence.id
            ),
        );
        Ok(silence)
    }

    /// Rejects a silence or acknowledgement of a rule the deployment does not
    /// have, since it would look like it works while muting nothing.
    fn check_rule_exists(&self, deployment: &Deployment, rule: &str) -> Result<(), EngineError> {
        let rules = self.merged_alert_rules(&deployment.id, deployment.revision);
        if rules.iter().any(|spec| spec.name == rule) {
            return Ok(());
        }
        let names: Vec<&str> = rules.iter().map(|spec| spec.name.as_str()).collect();
        let known = if names.is_empty() {
            "it has no alert rules".to_owned()
        } else {
            format!("its rules are {}", names.join(", "))
        };
        Err(EngineError::Unsupported {
            field: "rule".to_owned(),
            message: format!(
                "{} has no alert rule named {rule:?}; {known}",
                deployment.key()
            ),
        })
    }

    /// Lists the silences in force, of one deployment or of all.
    pub fn silences(
        &self,
        name: Option<&str>,
        environment: Option<&str>,
    ) -> Result<Vec<SilenceView>, EngineError> {
        let only = name
            .map(|name| self.resolve(name, environment))
            .transpose()?;
        let now = OffsetDateTime::now_utc();
        let book = self.alert_book();
        let mut views = Vec::new();
        for (id, silences) in &book.silences {
            if only.as_ref().is_some_and(|only| &only.id != id) {
                continue;
            }
            let Some(deployment) = self.store.get_deployment(id)? else {
                continue;
            };
            views.extend(
                silences
                    .iter()
                    .filter(|silence| silence.until > now)
                    .map(|silence| SilenceView {
                        deployment: deployment.name.clone(),
                        environment: deployment.environment.clone(),
                        silence: silence.clone(),
                    }),
            );
        }
        views.sort_by(|a, b| {
            (&a.deployment, a.silence.until).cmp(&(&b.deployment, b.silence.until))
        });
        Ok(views)
    }

    /// Ends a silence before its time.
    pub fn remove_silence(
        &self,
        name: &str,
        environment: Option<&str>,
        silence_id: &str,
        caller: &Caller,
    ) -> Result<(), EngineError> {
        let deployment = self.resolve(name, environment)?;
        let now = OffsetDateTime::now_utc();
        let mut book = self.alert_book();
        let silences = book.silences.entry(deployment.id.clone()).or_default();
        let found = silences
            .iter()
            .any(|silence| silence.id == silence_id && silence.until > now);
        silences.retain(|silence| silence.id != silence_id && silence.until > now);
        let written = self.store.put_silences(&deployment.id, silences);
        drop(book);
        written?;
        if !found {
            return Err(EngineError::Unsupported {
                field: "silence".to_owned(),
                message: format!(
                    "{} has no silence {silence_id:?} in force; list them with `shipdeck alerts silences {}`",
                    deployment.key(),
                    deployment.name
                ),
            });
        }
        self.store.flush()?;
        self.recorder.user_event(
            &deployment,
            &caller.user,
            "alert-unsilenced",
            true,
            &format!("silence {silence_id} ended early by {}", caller.user),
        );
        Ok(())
    }

    /// Acknowledges the firing alert of `rule`, which stops its reminders
    /// until it resolves.
    pub fn acknowledge(
        &self,
        name: &str,
        environment: Option<&str>,
        rule: &str,
        caller: &Caller,
    ) -> Result<(), EngineError> {
        let deployment = self.resolve(name, environment)?;
        let mut book = self.alert_book();
        let Some(state) = book
            .states
            .get_mut(&(deployment.id.clone(), rule.to_owned()))
        else {
            return Err(EngineError::Unsupported {
                field: "rule".to_owned(),
                message: format!(
                    "{name} has no alert from a rule named {rule:?}; list them with `shipdeck alerts ls {name}`"
                ),
            });
        };
        state
            .acknowledge(&caller.user, OffsetDateTime::now_utc())
            .map_err(alert_error)?;
        let written = self.store.put_alert_state(&deployment.id, rule, state);
        drop(book);
        written?;
        self.store.flush()?;
        self.recorder.user_event(
            &deployment,
            &caller.user,
            "alert-acknowledged",
            true,
            &format!("{rule} acknowledged by {}", caller.user),
        );
        Ok(())
    }
}

impl Engine {
    /// Reads the alert states and silences from the store into the book.
    ///
    /// States of deployments that are undeployed or gone are removed, and so
    /// are silences that have ended. The time of the latest sample of a
    /// pending or firing alert is set to now, because the agent being down
    /// is no evidence about the series. An old time would make the first
    /// evaluation after the restart resolve the alert as stale.
    pub(super) fn load_alerts(&self) -> Result<(), EngineError> {
        let now = OffsetDateTime::now_utc();
        let live: HashSet<String> = self
            .store
            .list_deployments()?
            .records
            .into_iter()
            .filter(|deployment| deployment.wants_replicas())
            .map(|deployment| deployment.id)
            .collect();

        let states = self.store.alert_states::<AlertState>()?;
        for error in &states.unreadable {
            tracing::error!(%error, "skipping an unreadable alert state");
        }
        let silences = self.store.silences::<Silence>()?;
        for error in &silences.unreadable {
            tracing::error!(%error, "skipping unreadable silences");
        }

        let mut book = self.alert_book();
        for stored in states.records {
            if !live.contains(&stored.deployment_id) {
                self.store
                    .remove_alert_state(&stored.deployment_id, &stored.rule)?;
                continue;
            }
            let state = with_last_sample(stored.state, now);
            book.states
                .insert((stored.deployment_id, stored.rule), state);
        }
        for (deployment_id, mut list) in silences.records {
            let before = list.len();
            list.retain(|silence| silence.until > now);
            let mut changed = list.len() != before;
            for silence in list.iter_mut().filter(|silence| silence.id.is_empty()) {
                silence.id = crate::monitor::alerts::new_silence_id();
                changed = true;
            }
            if changed {
                self.store.put_silences(&deployment_id, &list)?;
            }
            if !list.is_empty() {
                book.silences.insert(deployment_id, list);
            }
        }
        Ok(())
    }

    /// Applies one sample to the alert of `rule` and returns the transitions
    /// to notify. The state is written to the store only when it changed in
    /// more than the time of its latest sample.
    pub(super) fn evaluate_alert(
        &self,
        deployment_id: &str,
        rule: &AlertRule,
        value: Option<f64>,
        now: OffsetDateTime,
    ) -> Vec<(AlertTransition, Delivery)> {
        let mut book = self.alert_book();
        let silenced = book.silenced(deployment_id, &rule.name, now);
        let key = (deployment_id.to_owned(), rule.name.clone());
        let state = book.states.entry(key).or_default();
        let before = with_last_sample(state.clone(), OffsetDateTime::UNIX_EPOCH);
        let mut transitions: Vec<(AlertTransition, Delivery)> = state
            .evaluate(rule, value, now, silenced)
            .into_iter()
            .map(|transition| (transition, Delivery::Notify))
            .collect();
        if silenced {
            transitions.extend(silent_change(&before, state, value));
        }
        if with_last_sample(state.clone(), OffsetDateTime::UNIX_EPOCH) != before {
            if let Err(error) = self.store.put_alert_state(deployment_id, &rule.name, state) {
                tracing::error!(deployment_id, rule = %rule.name, %error, "saving an alert state failed");
            }
        }
        transitions
    }

    /// Removes the alert states of `deployment_id` whose rule `keep` rejects,
    /// from the book and the store, and returns them.
    pub(super) fn forget_alert_states(
        &self,
        deployment_id: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<(String, AlertState)> {
        let mut book = self.alert_book();
        let gone: Vec<String> = book
            .states
            .keys()
            .filter(|(id, rule)| id == deployment_id && !keep(rule))
            .map(|(_, rule)| rule.clone())
            .collect();
        let mut removed = Vec::new();
        for rule in gone {
            let state = book
                .states
                .remove(&(deployment_id.to_owned(), rule.clone()));
            if let Err(error) = self.store.remove_alert_state(deployment_id, &rule) {
                tracing::error!(deployment_id, rule, %error, "removing an alert state failed");
            }
            if let Some(state) = state {
                removed.push((rule, state));
            }
        }
        removed
    }

    /// Returns whether the supervisor of `deployment_id` is undeploying it
    /// or has undeployed it. Unlike a snapshot, this copies no replicas.
    pub(super) fn is_stopping(&self, deployment_id: &str) -> bool {
        self.supervisors_guard()
            .get(deployment_id)
            .is_some_and(|handle| !handle.snapshot.borrow().deployment.wants_replicas())
    }

    /// Returns the counter that changes whenever an API alert rule changes.
    pub(super) fn alert_rules_generation(&self) -> u64 {
        self.alert_book().rules_generation
    }
}

/// Returns `state` with the time of its latest sample set to `time`; states
/// without one are returned as they are.
fn with_last_sample(mut state: AlertState, time: OffsetDateTime) -> AlertState {
    match &mut state {
        AlertState::Pending { last_sample, .. } | AlertState::Firing { last_sample, .. } => {
            *last_sample = time;
        }
        AlertState::Inactive | AlertState::Resolved { .. } => {}
    }
    state
}

fn alert_error(error: crate::monitor::alerts::AlertError) -> EngineError {
    EngineError::Unsupported {
        field: "alert".to_owned(),
        message: error.to_string(),
    }
}

/// Whether a transition goes to the rule's channels or only into the
/// history, because a silence covers the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivery {
    Notify,
    Silenced,
}

/// Returns the firing or resolving that a silence kept from the
/// notifications, so that the history still has it.
fn silent_change(
    before: &AlertState,
    after: &AlertState,
    value: Option<f64>,
) -> Option<(AlertTransition, Delivery)> {
    let was_firing = matches!(before, AlertState::Firing { .. });
    let transition = match (was_firing, after) {
        (false, AlertState::Firing { since, .. }) => AlertTransition::Firing {
            since: *since,
            value: value.unwrap_or(f64::NAN),
        },
        (true, AlertState::Resolved { since, .. }) => AlertTransition::Resolved {
            since: *since,
            value,
        },
        _ => return None,
    };
    Some((transition, Delivery::Silenced))
}
