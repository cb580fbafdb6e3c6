//! CPU and memory of a deployment's pods from the cluster's resource
//! metrics API, `metrics.k8s.io/v1beta1`, which metrics-server (or an
//! adapter with the same API) serves.
//!
//! k8s-openapi has no types for this group, so [`PodMetrics`] declares the
//! fields shipdeck reads. A cluster without the API returns 404 (no such
//! group is registered) or 503 (the group is registered but its server
//! does not respond). These become [`MetricsError::NotServed`] and
//! [`MetricsError::Unavailable`], so the caller reports them instead of
//! storing zeros.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};

use super::connect::Connection;
use super::error::{KubeError, RequestScope};
use super::labels::ObjectIdentity;
use crate::manifest::quantity_value;

/// The API group and version of pod metrics.
pub const METRICS_API: &str = "metrics.k8s.io/v1beta1";

/// The text clients show where a cluster does not serve [`METRICS_API`].
pub const NOT_SERVED: &str = "the cluster does not serve metrics.k8s.io; install metrics-server";

/// One pod's usage as the metrics API reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodMetrics {
    pub metadata: ObjectMeta,
    /// When the usage was measured (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The span the CPU rate was measured over, such as `15s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

/// One container's usage: `cpu` in cores and `memory` (the working set)
/// in bytes, both as quantities.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerMetrics {
    pub name: String,
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

impl kube::Resource for PodMetrics {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("PodMetrics")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("metrics.k8s.io")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1beta1")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("pods")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The summed usage of a deployment's pods at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DeploymentUsage {
    /// Pods the API reported; a pod that started since metrics-server
    /// last measured is not among them yet.
    pub pods: u32,
    pub cores: f64,
    pub memory_bytes: f64,
}

/// The reason no usage could be read.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{NOT_SERVED}")]
    NotServed,

    #[error(
        "the cluster's metrics.k8s.io API is unavailable (503 Service Unavailable: {message}); \
         check that metrics-server is running and ready"
    )]
    Unavailable { message: String },

    #[error(
        "listing pod metrics (metrics.k8s.io) did not finish within {} ms; check the cluster's \
         load or raise monitoring.interval",
        timeout.as_millis()
    )]
    TimedOut { timeout: Duration },

    #[error(
        "pod {pod:?} container {container:?} reported an invalid {resource} usage: {reason}; \
         check the cluster's metrics server"
    )]
    InvalidUsage {
        pod: String,
        container: String,
        resource: &'static str,
        reason: String,
    },

    #[error(transparent)]
    Request(Box<KubeError>),
}

impl MetricsError {
    /// Returns whether the cluster lacks the API, as opposed to a failed request.
    pub fn is_unserved(&self) -> bool {
        matches!(self, Self::NotServed | Self::Unavailable { .. })
    }
}

/// The connection and label selector of one deployment's pod metrics.
/// Cloning is cheap, because clones share the connection's client.
#[derive(Debug, Clone)]
pub struct PodMetricsSource {
    connection: Connection,
    selector: String,
}

impl PodMetricsSource {
    pub fn new(connection: &Connection, identity: &ObjectIdentity) -> Self {
        PodMetricsSource {
            connection: connection.clone(),
            selector: identity.selector_text(),
        }
    }

    /// Lists the metrics of the pods that the deployment's selector picks
    /// (every revision's) and sums them, within `timeout`.
    pub async fn fetch(&self, timeout: Duration) -> Result<DeploymentUsage, MetricsError> {
        let api: Api<PodMetrics> = Api::namespaced(
            self.connection.single_attempt_client().clone(),
            &self.connection.namespace,
        );
        let params = ListParams::default().labels(&self.selector);
        let listed = tokio::time::timeout(timeout, api.list(&params))
            .await
            .map_err(|_| MetricsError::TimedOut { timeout })?
            .map_err(|error| self.classify(error))?;
        sum_usage(&listed.items)
    }

