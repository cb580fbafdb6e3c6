//! Exec credential plugins (`users[].user.exec` in kubeconfig), run by
//! shipdeck instead of by kube.
//!
//! kube-client runs the plugin with a blocking call, without a timeout,
//! and with the terminal's standard input unless `interactiveMode` is
//! `Never`. In an agent that runs in the background, a plugin waiting for
//! a login would hang every request. shipdeck runs it with standard input
//! closed, in its own process group (so reading the terminal stops it
//! instead of stealing input), and with a timeout; on timeout the whole
//! group is killed. The token goes into each request through
//! [`BearerLayer`], and a task runs the plugin again before the token expires.
//! A client certificate goes into the client's TLS configuration when it
//! connects.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::header::{HeaderValue, AUTHORIZATION};
use kube::config::{ExecConfig, ExecInteractiveMode};
use serde::Deserialize;
use time::OffsetDateTime;

use super::error::KubeError;
use crate::config::SecretValue;

/// Time a plugin may run before shipdeck gives up on it. Cloud plugins
/// that refresh a cached login finish in a few seconds.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// How long before a token's expiry the plugin runs again.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// How long to wait before retrying a failed refresh.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The most of a failing plugin's standard error an error message keeps.
const MAX_STDERR: usize = 2000;

/// A plugin of one kubeconfig user.
#[derive(Debug, Clone)]
pub struct ExecPlugin {
    config: ExecConfig,
    user: String,
    timeout: Duration,
}

/// The credential a plugin returned: a token, a client certificate, or both.
#[derive(Debug, Clone)]
pub struct Credential {
    pub token: Option<SecretValue>,
    pub identity: Option<ClientIdentity>,
    pub expires: Option<OffsetDateTime>,
}

/// A client certificate and its private key, both PEM, for mutual TLS.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub certificate_pem: String,
    pub key_pem: SecretValue,
}

#[derive(Deserialize)]
struct ExecCredential {
    status: Option<ExecCredentialStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredentialStatus {
    token: Option<String>,
    expiration_timestamp: Option<String>,
    client_certificate_data: Option<String>,
    client_key_data: Option<String>,
}

impl ExecPlugin {
    pub fn new(config: ExecConfig, user: &str, timeout: Duration) -> Self {
        ExecPlugin {
            config,
            user: user.to_owned(),
            timeout,
        }
    }

    fn command(&self) -> String {
        self.config.command.clone().unwrap_or_default()
    }

    /// Runs the plugin once and returns its credential.
    pub async fn run(&self) -> Result<Credential, KubeError> {
        let command = self
            .config
            .command
            .clone()
            .ok_or_else(|| KubeError::ExecNoCommand {
                user: self.user.clone(),
            })?;
        if self.config.interactive_mode == Some(ExecInteractiveMode::Always) {
            return Err(KubeError::ExecInteractive {
                command,
                user: self.user.clone(),
            });
        }

        let mut child = self.spawn(&command)?;
        let pid = child.id();
        let output = match tokio::time::timeout(self.timeout, wait(&mut child)).await {
            Ok(result) => result.map_err(|source| self.start_error(source))?,
            Err(_) => {
                kill_group(pid);
                return Err(KubeError::ExecTimedOut {
                    command,
                    user: self.user.clone(),
                    timeout: self.timeout,
                });
            }
        };
        if !output.status.success() {
            return Err(KubeError::ExecFailed {
                command,
                user: self.user.clone(),
                status: output.status.to_string(),
                stderr: tail(&String::from_utf8_lossy(&output.stderr)),
            });
        }
        self.parse(&output.stdout)
    }

    fn spawn(&self, command: &str) -> Result<tokio::process::Child, KubeError> {
        let mut process = tokio::process::Command::new(command);
        process
            .args(self.config.args.iter().flatten())
            .envs(plugin_env(self.config.env.as_deref()))
            .env("KUBERNETES_EXEC_INFO", self.exec_info())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in self.config.drop_env.iter().flatten() {
            process.env_remove(name);
        }
        process.spawn().map_err(|source| self.start_error(source))
    }

    fn start_error(&self, source: std::io::Error) -> KubeError {
        let hint = match &self.config.install_hint {
            Some(hint) if source.kind() == std::io::ErrorKind::NotFound => {
                format!("; {}", hint.trim())
            }
            _ => String::new(),
        };
        KubeError::ExecStart {
            command: self.command(),
            user: self.user.clone(),
            hint,
            source,
        }
    }

    /// The `ExecCredential` request a plugin reads from
    /// `KUBERNETES_EXEC_INFO`, saying that no terminal is available.
    fn exec_info(&self) -> String {
        let api_version = self
            .config
            .api_version
            .clone()
            .unwrap_or_else(|| "client.authentication.k8s.io/v1".to_owned());
        let mut spec = serde_json::json!({"interactive": false});
        if self.config.provide_cluster_info {
            if let Some(cluster) = &self.config.cluster {
                spec["cluster"] = serde_json::to_value(cluster).unwrap_or_default();
            }
        }
        serde_json::json!({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec})
            .to_string()
    }

