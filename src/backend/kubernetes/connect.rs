//! Connection to a cluster, chosen as kubectl chooses. The files in
//! `KUBECONFIG` are merged (the first file to set a value wins), or else
//! `~/.kube/config` is read. The manifest's context and namespace win over
//! the current context and that context's namespace. With no kubeconfig at
//! all, inside a pod, the pod's service account is used.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::error::{error_chain, KubeError, RequestScope};
use super::exec::{self, BearerLayer, ExecPlugin, TokenCell, DEFAULT_EXEC_TIMEOUT};

/// The context name shipdeck reports for a pod's own cluster.
pub const IN_CLUSTER_CONTEXT: &str = "in-cluster";

/// The sources of cluster settings. Tests build one by hand, so that they
/// never read the developer's own kubeconfig.
#[derive(Debug, Clone, Default)]
pub struct KubeEnvironment {
    /// `KUBECONFIG`: files separated as in `PATH`.
    pub kubeconfig: Option<OsString>,
    /// The user's home directory, for `~/.kube/config`.
    pub home: Option<PathBuf>,
    /// Whether `KUBERNETES_SERVICE_HOST` is set, as it is in a pod.
    pub in_cluster: bool,
    /// Time an exec credential plugin may run.
    pub exec_timeout: Duration,
}

impl KubeEnvironment {
    /// Reads the environment of this process.
    pub fn from_process() -> Self {
        KubeEnvironment {
            kubeconfig: std::env::var_os("KUBECONFIG"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            in_cluster: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some(),
            exec_timeout: DEFAULT_EXEC_TIMEOUT,
        }
    }

    /// Lists the kubeconfig files to read, in order: each existing file of
    /// `KUBECONFIG`, or else `~/.kube/config` if it exists. kubectl also
    /// skips files of `KUBECONFIG` that do not exist.
    pub fn kubeconfig_files(&self) -> Vec<PathBuf> {
        let listed: Vec<PathBuf> = match &self.kubeconfig {
            Some(value) => std::env::split_paths(value)
                .filter(|path| !path.as_os_str().is_empty())
                .collect(),
            None => Vec::new(),
        };
        let candidates = if listed.is_empty() {
            self.default_file().into_iter().collect()
        } else {
            listed
        };
        candidates
            .into_iter()
            .filter(|path| path.is_file())
            .collect()
    }

    fn default_file(&self) -> Option<PathBuf> {
        Some(self.home.as_ref()?.join(".kube").join("config"))
    }

    /// Describes what [`Self::kubeconfig_files`] looked at, for error messages.
    fn searched(&self) -> String {
        let mut searched: Vec<String> = match &self.kubeconfig {
            Some(value) => std::env::split_paths(value)
                .filter(|path| !path.as_os_str().is_empty())
                .map(|path| path.display().to_string())
                .collect(),
            None => Vec::new(),
        };
        if searched.is_empty() {
            searched.extend(self.default_file().map(|path| path.display().to_string()));
        }
        if searched.is_empty() {
            return "KUBECONFIG (unset) and ~/.kube/config (HOME is unset)".to_owned();
        }
        searched.join(", ")
    }
}

/// The manifest's `kubernetes` block: overrides of the kubeconfig's choice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterTarget {
    pub context: Option<String>,
    pub namespace: Option<String>,
}

impl From<Option<&crate::manifest::KubernetesTarget>> for ClusterTarget {
    fn from(target: Option<&crate::manifest::KubernetesTarget>) -> Self {
        ClusterTarget {
            context: target.and_then(|t| t.context.clone()),
            namespace: target.and_then(|t| t.namespace.clone()),
        }
    }
}

/// Merged kubeconfig files.
#[derive(Debug, Clone)]
pub struct LoadedKubeconfig {
    pub config: Kubeconfig,
    pub files: Vec<PathBuf>,
}

impl LoadedKubeconfig {
    fn files_text(&self) -> String {
        let names: Vec<String> = self
            .files
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        names.join(", ")
    }

