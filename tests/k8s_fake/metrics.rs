//! The resource metrics API, `metrics.k8s.io/v1beta1`, as metrics-server
//! serves it: one `PodMetrics` per running pod, with each container's
//! usage taken from the usage scripted for its image
//! ([`super::FakeApiServer::set_usage`]), CPU in nanocores and memory in
//! kibibytes as metrics-server writes them.
//!
//! [`MetricsApi`] switches the API off in the two ways a cluster lacks
//! it. Node metrics, `fieldSelector` and resource versions are not served.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::server::{json_response, selectors, status_error, Query};
use super::store::{name_of, namespace_of};
use super::{now, resources, Shared};

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";

/// Whether and how the fake serves the metrics API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsApi {
    /// Served from the scripted usage of running pods.
    #[default]
    Served,
    /// Not registered, as on a cluster without metrics-server: discovery
    /// lacks the group and its paths return 404.
    NotRegistered,
    /// Registered but failing, as while metrics-server is down: discovery
    /// lists the group and every request under it gets 503.
    Unavailable,
}

/// One container's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cpu_nanocores: u64,
    pub memory_bytes: u64,
}

/// The usage of a container whose image has none scripted.
pub const DEFAULT_USAGE: Usage = Usage {
    cpu_nanocores: 1_000_000,
    memory_bytes: 8 << 20,
};

/// Builds the `/apis` entry of the group, unless it is not registered.
pub fn group_entry(mode: MetricsApi) -> Option<Value> {
    (mode != MetricsApi::NotRegistered).then(|| {
        let version = json!({"groupVersion": format!("{GROUP}/{VERSION}"), "version": VERSION});
        json!({"name": GROUP, "versions": [version.clone()], "preferredVersion": version})
    })
}

/// Serves a request under `/apis/metrics.k8s.io`, or returns `None` for
/// other paths and while the group is not registered, so that the server
/// returns 404.
pub fn serve(shared: &Shared, path: &str, query: &Query) -> Option<Response> {
    let rest = path.strip_prefix("/apis/")?.strip_prefix(GROUP)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let mode = shared.lock().metrics_api;
    match mode {
        MetricsApi::NotRegistered => return None,
        MetricsApi::Unavailable if !rest.is_empty() => {
            return Some(status_error(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request".to_owned(),
                None,
            ))
        }
        _ => {}
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    Some(match segments.as_slice() {
        [] => {
            let mut group = group_entry(mode).unwrap_or_default();
            group["kind"] = json!("APIGroup");
            group["apiVersion"] = json!("v1");
            json_response(StatusCode::OK, &group)
        }
        [VERSION] => json_response(StatusCode::OK, &resource_list()),
        [VERSION, "pods"] => list(shared, None, query),
        [VERSION, "namespaces", namespace, "pods"] => list(shared, Some(namespace), query),
        [VERSION, "namespaces", namespace, "pods", name] => get(shared, namespace, name),
        _ => status_error(
            404,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
            None,
        ),
    })
}

fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{VERSION}"),
        "resources": [{
            "name": "pods",
            "singularName": "",
            "namespaced": true,
            "kind": "PodMetrics",
            "verbs": ["get", "list"],
        }],
    })
}

fn list(shared: &Shared, namespace: Option<&str>, query: &Query) -> Response {
    let (labels, _) = match selectors(query) {
        Ok(selectors) => selectors,
        Err(response) => return *response,
    };
    let state = shared.lock();
    let Some(pods) = resources::by_kind("Pod") else {
        return status_error(500, "InternalError", "pods are not served".to_owned(), None);
    };
    let items: Vec<Value> = state
        .store
        .list(pods, namespace)
        .into_iter()
        .filter(|pod| labels.matches(pod["metadata"]["labels"].as_object()))
        .filter_map(|pod| pod_metrics(pod, &state.usage))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "PodMetricsList",
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "metadata": {},
            "items": items,
        }),
    )
}

fn get(shared: &Shared, namespace: &str, name: &str) -> Response {
    let state = shared.lock();
    let pod = resources::by_kind("Pod").and_then(|pods| state.store.get(pods, namespace, name));
    match pod.and_then(|pod| pod_metrics(pod, &state.usage)) {
        Some(metrics) => json_response(StatusCode::OK, &metrics),
        None => status_error(
            404,
            "NotFound",
            format!("podmetrics.metrics.k8s.io \"{namespace}/{name}\" not found"),
            Some(json!({"name": name, "group": GROUP, "kind": "pods"})),
        ),
    }
}

/// Builds the metrics of a pod whose containers run, as metrics-server
/// reports them, or `None` for a pod that is not running yet or any more.
fn pod_metrics(pod: &Value, usage: &std::collections::HashMap<String, Usage>) -> Option<Value> {
    let statuses = pod["status"]["containerStatuses"].as_array()?;
    let running = pod["status"]["phase"] == "Running"
        && !statuses.is_empty()
        && statuses.iter().all(|c| c["state"].get("running").is_some());
    if !running {
        return None;
    }
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()?
        .iter()
        .map(|container| {
            let image = container["image"].as_str().unwrap_or_default();
            let used = usage.get(image).copied().unwrap_or(DEFAULT_USAGE);
            json!({
                "name": container["name"],
                "usage": {
                    "cpu": format!("{}n", used.cpu_nanocores),
                    "memory": format!("{}Ki", used.memory_bytes / 1024),
                },
            })
        })
        .collect();
    Some(json!({
        "metadata": {
            "name": name_of(pod),
            "namespace": namespace_of(pod),
            "labels": pod["metadata"]["labels"],
            "creationTimestamp": now(),
        },
        "timestamp": now(),
        "window": "15s",
        "containers": containers,
    }))
}
