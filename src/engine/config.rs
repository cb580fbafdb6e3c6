//! The engine's side of environment configs and templates: their verbs,
//! each recorded as an event, and the deploy-time layering of a spec.
//!
//! A deploy builds `env` from four layers, lowest precedence first: the
//! environment's config, the template chain (parent before child), the
//! manifest's `env`, and `--set env.KEY=VALUE` (applied to the manifest
//! text, so it replaces the manifest's value). Then `${ENVIRONMENT}` and
//! `--set var.NAME=VALUE` variables are replaced. The revision stores this
//! result, so a rollback reproduces the config and template values of its
//! time, while `${SECRET:name}` stays a reference that each replica start
//! resolves to the current value.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::{Caller, Engine, EngineError};
use crate::config::environments::{built_in_environments, change_config, check_environment_name};
use crate::config::render::secret_references;
use crate::config::templates::{
    apply_chain, built_in_templates, check_template_name, merged_fields, parse_template,
    resolve_chain, TemplateSpec,
};
use crate::config::{interpolate, mask_secrets, ConfigError, Variables};
use crate::logs::MASK;
use crate::manifest::{closest, dns_label_problem, Manifest, Override};
use crate::model::{
    DeploymentStatus, EnvironmentConfig, EnvironmentView, RenderedTemplate, TemplateRecord,
    TemplateView,
};

/// The behaviour of `put_template` when a template of the same name exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateWrite {
    /// Fail if it exists.
    Create,
    /// Fail unless it exists.
    Update,
    CreateOrReplace,
}

/// The templates of a resolved chain with their names, nearest to the manifest first.
type Chain = Vec<(String, TemplateSpec)>;

impl Engine {
    /// Writes the built-in environments and templates into a store that
    /// never had them. A store seeded before keeps what its users changed.
    pub(super) fn seed_config(&self) -> Result<(), EngineError> {
        let now = OffsetDateTime::now_utc();
        let templates: Vec<TemplateRecord> = built_in_templates()
            .into_iter()
            .map(|(name, source)| TemplateRecord {
                name: name.to_owned(),
                source: source.to_owned(),
                created_at: now,
                updated_at: now,
            })
            .collect();
        if self
            .store
            .seed_config_defaults(&built_in_environments(now), &templates)?
        {
            tracing::info!("wrote the built-in environments and templates");
        }
        Ok(())
    }

    /// Lists every environment with the deployments in it.
    pub fn environments(&self) -> Result<Vec<EnvironmentView>, EngineError> {
        let scan = self.store.environments();
        for error in &scan.unreadable {
            tracing::error!(%error, "skipping an unreadable environment record");
        }
        let users = self.environment_users()?;
        Ok(scan
            .records
            .into_iter()
            .map(|environment| {
                let deployments = users.get(&environment.name).cloned().unwrap_or_default();
                EnvironmentView {
                    environment,
                    deployments,
                }
            })
            .collect())
    }

    /// Returns the environment `name` with the deployments in it.
    pub fn environment(&self, name: &str) -> Result<EnvironmentView, EngineError> {
        check_environment_name(name)?;
        let environment =
            self.store
                .environment(name)?
                .ok_or_else(|| ConfigError::EnvironmentNotFound {
                    name: name.to_owned(),
                })?;
        let deployments = self.environment_users()?.remove(name).unwrap_or_default();
        Ok(EnvironmentView {
            environment,
            deployments,
        })
    }

    /// Sets and removes config keys of environment `name`, creating it if
    /// it does not exist.
    pub async fn change_environment(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        unset: &[String],
        caller: &Caller,
    ) -> Result<EnvironmentView, EngineError> {
        let _guard = self.changes.lock().await;
        check_environment_name(name)?;
        let current = self.store.environment(name)?;
        let created = current.is_none();
        let changed = change_config(name, current, set, unset, OffsetDateTime::now_utc())?;
        self.store.put_environment(&changed)?;

        let verb = if created { "created" } else { "changed" };
        let message = format!(
            "environment {name} {verb}; keys set: {}; keys removed: {}",
            list_or_none(set.keys()),
            list_or_none(unset.iter())
        );
        self.record_agent_event(caller, "env-set", &message).await?;
        drop(_guard);
        self.environment(name)
    }

