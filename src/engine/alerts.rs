//! The alert states of every deployment, their silences and
//! acknowledgements, shared by the metrics collector and the API.
//!
//! NOTE: states and silences live in the agent's memory, so an agent restart
//! starts every rule afresh and drops the silences.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Caller, Engine, EngineError};
use crate::monitor::alerts::{AlertState, AlertView, Silence, SilenceTarget};

/// Alert states by deployment id and rule name, and silences by deployment id.
#[derive(Default)]
pub(super) struct AlertBook {
    pub(super) states: HashMap<(String, String), AlertState>,
    pub(super) silences: HashMap<String, Vec<Silence>>,
}

impl AlertBook {
    /// Checks whether a silence mutes `rule` of `deployment_id` at `now`.
    pub(super) fn silenced(&self, deployment_id: &str, rule: &str, now: OffsetDateTime) -> bool {
        self.silences
            .get(deployment_id)
            .is_some_and(|silences| silences.iter().any(|silence| silence.covers(rule, now)))
    }
}

impl Engine {
    pub(super) fn alert_book(&self) -> MutexGuard<'_, AlertBook> {
        self.alerts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lists the alerts of one deployment, or of all, that have been
    /// evaluated since the agent started.
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
        duration: Duration,
        comment: &str,
        caller: &Caller,
    ) -> Result<Silence, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let now = OffsetDateTime::now_utc();
        let until = now + duration;
        let target = rule.map_or(SilenceTarget::Deployment, SilenceTarget::Rule);
        let silence =
            Silence::new(target, until, comment, &caller.user, now).map_err(alert_error)?;

        let mut book = self.alert_book();
        let silences = book.silences.entry(deployment.id.clone()).or_default();
        silences.retain(|existing| existing.until > now);
        silences.push(silence.clone());
        drop(book);

        let what = match &silence.target {
            SilenceTarget::Rule(rule) => format!("rule {rule}"),
            SilenceTarget::Deployment => "every rule".to_owned(),
        };
        self.recorder.agent_event(
            &deployment,
            "alert-silenced",
            true,
            &format!(
                "{what} silenced by {} until {until}: {comment}",
                caller.user
            ),
        );
        Ok(silence)
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
        drop(book);
        self.recorder.agent_event(
            &deployment,
            "alert-acknowledged",
            true,
            &format!("{rule} acknowledged by {}", caller.user),
        );
        Ok(())
    }
}

fn alert_error(error: crate::monitor::alerts::AlertError) -> EngineError {
    EngineError::Unsupported {
        field: "alert".to_owned(),
        message: error.to_string(),
    }
}
