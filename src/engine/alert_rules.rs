//! Alert rules added through the API, beside those of the manifest.
//!
//! API rules belong to the deployment, not to a revision, so a redeploy or
//! rollback keeps them. A manifest rule and an API rule never share a name
//! through the API: a name that the current manifest uses can be neither
//! created nor deleted there. If a later manifest adds a rule with the name
//! of an API rule, the manifest's rule is evaluated and the API rule is
//! listed as inactive.

use super::{Caller, Engine, EngineError};
use crate::manifest::{validate_alert_rule, AlertRuleSpec};
use crate::model::{AlertRuleSource, AlertRuleView, Deployment, EventOutcome};
use crate::monitor::alerts::{AlertRule, Condition};

/// A rejected change of an API alert rule.
#[derive(Debug, thiserror::Error)]
pub enum AlertRuleError {
    #[error(
        "rule {rule:?} comes from the manifest of {deployment}; change the manifest and deploy it"
    )]
    FromManifest { rule: String, deployment: String },
    #[error("{deployment} already has an alert rule named {rule:?}; pass --replace to change it (over the API, send the PUT without If-None-Match), or choose another name")]
    Exists { rule: String, deployment: String },
    #[error("{deployment} has no alert rule named {rule:?}; list them with `shipdeck alerts rules {name}`")]
    NotFound {
        rule: String,
        deployment: String,
        name: String,
    },
    #[error("invalid alert rule {rule:?}: {}{message}", field_prefix(.field))]
    Invalid {
        rule: String,
        field: String,
        message: String,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

/// Behaviour of `put_alert_rule` when a rule of the same name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with [`AlertRuleError::Exists`].
    CreateOnly,
    /// Replace it.
    CreateOrReplace,
}

impl Engine {
    /// Lists the rules of a deployment: those of its current revision's
    /// manifest first, then those added through the API, each by name.
    pub fn alert_rules(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<Vec<AlertRuleView>, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let manifest = self.manifest_rules(&deployment.id, deployment.revision)?;
        let stored = self.stored_rules(&deployment.id)?;
        let view = |source, active, rule| AlertRuleView {
            deployment: deployment.name.clone(),
            environment: deployment.environment.clone(),
            source,
            active,
            rule,
        };

        let mut views: Vec<AlertRuleView> = Vec::new();
        for rule in &manifest {
            views.push(view(AlertRuleSource::Manifest, true, rule.clone()));
        }
        for rule in stored {
            let shadowed = manifest.iter().any(|own| own.name == rule.name);
            views.push(view(AlertRuleSource::Api, !shadowed, rule));
        }
        Ok(views)
    }

    /// Checks and stores an API rule of a deployment. Returns its view and
    /// whether it was created (rather than replaced).
    pub async fn put_alert_rule(
        &self,
        name: &str,
        environment: Option<&str>,
        rule: AlertRuleSpec,
        mode: PutMode,
        caller: &Caller,
    ) -> Result<(AlertRuleView, bool), EngineError> {
        // Serialised with deploys, so the manifest checked below stays current.
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        self.check_not_manifest_rule(&deployment, &rule.name)?;
        self.check_rule(&deployment, &rule)?;

        let exists = self
            .stored_rules(&deployment.id)?
            .iter()
            .any(|existing| existing.name == rule.name);
        if exists && mode == PutMode::CreateOnly {
            return Err(AlertRuleError::Exists {
                rule: rule.name,
                deployment: deployment.key().to_string(),
            }
            .into());
        }

        self.store.put_alert_rule(&deployment.id, &rule)?;
        self.bump_rules_generation();
        let action = if exists {
            "alert-rule-replaced"
        } else {
            "alert-rule-added"
        };
        let message = describe_rule(&rule);
        self.record(caller, &deployment, action, EventOutcome::Ok, &message)
            .await?;
        let view = AlertRuleView {
            deployment: deployment.name.clone(),
            environment: deployment.environment.clone(),
            source: AlertRuleSource::Api,
            active: true,
            rule,
        };
        Ok((view, !exists))
    }