    /// Removes environment `name`, unless a deployment that is not
    /// undeployed is in it.
    pub async fn remove_environment(&self, name: &str, caller: &Caller) -> Result<(), EngineError> {
        let _guard = self.changes.lock().await;
        check_environment_name(name)?;
        let users = self.environment_users()?.remove(name).unwrap_or_default();
        if !users.is_empty() {
            return Err(ConfigError::EnvironmentInUse {
                name: name.to_owned(),
                deployments: users,
            }
            .into());
        }
        if !self.store.delete_environment(name)? {
            return Err(ConfigError::EnvironmentNotFound {
                name: name.to_owned(),
            }
            .into());
        }
        let message = format!("environment {name} removed");
        self.record_agent_event(caller, "env-rm", &message).await
    }

    /// Maps each environment to the names of its deployments that are not
    /// undeployed.
    fn environment_users(&self) -> Result<BTreeMap<String, Vec<String>>, EngineError> {
        let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for deployment in self.store.list_deployments()?.records {
            if self.view(&deployment).status == DeploymentStatus::Undeployed {
                continue;
            }
            users
                .entry(deployment.environment.clone())
                .or_default()
                .push(deployment.name);
        }
        Ok(users)
    }

    /// Returns the config of environment `name`, or an error that lists
    /// the environments there are and how to create one.
    fn require_environment(&self, name: &str) -> Result<EnvironmentConfig, EngineError> {
        if let Some(environment) = self.store.environment(name)? {
            return Ok(environment);
        }
        let known: Vec<String> = self
            .store
            .environments()
            .records
            .into_iter()
            .map(|environment| environment.name)
            .collect();
        let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
        let suggestion = closest(name, &candidates).map(str::to_owned);
        Err(ConfigError::UnknownEnvironment {
            name: name.to_owned(),
            known,
            suggestion,
        }
        .into())
    }

    /// Lists every template.
    pub fn templates(&self) -> Result<Vec<TemplateView>, EngineError> {
        let scan = self.store.templates();
        for error in &scan.unreadable {
            tracing::error!(%error, "skipping an unreadable template record");
        }
        Ok(scan.records.into_iter().map(template_view).collect())
    }

    /// Returns template `name`.
    pub fn template(&self, name: &str) -> Result<TemplateView, EngineError> {
        check_template_name(name)?;
        let record = self
            .store
            .template(name)?
            .ok_or_else(|| self.template_not_found(name, None))?;
        Ok(template_view(record))
    }

    /// Stores template `name` from its YAML text after checking it, its
    /// parent and that it closes no cycle. Returns the template and whether
    /// it was created.
    pub async fn put_template(
        &self,
        name: &str,
        source: &str,
        mode: TemplateWrite,
        caller: &Caller,
    ) -> Result<(TemplateView, bool), EngineError> {
        let _guard = self.changes.lock().await;
        check_template_name(name)?;
        let existing = self.store.template(name)?;
        match (mode, &existing) {
            (TemplateWrite::Create, Some(_)) => {
                return Err(ConfigError::TemplateExists {
                    name: name.to_owned(),
                }
                .into())
            }
            (TemplateWrite::Update, None) => {
                return Err(self.template_not_found(name, None).into())
            }
            _ => {}
        }
        let spec = parse_template(name, source)?;
        // Resolving the chain with the new text in place finds a missing
        // parent and any cycle that the new text would close.
        resolve_chain(name, |wanted, referenced_by| {
            if wanted == name {
                Ok(spec.clone())
            } else {
                self.load_template(wanted, referenced_by)
            }
        })?;

        let now = OffsetDateTime::now_utc();
        let record = TemplateRecord {
            name: name.to_owned(),
            source: source.to_owned(),
            created_at: existing.as_ref().map_or(now, |record| record.created_at),
            updated_at: now,
        };
        self.store.put_template(&record)?;
        let created = existing.is_none();
        let (action, verb) = if created {
            ("template-create", "created")
        } else {
            ("template-update", "updated")
        };
        let message = format!("template {name} {verb}");
        self.record_agent_event(caller, action, &message).await?;
        Ok((template_view(record), created))
    }