    /// Returns the context that applies: the target's, or the current one.
    pub fn context_name(&self, target: &ClusterTarget) -> Result<String, KubeError> {
        let name = match (&target.context, &self.config.current_context) {
            (Some(name), _) => name.clone(),
            (None, Some(name)) if !name.is_empty() => name.clone(),
            _ => {
                return Err(KubeError::NoCurrentContext {
                    files: self.files_text(),
                })
            }
        };
        if !self
            .config
            .contexts
            .iter()
            .any(|context| context.name == name)
        {
            let known: Vec<&str> = self
                .config
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(KubeError::UnknownContext {
                context: name,
                files: self.files_text(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
        Ok(name)
    }
}

/// Reads and merges the kubeconfig files; `None` when there are none.
pub fn load_kubeconfig(
    environment: &KubeEnvironment,
) -> Result<Option<LoadedKubeconfig>, KubeError> {
    let files = environment.kubeconfig_files();
    if files.is_empty() {
        return Ok(None);
    }
    let mut merged = Kubeconfig::default();
    for path in &files {
        let read_error = |source| KubeError::ReadKubeconfig {
            path: path.clone(),
            source: Box::new(source),
        };
        let config = Kubeconfig::read_from(path).map_err(read_error)?;
        merged = merged.merge(config).map_err(read_error)?;
    }
    Ok(Some(LoadedKubeconfig {
        config: merged,
        files,
    }))
}

/// A client for one cluster and namespace.
#[derive(Clone)]
pub struct Connection {
    client: kube::Client,
    /// The same cluster and credentials without kube's default retries.
    single_attempt: kube::Client,
    pub context: String,
    pub server: String,
    pub namespace: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Connects to the cluster that `target` and the environment choose. No
/// request is sent yet, except that an exec credential plugin runs.
pub async fn connect(
    environment: &KubeEnvironment,
    target: &ClusterTarget,
) -> Result<Connection, KubeError> {
    match load_kubeconfig(environment)? {
        Some(loaded) => {
            let context = loaded.context_name(target)?;
            connect_context(environment, &loaded, &context, target.namespace.as_deref()).await
        }
        None if environment.in_cluster => connect_in_cluster(target),
        None => Err(KubeError::NoConfiguration {
            searched: environment.searched(),
        }),
    }
}

/// Connects through one named context of a loaded kubeconfig.
pub async fn connect_context(
    environment: &KubeEnvironment,
    loaded: &LoadedKubeconfig,
    context: &str,
    namespace: Option<&str>,
) -> Result<Connection, KubeError> {
    let options = KubeConfigOptions {
        context: Some(context.to_owned()),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(loaded.config.clone(), &options)
        .await
        .map_err(|source| KubeError::InvalidContext {
            context: context.to_owned(),
            source: Box::new(source),
        })?;
    if let Some(namespace) = namespace {
        config.default_namespace = namespace.to_owned();
    }
    // kube would run the plugin itself, blocking and without a timeout.
    let plugin = config.auth_info.exec.take().map(|exec| {
        let user = user_of(&loaded.config, context);
        ExecPlugin::new(exec, &user, environment.exec_timeout)
    });
    build(config, context, plugin).await
}

fn user_of(config: &Kubeconfig, context: &str) -> String {
    config
        .contexts
        .iter()
        .find(|named| named.name == context)
        .and_then(|named| named.context.as_ref())
        .and_then(|context| context.user.clone())
        .unwrap_or_default()
}

fn connect_in_cluster(target: &ClusterTarget) -> Result<Connection, KubeError> {
    if let Some(context) = &target.context {
        return Err(KubeError::ContextInCluster {
            context: context.clone(),
        });
    }
    // NOTE: kube reads the service account from its fixed paths under
    // /var/run/secrets/kubernetes.io, so no test runs this branch.
    let mut config = kube::Config::incluster().map_err(|source| KubeError::InCluster {
        source: Box::new(source),
    })?;
    if let Some(namespace) = &target.namespace {
        config.default_namespace = namespace.clone();
    }
    let server = config.cluster_url.to_string();
    let namespace = config.default_namespace.clone();
    let client_error = |source| KubeError::Client {
        context: IN_CLUSTER_CONTEXT.to_owned(),
        source: Box::new(source),
    };
    let single_attempt = kube::Client::try_from(without_retries(&config)).map_err(client_error)?;
    let client = kube::Client::try_from(config).map_err(client_error)?;
    Ok(Connection {
        client,
        single_attempt,
        context: IN_CLUSTER_CONTEXT.to_owned(),
        server,
        namespace,
    })
}

async fn build(
    mut config: kube::Config,
    context: &str,
    plugin: Option<ExecPlugin>,
) -> Result<Connection, KubeError> {
    let credential = match &plugin {
        Some(plugin) => Some(plugin.run().await?),
        None => None,
    };
    if let Some(identity) = credential.as_ref().and_then(|c| c.identity.as_ref()) {
        use_identity(
            &mut config,
            identity,
            credential.as_ref().and_then(|c| c.expires),
        );
    }
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let namespace = config.default_namespace.clone();
    let client_error = |source| KubeError::Client {
        context: context.to_owned(),
        source: Box::new(source),
    };
    let single_builder =
        kube::client::ClientBuilder::try_from(without_retries(&config)).map_err(client_error)?;
    let builder = kube::client::ClientBuilder::try_from(config).map_err(client_error)?;
    let token = credential.as_ref().and_then(|c| c.token.clone());
    let (client, single_attempt) = match (plugin, token) {
        (Some(plugin), Some(token)) => {
            let cell = TokenCell::new(token);
            tokio::spawn(exec::refresh(
                plugin,
                Arc::downgrade(&cell),
                credential.and_then(|c| c.expires),
            ));
            let bearer = BearerLayer { cell };
            (
                builder.with_layer(&bearer).build(),
                single_builder.with_layer(&bearer).build(),
            )
        }
        _ => (builder.build(), single_builder.build()),
    };
    Ok(Connection {
        client,
        single_attempt,
        context: context.to_owned(),
        server,
        namespace,
    })
}

/// Puts a client certificate that an exec plugin returned into `config`,
/// where kube reads it when it builds the client's TLS configuration.
// NOTE: the TLS configuration is fixed once the client is built, so the
// certificate is not renewed while the connection lasts. The plugin runs
// again when the agent connects again (an agent restart, or a failed
// connection retried).
fn use_identity(
    config: &mut kube::Config,
    identity: &exec::ClientIdentity,
    expires: Option<time::OffsetDateTime>,
) {
    use base64::Engine as _;

    let encode = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    config.auth_info.client_certificate_data = Some(encode(&identity.certificate_pem));
    config.auth_info.client_key_data = Some(encode(identity.key_pem.expose()).into());
    if let Some(expires) = expires {
        tracing::info!(%expires, "the exec credential plugin returned a client certificate, which is used until the agent connects again");
    }
}

/// Returns `config` without kube's default retry layer, which retries a
/// 503, 429 or 504 up to 15 times with a growing backoff.
fn without_retries(config: &kube::Config) -> kube::Config {
    let mut config = config.clone();
    config.default_retry = false;
    config
}

impl Connection {
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Returns a client that sends each request once, for a request that
    /// runs again at the next interval anyway and whose 503 means
    /// something: a metrics API that is down returns 503 to every retry,
    /// so retries would only turn that status into a timeout.
    pub fn single_attempt_client(&self) -> &kube::Client {
        &self.single_attempt
    }

    /// Asks the server for its version, within `timeout`.
    pub async fn server_version(&self, timeout: Duration) -> Result<String, KubeError> {
        let scope = RequestScope {
            verb: "get",
            resource: "/version",
            namespace: None,
        };
        match tokio::time::timeout(timeout, self.client.apiserver_version()).await {
            Ok(Ok(info)) => Ok(info.git_version),
            Ok(Err(error)) => Err(self.classify(error, scope)),
            Err(_) => Err(KubeError::TimedOut {
                server: self.server.clone(),
                context: self.context.clone(),
                timeout,
            }),
        }
    }

    /// Checks that the connection's namespace exists. A user who may not
    /// read namespaces passes, because the check cannot tell then.
    pub async fn ensure_namespace(&self) -> Result<(), KubeError> {
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.client.clone());
        let scope = RequestScope {
            verb: "get",
            resource: "namespaces",
            namespace: None,
        };
        match namespaces.get(&self.namespace).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 403 => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Err(self.namespace_not_found()),
            Err(error) => Err(self.classify(error, scope)),
        }
    }

    fn namespace_not_found(&self) -> KubeError {
        KubeError::NamespaceNotFound {
            namespace: self.namespace.clone(),
            server: self.server.clone(),
            context: self.context.clone(),
        }
    }

    /// Turns a client error into one that names the server, the context
    /// and the request.
    pub fn classify(&self, error: kube::Error, scope: RequestScope<'_>) -> KubeError {
        let status = match error {
            kube::Error::Api(status) => status,
            kube::Error::HyperError(_) | kube::Error::Service(_) => {
                return KubeError::Unreachable {
                    server: self.server.clone(),
                    context: self.context.clone(),
                    reason: error_chain(&error),
                }
            }
            other => {
                return KubeError::Request {
                    server: self.server.clone(),
                    verb: scope.verb.to_owned(),
                    resource: scope.resource.to_owned(),
                    source: Box::new(other),
                }
            }
        };
        let namespace_missing = scope.namespace.is_some_and(|namespace| {
            status.message == format!("namespaces \"{namespace}\" not found")
        });
        match status.code {
            401 => KubeError::Unauthorized {
                server: self.server.clone(),
                context: self.context.clone(),
            },
            403 => KubeError::Forbidden {
                context: self.context.clone(),
                verb: scope.verb.to_owned(),
                resource: scope.resource.to_owned(),
                scope: match scope.namespace {
                    Some(namespace) => format!("namespace {namespace:?}"),
                    None => "the whole cluster".to_owned(),
                },
                message: status.message.clone(),
            },
            404 if namespace_missing => KubeError::NamespaceNotFound {
                namespace: scope.namespace.unwrap_or_default().to_owned(),
                server: self.server.clone(),
                context: self.context.clone(),
            },
            code => KubeError::Api {
                server: self.server.clone(),
                context: self.context.clone(),
                request: format!("{} {}", scope.verb, scope.resource),
                code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
        }
    }
}

/// One context of the kubeconfig, and whether its cluster responded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContextStatus {
    pub name: String,
    pub current: bool,
    pub cluster: String,
    pub server: String,
    pub namespace: String,
    pub user: String,
    /// The server's version, when it responded.
    pub version: Option<String>,
    /// The reason it did not respond.
    pub error: Option<String>,
}

/// Lists every context of the kubeconfig and checks each at once, each
/// check bounded by `timeout`.
pub async fn list_contexts(
    environment: &KubeEnvironment,
    timeout: Duration,
) -> Result<Vec<ContextStatus>, KubeError> {
    let Some(loaded) = load_kubeconfig(environment)? else {
        return Err(KubeError::NoConfiguration {
            searched: environment.searched(),
        });
    };
    let mut probe_environment = environment.clone();
    probe_environment.exec_timeout = probe_environment.exec_timeout.min(timeout);
    let loaded = Arc::new(loaded);
    let mut checks = tokio::task::JoinSet::new();
    for (index, named) in loaded.config.contexts.iter().enumerate() {
        let loaded = Arc::clone(&loaded);
        let environment = probe_environment.clone();
        let name = named.name.clone();
        checks.spawn(async move { (index, probe(&environment, &loaded, &name, timeout).await) });
    }

    let mut statuses: Vec<Option<ContextStatus>> = vec![None; loaded.config.contexts.len()];
    while let Some(joined) = checks.join_next().await {
        if let Ok((index, status)) = joined {
            statuses[index] = Some(status);
        }
    }
    Ok(statuses.into_iter().flatten().collect())
}

async fn probe(
    environment: &KubeEnvironment,
    loaded: &LoadedKubeconfig,
    name: &str,
    timeout: Duration,
) -> ContextStatus {
    let context = loaded
        .config
        .contexts
        .iter()
        .find(|named| named.name == name)
        .and_then(|named| named.context.clone())
        .unwrap_or_default();
    let server = loaded
        .config
        .clusters
        .iter()
        .find(|named| named.name == context.cluster)
        .and_then(|named| named.cluster.as_ref())
        .and_then(|cluster| cluster.server.clone())
        .unwrap_or_default();
    let mut status = ContextStatus {
        name: name.to_owned(),
        current: loaded.config.current_context.as_deref() == Some(name),
        cluster: context.cluster.clone(),
        server,
        namespace: context
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        user: context.user.clone().unwrap_or_default(),
        version: None,
        error: None,
    };
    let checked = async {
        let connection = connect_context(environment, loaded, name, None).await?;
        connection.server_version(timeout).await
    };
    match checked.await {
        Ok(version) => status.version = Some(version),
        Err(error) => status.error = Some(error.to_string()),
    }
    status
}