    /// Removes an API rule of a deployment, and its alert state.
    pub async fn remove_alert_rule(
        &self,
        name: &str,
        environment: Option<&str>,
        rule: &str,
        caller: &Caller,
    ) -> Result<(), EngineError> {
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        self.check_not_manifest_rule(&deployment, rule)?;
        let spec = self
            .store
            .alert_rules(&deployment.id)?
            .records
            .into_iter()
            .find(|spec| spec.name == rule);
        if !self.store.remove_alert_rule(&deployment.id, rule)? {
            return Err(AlertRuleError::NotFound {
                rule: rule.to_owned(),
                deployment: deployment.key().to_string(),
                name: deployment.name.clone(),
            }
            .into());
        }
        let removed = self.forget_alert_states(&deployment.id, |name| name != rule);
        let rules: Vec<AlertRule> = spec
            .iter()
            .filter_map(|spec| AlertRule::from_spec(spec).ok())
            .collect();
        super::metrics::announce_removed(
            self,
            &deployment,
            &rules,
            removed,
            "its rule was removed",
        );
        self.bump_rules_generation();
        self.record(
            caller,
            &deployment,
            "alert-rule-removed",
            EventOutcome::Ok,
            rule,
        )
        .await
    }

    /// Returns the rules to evaluate for one revision of a deployment: the
    /// manifest's, then the API rules whose names the manifest does not use.
    /// A store error is logged and leaves out the rules it hides, so that
    /// the other rules are still evaluated.
    pub(super) fn merged_alert_rules(
        &self,
        deployment_id: &str,
        revision: u64,
    ) -> Vec<AlertRuleSpec> {
        let mut rules = self
            .manifest_rules(deployment_id, revision)
            .unwrap_or_else(|error| {
                tracing::error!(deployment_id, revision, %error, "reading the manifest's alert rules failed");
                Vec::new()
            });
        let stored = self.stored_rules(deployment_id).unwrap_or_else(|error| {
            tracing::error!(deployment_id, %error, "reading the API alert rules failed");
            Vec::new()
        });
        for rule in stored {
            if !rules.iter().any(|own| own.name == rule.name) {
                rules.push(rule);
            }
        }
        rules
    }

    pub(super) fn manifest_rules(
        &self,
        deployment_id: &str,
        revision: u64,
    ) -> Result<Vec<AlertRuleSpec>, EngineError> {
        Ok(self
            .store
            .get_revision(deployment_id, revision)?
            .and_then(|revision| revision.spec.monitoring)
            .map(|monitoring| monitoring.alerts)
            .unwrap_or_default())
    }

    pub(super) fn stored_rules(
        &self,
        deployment_id: &str,
    ) -> Result<Vec<AlertRuleSpec>, EngineError> {
        let scan = self.store.alert_rules(deployment_id)?;
        for error in &scan.unreadable {
            tracing::error!(deployment_id, %error, "skipping an unreadable alert rule");
        }
        Ok(scan.records)
    }

    fn check_not_manifest_rule(
        &self,
        deployment: &Deployment,
        rule: &str,
    ) -> Result<(), EngineError> {
        let manifest = self.manifest_rules(&deployment.id, deployment.revision)?;
        if manifest.iter().any(|own| own.name == rule) {
            return Err(AlertRuleError::FromManifest {
                rule: rule.to_owned(),
                deployment: deployment.key().to_string(),
            }
            .into());
        }
        Ok(())
    }

    /// Applies the manifest's checks of `monitoring.alerts` to one rule, with
    /// the scrape setting of the deployment's current revision, and then
    /// the evaluator's own checks (such as a zero `repeatInterval`).
    fn check_rule(&self, deployment: &Deployment, rule: &AlertRuleSpec) -> Result<(), EngineError> {
        let monitoring = self
            .store
            .get_revision(&deployment.id, deployment.revision)?
            .and_then(|revision| revision.spec.monitoring);
        let invalid = |field: String, message: String| AlertRuleError::Invalid {
            rule: rule.name.clone(),
            field,
            message,
        };
        validate_alert_rule(rule, monitoring.as_ref())
            .map_err(|problem| invalid(problem.path, problem.message))?;
        AlertRule::from_spec(rule).map_err(|error| invalid(String::new(), error.to_string()))?;
        Ok(())
    }

    fn bump_rules_generation(&self) {
        let mut book = self.alert_book();
        book.rules_generation = book.rules_generation.wrapping_add(1);
    }
}

fn describe_rule(rule: &AlertRuleSpec) -> String {
    let condition = Condition::from(rule.condition);
    let mut text = format!(
        "{}: {} {condition} {}",
        rule.name, rule.metric, rule.threshold
    );
    if let Some(duration) = rule.for_duration {
        text.push_str(&format!(" for {duration}"));
    }
    text.push_str(&format!(
        ", severity {}",
        rule.severity.as_deref().unwrap_or("medium")
    ));
    if !rule.notifications.is_empty() {
        text.push_str(&format!(", to {}", rule.notifications.join(", ")));
    }
    text
}