    /// Removes template `name`, unless another template extends it.
    /// Revisions deployed from it keep their rendered spec.
    pub async fn remove_template(&self, name: &str, caller: &Caller) -> Result<(), EngineError> {
        let _guard = self.changes.lock().await;
        check_template_name(name)?;
        if self.store.template(name)?.is_none() {
            return Err(self.template_not_found(name, None).into());
        }
        let children: Vec<String> = self
            .templates()?
            .into_iter()
            .filter(|view| view.parent.as_deref() == Some(name))
            .map(|view| view.name)
            .collect();
        if !children.is_empty() {
            return Err(ConfigError::TemplateInUse {
                name: name.to_owned(),
                children,
            }
            .into());
        }
        self.store.delete_template(name)?;
        let message = format!("template {name} removed");
        self.record_agent_event(caller, "template-rm", &message)
            .await
    }

    /// Renders template `name` for `environment` as a deploy would, with
    /// `--set env.KEY=VALUE` and `--set var.NAME=VALUE` applied, and masks
    /// every secret reference.
    pub fn render_template(
        &self,
        name: &str,
        environment: &str,
        sets: &[String],
    ) -> Result<RenderedTemplate, EngineError> {
        check_template_name(name)?;
        check_environment_name(environment)?;
        let (overrides, vars) = super::split_sets(sets)?;
        let set_env = env_overrides(&overrides)?;
        let config = self.require_environment(environment)?;
        let chain = self.template_chain(name)?;

        let spec = merged_fields(&chain);
        let variables = Variables {
            environment: environment.to_owned(),
            vars,
        };
        let layers = EnvLayers {
            config: &config,
            chain: &chain,
            manifest: &set_env,
        };
        let env = layers.render(&variables)?;
        let secrets: Vec<String> = secret_references(&env)?.into_iter().collect();
        let missing_secrets = self.vault.missing(&secrets)?;
        let mut masked = BTreeMap::new();
        for (key, value) in &env {
            masked.insert(
                key.clone(),
                mask_secrets(&format!("env.{key}"), value, MASK)?,
            );
        }
        Ok(RenderedTemplate {
            template: name.to_owned(),
            environment: environment.to_owned(),
            env: masked,
            ports: spec.ports,
            health_check: spec.health_check,
            liveness_check: spec.liveness_check,
            resources: spec.resources,
            monitoring: spec.monitoring,
            secrets,
            missing_secrets,
        })
    }

    /// Merges the environment config and the template chain into `spec`
    /// and replaces its placeholders. A spec whose environment or template
    /// name is malformed is left alone, for validation to report with the
    /// line and column.
    pub(super) fn apply_config(
        &self,
        spec: &mut Manifest,
        vars: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        if dns_label_problem(&spec.environment).is_some() {
            return Ok(());
        }
        let config = self.require_environment(&spec.environment)?;
        let chain = match spec.template.as_deref() {
            Some(name) if dns_label_problem(name).is_none() => self.template_chain(name)?,
            Some(name) if !name.trim().is_empty() => {
                return Err(check_template_name(name).err().map_or_else(
                    || self.template_not_found(name, None).into(),
                    EngineError::from,
                ))
            }
            _ => Vec::new(),
        };
        apply_chain(spec, &chain);
        let variables = Variables {
            environment: spec.environment.clone(),
            vars,
        };
        let layers = EnvLayers {
            config: &config,
            chain: &chain,
            manifest: &spec.env,
        };
        spec.env = layers.render(&variables)?;
        Ok(())
    }

    /// Replaces the placeholders of a spec whose layers were merged before,
    /// such as the current revision's for a redeploy without a manifest.
    /// Interpolation leaves an already rendered value unchanged.
    pub(super) fn interpolate_env(
        &self,
        spec: &mut Manifest,
        vars: BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let variables = Variables {
            environment: spec.environment.clone(),
            vars,
        };
        for (key, value) in spec.env.iter_mut() {
            *value = interpolate(&format!("env.{key}"), value, &variables)?;
        }
        Ok(())
    }

