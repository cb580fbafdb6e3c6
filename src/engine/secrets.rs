//! The engine's side of the secret vault: the secret verbs, each recorded
//! as an event that names the secret but never contains its value, and the
//! deploy-time check of a spec's secret references.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{Caller, Engine, EngineError};
use crate::config::{check_spec, render, RenderError, Rotation, SecretInfo, SecretValue, Vault};
use crate::manifest::Manifest;
use crate::model::EventOutcome;
use crate::store::NewEvent;

impl Engine {
    /// Rejects a spec whose secret references are malformed, appear in a
    /// command line, or name secrets that do not exist. One error lists
    /// every missing name.
    pub(super) fn check_secrets(&self, spec: &Manifest) -> Result<(), EngineError> {
        let names = check_spec(spec)?;
        let missing = self.vault.missing(&names)?;
        if !missing.is_empty() {
            return Err(RenderError::Missing { names: missing }.into());
        }
        Ok(())
    }

    /// Stores secret `name`, replacing its value if it exists.
    pub async fn set_secret(
        &self,
        name: &str,
        value: &SecretValue,
        caller: &Caller,
    ) -> Result<SecretInfo, EngineError> {
        let info = self.vault.set(name, value)?;
        let message = format!("secret {name} set");
        self.record_agent_event(caller, "secret-set", &message)
            .await?;
        Ok(info)
    }

    /// Lists secret names and update times.
    pub fn list_secrets(&self) -> Result<Vec<SecretInfo>, EngineError> {
        Ok(self.vault.list()?)
    }

    /// Returns the value of secret `name` and records who read it.
    pub async fn reveal_secret(
        &self,
        name: &str,
        caller: &Caller,
    ) -> Result<SecretValue, EngineError> {
        let value = self.vault.get(name)?;
        let message = format!("secret {name} revealed");
        self.record_agent_event(caller, "secret-reveal", &message)
            .await?;
        Ok(value)
    }

    /// Removes secret `name`. Running replicas keep the value they started
    /// with; a replica started later without it fails to start.
    pub async fn delete_secret(&self, name: &str, caller: &Caller) -> Result<(), EngineError> {
        self.vault.delete(name)?;
        let message = format!("secret {name} removed");
        self.record_agent_event(caller, "secret-rm", &message)
            .await?;
        Ok(())
    }

    /// Encrypts every secret again under a new master key. Key derivation
    /// from a passphrase takes about a second, so it runs off the async
    /// worker threads.
    pub async fn rotate_key(
        &self,
        replacement: Option<SecretValue>,
        caller: &Caller,
    ) -> Result<Rotation, EngineError> {
        let vault: Arc<Vault> = self.vault.clone();
        let rotated = tokio::task::spawn_blocking(move || vault.rotate(replacement.as_ref()))
            .await
            .map_err(|error| {
                tracing::error!(%error, "the key rotation task failed");
                EngineError::RotationAborted
            })?;
        let rotation = rotated?;
        let message = format!(
            "master key rotated to key id {}; {} secrets encrypted again",
            rotation.key_id, rotation.secrets
        );
        self.record_agent_event(caller, "vault-rotate-key", &message)
            .await?;
        Ok(rotation)
    }

    /// Returns the current values of the secrets that the current revision
    /// of deployment `deployment_id` refers to, for masking them in its
    /// captured output. A secret that no longer exists is left out.
    pub fn secret_values(&self, deployment_id: &str) -> Result<Vec<SecretValue>, EngineError> {
        let Some(deployment) = self.store.get_deployment(deployment_id)? else {
            return Ok(Vec::new());
        };
        let Some(revision) = self
            .store
            .get_revision(deployment_id, deployment.revision)?
        else {
            return Ok(Vec::new());
        };
        let names = render::secret_references(&revision.spec.env)?;
        let mut values = Vec::with_capacity(names.len());
        for name in &names {
            if let Some(value) = crate::config::SecretLookup::lookup(self.vault.as_ref(), name)? {
                values.push(value);
            }
        }
        Ok(values)
    }

    pub(super) async fn record_agent_event(
        &self,
        caller: &Caller,
        action: &str,
        message: &str,
    ) -> Result<(), EngineError> {
        self.store.append_event(NewEvent {
            time: OffsetDateTime::now_utc(),
            deployment: None,
            deployment_id: None,
            user: caller.user.clone(),
            action: action.to_owned(),
            outcome: EventOutcome::Ok,
            message: message.to_owned(),
        })?;
        self.store.flush_async().await?;
        Ok(())
    }
}
