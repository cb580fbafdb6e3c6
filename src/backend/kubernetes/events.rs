//! Kubernetes events (core/v1 `Event`) about a deployment's objects, for
//! its timeline.
//!
//! Events carry no labels, so the watch covers the namespace and keeps the
//! events whose object is the deployment's: the Deployment, Service and
//! autoscaler by name, and ReplicaSets and pods by the names the
//! Deployment controller gives them (`NAME-HASH`, `NAME-HASH-SUFFIX`).
//! Only events that arrive after the watch's first list are passed on, so
//! a restarted agent does not record old events again. A repeating event
//! (the cluster counts repeats in one Event) is passed on at most once per
//! [`REPEAT_INTERVAL`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use tokio::sync::mpsc;

use super::connect::Connection;
use super::error::error_chain;
use super::labels::ObjectIdentity;

/// The shortest time between two timeline entries of one Event object.
pub const REPEAT_INTERVAL: Duration = Duration::from_secs(60);

/// The most Event objects whose last entry time is kept; past it, entries
/// older than [`REPEAT_INTERVAL`] are forgotten.
const MAX_REMEMBERED: usize = 1000;

/// One event, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEvent {
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    /// The object, such as `pod/web-development-5d9c7b6f4-x2x7q`.
    pub object: String,
    pub message: String,
}

impl ClusterEvent {
    pub fn is_warning(&self) -> bool {
        self.kind == "Warning"
    }
}

/// A running event watch; dropping it ends the watch.
pub struct EventWatch {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts sending the events about `identity`'s objects to `sender`.
pub fn watch_events(
    connection: &Connection,
    identity: &ObjectIdentity,
    sender: mpsc::Sender<ClusterEvent>,
) -> EventWatch {
    let api: Api<Event> = Api::namespaced(connection.client().clone(), &connection.namespace);
    let name = identity.name.clone();
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut last_sent: HashMap<String, Instant> = HashMap::new();
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(watcher::Event::Apply(event)) => event,
                Ok(_) => continue,
                Err(error) => {
                    tracing::warn!(deployment = %name, error = %error_chain(&error), "event watch failed; retrying");
                    continue;
                }
            };
            let Some(described) = about(&event, &name) else {
                continue;
            };
            let uid = event.metadata.uid.clone().unwrap_or_default();
            if last_sent
                .get(&uid)
                .is_some_and(|at| at.elapsed() < REPEAT_INTERVAL)
            {
                continue;
            }
            if last_sent.len() >= MAX_REMEMBERED {
                last_sent.retain(|_, at| at.elapsed() < REPEAT_INTERVAL);
            }
            last_sent.insert(uid, Instant::now());
            if sender.send(described).await.is_err() {
                return;
            }
        }
    });
    EventWatch { task }
}

/// Returns the event for the timeline if it is about an object of the
/// deployment whose objects are named `name`.
pub fn about(event: &Event, name: &str) -> Option<ClusterEvent> {
    let object = &event.involved_object;
    let object_name = object.name.as_deref()?;
    if !is_deployment_object(object_name, name) {
        return None;
    }
    let kind = object.kind.clone().unwrap_or_default().to_ascii_lowercase();
    Some(ClusterEvent {
        kind: event.type_.clone().unwrap_or_else(|| "Normal".to_owned()),
        reason: event.reason.clone().unwrap_or_default(),
        object: format!("{kind}/{object_name}"),
        message: event.message.clone().unwrap_or_default(),
    })
}

/// `name` itself, or a name the Deployment controller derives from it: one
/// or two lowercase alphanumeric words after `name-`.
fn is_deployment_object(object: &str, name: &str) -> bool {
    if object == name {
        return true;
    }
    let Some(rest) = object
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
    else {
        return false;
    };
    let words: Vec<&str> = rest.split('-').collect();
    (1..=2).contains(&words.len())
        && words.iter().all(|word| {
            !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_objects_recognised() {
        let cases = [
            ("web-staging", true),
            ("web-staging-5d9c7b6f4", true),
            ("web-staging-5d9c7b6f4-x2x7q", true),
            ("web-staging-canary-5d9c7b6f4-x2x7q", false),
            ("web-stagingx", false),
            ("api-staging", false),
        ];
        for (object, expected) in cases {
            assert_eq!(
                is_deployment_object(object, "web-staging"),
                expected,
                "{object}"
            );
        }
    }

    #[test]
    fn event_about_pod_described() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "shop"},
            "involvedObject": {"kind": "Pod", "name": "web-staging-abc-12345"},
            "type": "Warning",
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
        }))
        .expect("an event");
        let described = about(&event, "web-staging").expect("about the deployment");
        assert_eq!(described.object, "pod/web-staging-abc-12345");
        assert!(described.is_warning());
        assert_eq!(described.reason, "BackOff");
        assert!(about(&event, "api-staging").is_none());
    }
}