    /// Checks that the environment of a spec about to roll out exists.
    pub(super) fn check_environment(&self, spec: &Manifest) -> Result<(), EngineError> {
        self.require_environment(&spec.environment).map(|_| ())
    }

    fn template_chain(&self, name: &str) -> Result<Chain, EngineError> {
        Ok(resolve_chain(name, |wanted, referenced_by| {
            self.load_template(wanted, referenced_by)
        })?)
    }

    fn load_template(
        &self,
        name: &str,
        referenced_by: Option<&str>,
    ) -> Result<TemplateSpec, ConfigError> {
        let record = self
            .store
            .template(name)
            .map_err(|error| {
                tracing::error!(%error, template = name, "reading a template failed");
                self.template_not_found(name, referenced_by)
            })?
            .ok_or_else(|| self.template_not_found(name, referenced_by))?;
        parse_template(name, &record.source)
    }

    fn template_not_found(&self, name: &str, referenced_by: Option<&str>) -> ConfigError {
        let known: Vec<String> = self
            .store
            .templates()
            .records
            .into_iter()
            .map(|record| record.name)
            .collect();
        let candidates: Vec<&str> = known.iter().map(String::as_str).collect();
        ConfigError::TemplateNotFound {
            name: name.to_owned(),
            referenced_by: referenced_by.map(str::to_owned),
            suggestion: closest(name, &candidates).map(str::to_owned),
        }
    }
}

/// The sources of a deploy's `env`, lowest precedence first.
struct EnvLayers<'a> {
    config: &'a EnvironmentConfig,
    chain: &'a [(String, TemplateSpec)],
    /// The manifest's `env` after `--set env.KEY=VALUE`.
    manifest: &'a BTreeMap<String, String>,
}

impl EnvLayers<'_> {
    /// Merges the layers and interpolates every value. Errors name the key
    /// and the layer its value came from.
    fn render(&self, variables: &Variables) -> Result<BTreeMap<String, String>, EngineError> {
        let mut merged: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (key, value) in &self.config.config {
            let source = format!(" (from environment {})", self.config.name);
            merged.insert(key.clone(), (value.clone(), source));
        }
        for (name, template) in self.chain.iter().rev() {
            for (key, value) in &template.env {
                let source = format!(" (from template {name})");
                merged.insert(key.clone(), (value.clone(), source));
            }
        }
        for (key, value) in self.manifest {
            merged.insert(key.clone(), (value.clone(), String::new()));
        }

        let mut env = BTreeMap::new();
        for (key, (value, source)) in merged {
            let field = format!("env.{key}{source}");
            let rendered = interpolate(&field, &value, variables)?;
            env.insert(key, rendered);
        }
        Ok(env)
    }
}

/// Picks `env.KEY=VALUE` out of the overrides of `template render`, which
/// takes no other manifest fields.
fn env_overrides(overrides: &[Override]) -> Result<BTreeMap<String, String>, EngineError> {
    let mut env = BTreeMap::new();
    for item in overrides {
        let key = item
            .path
            .strip_prefix("env.")
            .filter(|key| !key.contains(['.', '[']));
        let Some(key) = key else {
            return Err(EngineError::InvalidOverride {
                value: format!("{}={}", item.path, item.value),
                message: "template render takes only --set env.KEY=VALUE and \
                          --set var.NAME=VALUE"
                    .to_owned(),
            });
        };
        env.insert(key.to_owned(), item.value.clone());
    }
    Ok(env)
}

fn template_view(record: TemplateRecord) -> TemplateView {
    let spec = parse_template(&record.name, &record.source).ok();
    TemplateView {
        description: spec.as_ref().and_then(|spec| spec.description.clone()),
        parent: spec.and_then(|spec| spec.template),
        name: record.name,
        source: record.source,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

fn list_or_none<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    let keys: Vec<&str> = keys.map(String::as_str).collect();
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.join(", ")
    }
}