    fn parse(&self, stdout: &[u8]) -> Result<Credential, KubeError> {
        let invalid = |reason: String| KubeError::ExecOutput {
            command: self.command(),
            user: self.user.clone(),
            reason,
        };
        let credential: ExecCredential = serde_json::from_slice(stdout)
            .map_err(|error| invalid(format!("expected an ExecCredential in JSON: {error}")))?;
        let status = credential
            .status
            .ok_or_else(|| invalid("it has no status".to_owned()))?;
        let token = status.token.filter(|token| !token.is_empty());
        let identity = match (status.client_certificate_data, status.client_key_data) {
            (Some(certificate_pem), Some(key_pem)) => Some(ClientIdentity {
                certificate_pem,
                key_pem: SecretValue::new(key_pem),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "it has status.clientCertificateData but no status.clientKeyData; the plugin must return both"
                        .to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "it has status.clientKeyData but no status.clientCertificateData; the plugin must return both"
                        .to_owned(),
                ))
            }
        };
        if token.is_none() && identity.is_none() {
            return Err(invalid(
                "it has neither status.token nor status.clientCertificateData with status.clientKeyData"
                    .to_owned(),
            ));
        }
        let expires = match status.expiration_timestamp {
            Some(text) => Some(
                OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                    .map_err(|error| {
                        invalid(format!(
                            "expirationTimestamp {text:?} is not RFC 3339: {error}"
                        ))
                    })?,
            ),
            None => None,
        };
        Ok(Credential {
            token: token.map(SecretValue::new),
            identity,
            expires,
        })
    }
}

/// Collects the exit status and both outputs; cancel-safe because the
/// child is killed on drop.
async fn wait(child: &mut tokio::process::Child) -> std::io::Result<std::process::Output> {
    use tokio::io::AsyncReadExt;

    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let read_out = async {
        if let Some(pipe) = out_pipe.as_mut() {
            pipe.read_to_end(&mut stdout).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let read_err = async {
        if let Some(pipe) = err_pipe.as_mut() {
            pipe.read_to_end(&mut stderr).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    let (status, out, err) = tokio::join!(child.wait(), read_out, read_err);
    out?;
    err?;
    Ok(std::process::Output {
        status: status?,
        stdout,
        stderr,
    })
}

/// Kills the plugin's process group, so that children it started go too.
fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    let group = nix::unistd::Pid::from_raw(pid);
    if let Err(error) = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL) {
        tracing::warn!(pid, %error, "failed to kill the exec credential plugin's process group");
    }
}

fn plugin_env(env: Option<&[HashMap<String, String>]>) -> Vec<(String, String)> {
    env.into_iter()
        .flatten()
        .filter_map(|pair| Some((pair.get("name")?.clone(), pair.get("value")?.clone())))
        .collect()
}

fn tail(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "no output on standard error".to_owned();
    }
    let start = text.len().saturating_sub(MAX_STDERR);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[start..].to_owned()
}

/// The current token, shared by a client's requests and the refresh task.
#[derive(Debug, Default)]
pub struct TokenCell {
    token: RwLock<Option<SecretValue>>,
}

impl TokenCell {
    pub fn new(token: SecretValue) -> Arc<Self> {
        Arc::new(TokenCell {
            token: RwLock::new(Some(token)),
        })
    }

    fn set(&self, token: SecretValue) {
        let mut slot = self
            .token
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(token);
    }

    fn header(&self) -> Option<HeaderValue> {
        let slot = self
            .token
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let token = slot.as_ref()?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// Runs the plugin again before each expiry until the client that owns
/// the cell is dropped. A failed run keeps the old token, logs the error
/// and retries; the server's 401 then reaches the caller.
pub async fn refresh(
    plugin: ExecPlugin,
    cell: Weak<TokenCell>,
    mut expires: Option<OffsetDateTime>,
) {
    while let Some(at) = expires {
        let until = at - OffsetDateTime::now_utc() - REFRESH_MARGIN;
        let wait = Duration::try_from(until)
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
        let Some(cell) = cell.upgrade() else { return };
        match plugin.run().await {
            Ok(Credential {
                token: Some(token),
                expires: next,
                ..
            }) => {
                cell.set(token);
                expires = next;
            }
            Ok(_) => {
                tracing::warn!(user = %plugin.user, "the exec credential plugin returned no token on refresh; keeping the old token until it expires");
                return;
            }
            Err(error) => {
                tracing::warn!(user = %plugin.user, %error, "failed to refresh the exec credential; retrying");
                expires = Some(OffsetDateTime::now_utc() + REFRESH_MARGIN + RETRY_AFTER);
            }
        }
    }
}

/// A tower layer that sets `Authorization: Bearer` from a [`TokenCell`].
#[derive(Debug, Clone)]
pub struct BearerLayer {
    pub cell: Arc<TokenCell>,
}

impl<S> tower_layer::Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Bearer<S> {
        Bearer {
            inner,
            cell: Arc::clone(&self.cell),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Bearer<S> {
    inner: S,
    cell: Arc<TokenCell>,
}

impl<S, B> tower_service::Service<hyper::Request<B>> for Bearer<S>
where
    S: tower_service::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: hyper::Request<B>) -> Self::Future {
        if let Some(value) = self.cell.header() {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        self.inner.call(request)
    }
}
