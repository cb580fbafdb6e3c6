//! The task that sends one-off requests that are not operations on a
//! deployment: reading a manifest for the editor, reading the secrets
//! list, and changing a secret.
//!
//! A secret's value goes into the request body and nowhere else: it is not
//! logged, and the action that reports the result names the secret only.

use tokio::sync::mpsc;

use super::action::{Action, Request, SecretChange, SecretsReadError};
use crate::api::client::{encode, Client, ClientError};
use crate::api::wire::SecretBody;
use crate::config::SecretInfo;
use crate::model::{DeploymentKey, ManifestSource};

/// The HTTP status the agent returns when its vault is locked.
const LOCKED: u16 = 423;

/// Sends queued requests one at a time, in order.
#[tracing::instrument(skip_all)]
pub(super) async fn run_requests(
    client: Client,
    mut queued: mpsc::UnboundedReceiver<Request>,
    actions: mpsc::Sender<Action>,
) {
    while let Some(request) = queued.recv().await {
        let action = match request {
            Request::LoadManifest(key) => load_manifest(&client, key).await,
            Request::ReadSecrets => Action::Secrets(read_secrets(&client).await),
            Request::ChangeSecret(change) => change_secret(&client, change).await,
        };
        if actions.send(action).await.is_err() {
            return;
        }
    }
}

async fn load_manifest(client: &Client, key: DeploymentKey) -> Action {
    let path = format!(
        "/v1/deployments/{}/manifest?env={}",
        encode(&key.name),
        encode(&key.environment)
    );
    let result = client
        .get::<ManifestSource>(&path)
        .await
        .map(Box::new)
        .map_err(|error| {
            tracing::warn!(%key, %error, "reading the manifest failed");
            error.to_string()
        });
    Action::ManifestLoaded { key, result }
}

async fn read_secrets(client: &Client) -> Result<Vec<SecretInfo>, SecretsReadError> {
    client
        .get::<Vec<SecretInfo>>("/v1/secrets")
        .await
        .map_err(|error| match error {
            ClientError::Api { status, message } if status == LOCKED => {
                SecretsReadError::Locked(message)
            }
            other => SecretsReadError::Failed(other.to_string()),
        })
}

async fn change_secret(client: &Client, change: SecretChange) -> Action {
    let name = change.name().to_owned();
    let path = format!("/v1/secrets/{}", encode(&name));
    let (deleted, result) = match change {
        SecretChange::Set { value, .. } => {
            let body = SecretBody { value };
            let result = client.put::<_, SecretInfo>(&path, &body).await.map(|_| ());
            (false, result)
        }
        SecretChange::Delete { .. } => (true, client.delete(&path).await),
    };
    match &result {
        Ok(()) => tracing::info!(secret = %name, deleted, "the agent changed the secret"),
        Err(error) => tracing::warn!(secret = %name, deleted, %error, "changing the secret failed"),
    }
    Action::SecretChanged {
        name,
        deleted,
        result: result.map_err(|error| error.to_string()),
    }
}
