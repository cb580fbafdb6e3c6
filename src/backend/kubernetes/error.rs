//! Errors of the Kubernetes backend. Each names the value that failed (the
//! kubeconfig file, the context, the server, the verb and resource) and
//! what to do next.

use std::path::PathBuf;
use std::time::Duration;

/// The request an API error came from, so that the error can name it.
#[derive(Debug, Clone, Copy)]
pub struct RequestScope<'a> {
    /// The Kubernetes verb: `get`, `list`, `watch`, `patch`, `delete`, ...
    pub verb: &'a str,
    /// The plural resource, with its group when it has one: `deployments.apps`.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "no Kubernetes configuration found: none of {searched} exists and shipdeck is not running \
         in a pod; create a kubeconfig (kubectl config) or set KUBECONFIG"
    )]
    NoConfiguration { searched: String },

    #[error("failed to read kubeconfig {}: {source}; fix the file or remove it from KUBECONFIG", path.display())]
    ReadKubeconfig {
        path: PathBuf,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },

    #[error(
        "kubeconfig ({files}) has no current context; set kubernetes.context in the manifest or \
         run `kubectl config use-context NAME`"
    )]
    NoCurrentContext { files: String },

    #[error("context {context:?} not found in kubeconfig ({files}); known contexts: {known}")]
    UnknownContext {
        context: String,
        files: String,
        known: String,
    },

    #[error(
        "context {context:?} in kubeconfig is invalid: {source}; fix it with `kubectl config`"
    )]
    InvalidContext {
        context: String,
        #[source]
        source: Box<kube::config::KubeconfigError>,
    },

    #[error(
        "kubernetes.context is {context:?}, but shipdeck runs in a pod with no kubeconfig, so it \
         can only use the pod's own cluster; remove kubernetes.context or provide a kubeconfig"
    )]
    ContextInCluster { context: String },

    #[error("failed to read the pod's in-cluster configuration: {source}")]
    InCluster {
        #[source]
        source: Box<kube::config::InClusterError>,
    },

    #[error("failed to set up the client for context {context:?}: {source}")]
    Client {
        context: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error(
        "the exec credential plugin {command:?} of user {user:?} requires interaction \
         (interactiveMode: Always), but shipdeck runs it without a terminal; log in with the \
         plugin in a terminal first, or give the user a token"
    )]
    ExecInteractive { command: String, user: String },

    #[error("the exec credential plugin of user {user:?} names no command; set users[].user.exec.command")]
    ExecNoCommand { user: String },

    #[error(
        "failed to start the exec credential plugin {command:?} of user {user:?}: {source}{hint}"
    )]
    ExecStart {
        command: String,
        user: String,
        hint: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the exec credential plugin {command:?} of user {user:?} did not finish within {timeout:?}; \
         it may be waiting for input, which it cannot get without a terminal: run it in a terminal \
         to log in, then try again"
    )]
    ExecTimedOut {
        command: String,
        user: String,
        timeout: Duration,
    },

    #[error(
        "the exec credential plugin {command:?} of user {user:?} failed ({status}): {stderr}; \
         if it needs a login, run it in a terminal first"
    )]
    ExecFailed {
        command: String,
        user: String,
        status: String,
        stderr: String,
    },

    #[error("the exec credential plugin {command:?} of user {user:?} printed an invalid credential: {reason}")]
    ExecOutput {
        command: String,
        user: String,
        reason: String,
    },

    #[error("cluster {server} of context {context:?} is unreachable: {reason}; check the server address and the network")]
    Unreachable {
        server: String,
        context: String,
        reason: String,
    },

    #[error("cluster {server} of context {context:?} did not respond within {timeout:?}")]
    TimedOut {
        server: String,
        context: String,
        timeout: Duration,
    },

    #[error(
        "cluster {server} rejected the credentials of context {context:?} (401 Unauthorized); \
         refresh them (log in again) or fix the user in kubeconfig"
    )]
    Unauthorized { server: String, context: String },

    #[error(
        "forbidden: context {context:?} may not {verb} {resource} in {scope}; ask the cluster's \
         administrator for that permission ({message})"
    )]
    Forbidden {
        context: String,
        verb: String,
        resource: String,
        scope: String,
        message: String,
    },

    #[error(
        "namespace {namespace:?} does not exist in cluster {server} (context {context:?}); create \
         it (kubectl create namespace {namespace}) or set kubernetes.namespace"
    )]
    NamespaceNotFound {
        namespace: String,
        server: String,
        context: String,
    },

    #[error(
        "cluster {server} (context {context:?}) failed to {request}: {message} ({code} {reason})"
    )]
    Api {
        server: String,
        context: String,
        /// The verb and the resource, such as `patch deployments.apps`.
        request: String,
        code: u16,
        reason: String,
        message: String,
    },

    #[error(
        "{resource} {name:?} already exists in namespace {namespace:?} and was not created by this \
         shipdeck agent for this deployment, so shipdeck leaves it alone; rename the deployment, \
         set another kubernetes.namespace, or delete that object"
    )]
    NotOurs {
        resource: String,
        name: String,
        namespace: String,
    },

    #[error("request to {verb} {resource} on cluster {server} failed: {source}")]
    Request {
        server: String,
        verb: String,
        resource: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// Joins an error and its sources into one line, skipping a source whose
/// text its parent already contains.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}