    fn classify(&self, error: kube::Error) -> MetricsError {
        match error {
            kube::Error::Api(status) if status.code == 404 => MetricsError::NotServed,
            kube::Error::Api(status) if status.code == 503 => MetricsError::Unavailable {
                message: status.message,
            },
            other => MetricsError::Request(Box::new(self.connection.classify(
                other,
                RequestScope {
                    verb: "list",
                    resource: "pods.metrics.k8s.io",
                    namespace: Some(&self.connection.namespace),
                },
            ))),
        }
    }
}

/// Sums the CPU and memory of every container of every pod.
pub fn sum_usage(pods: &[PodMetrics]) -> Result<DeploymentUsage, MetricsError> {
    let mut usage = DeploymentUsage::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        for container in &pod.containers {
            usage.cores += container_usage(&name, container, "cpu")?;
            usage.memory_bytes += container_usage(&name, container, "memory")?;
        }
        usage.pods += 1;
    }
    Ok(usage)
}

fn container_usage(
    pod: &str,
    container: &ContainerMetrics,
    resource: &'static str,
) -> Result<f64, MetricsError> {
    let invalid = |reason: String| MetricsError::InvalidUsage {
        pod: pod.to_owned(),
        container: container.name.clone(),
        resource,
        reason,
    };
    let quantity = container
        .usage
        .get(resource)
        .ok_or_else(|| invalid("the usage has no such entry".to_owned()))?;
    let value = quantity_value(&quantity.0).map_err(invalid)?;
    if value < 0.0 {
        return Err(invalid(format!("{} is negative", quantity.0)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, containers: serde_json::Value) -> PodMetrics {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop"},
            "timestamp": "2026-01-01T00:00:00Z",
            "window": "15s",
            "containers": containers,
        }))
        .expect("a PodMetrics object")
    }

    #[test]
    fn sums_containers_and_pods() {
        let pods = [
            pod(
                "web-1",
                json!([
                    {"name": "web", "usage": {"cpu": "250000000n", "memory": "65536Ki"}},
                    {"name": "proxy", "usage": {"cpu": "50m", "memory": "16Mi"}},
                ]),
            ),
            pod(
                "web-2",
                json!([{"name": "web", "usage": {"cpu": "1", "memory": "64Mi"}}]),
            ),
        ];
        let usage = sum_usage(&pods).expect("valid usage");
        assert_eq!(usage.pods, 2);
        assert!((usage.cores - 1.3).abs() < 1e-9, "{}", usage.cores);
        assert_eq!(usage.memory_bytes, (64.0 + 16.0 + 64.0) * 1024.0 * 1024.0);
    }

    #[test]
    fn no_pods_is_no_usage() {
        assert_eq!(sum_usage(&[]).expect("empty"), DeploymentUsage::default());
    }

    #[test]
    fn invalid_quantity_names_pod_and_container() {
        let pods = [pod(
            "web-1",
            json!([{"name": "web", "usage": {"cpu": "fast", "memory": "1Mi"}}]),
        )];
        let error = sum_usage(&pods).expect_err("invalid cpu");
        let text = error.to_string();
        assert!(text.contains("\"web-1\""), "{text}");
        assert!(text.contains("container \"web\""), "{text}");
        assert!(text.contains("invalid cpu usage"), "{text}");
        assert!(!error.is_unserved());
    }

    #[test]
    fn missing_memory_is_invalid() {
        let pods = [pod(
            "web-1",
            json!([{"name": "web", "usage": {"cpu": "1m"}}]),
        )];
        let text = sum_usage(&pods).expect_err("no memory").to_string();
        assert!(text.contains("invalid memory usage"), "{text}");
    }

    #[test]
    fn not_served_says_what_to_install() {
        assert_eq!(MetricsError::NotServed.to_string(), NOT_SERVED);
        assert!(MetricsError::NotServed.is_unserved());
        let unavailable = MetricsError::Unavailable {
            message: "the server is currently unable to handle the request".to_owned(),
        };
        assert!(unavailable.is_unserved());
        assert!(unavailable.to_string().contains("metrics-server"));
    }
}
