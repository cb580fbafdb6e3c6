//! Pod logs: each container of a pod has numbered instances (one per
//! restart) with timestamped lines. `previous=true` reads the instance
//! before the last one; `follow=true` streams the last one until it ends.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::server::{not_found, status_error, streaming_response, Query, Target};
use super::{now_nanos, Shared};

/// Namespace, pod and container.
pub type LogKey = (String, String, String);

/// The output of one run of a container.
#[derive(Debug, Clone, Default)]
pub struct Instance {
    pub lines: Vec<(String, String)>,
    pub ended: bool,
}

/// A line written by, or the end of, a container instance.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub key: LogKey,
    pub instance: usize,
    /// Timestamp and text; `None` when the instance ended.
    pub line: Option<(String, String)>,
}

/// All container output the fake keeps.
#[derive(Debug, Default)]
pub struct Logs {
    instances: BTreeMap<LogKey, Vec<Instance>>,
}

impl Logs {
    /// Starts a new instance that prints `lines`, ending the one before.
    pub fn start(
        &mut self,
        key: &LogKey,
        lines: &[String],
        events: &tokio::sync::broadcast::Sender<LogEvent>,
    ) {
        let instances = self.instances.entry(key.clone()).or_default();
        if let Some(last) = instances.last_mut() {
            if !last.ended {
                last.ended = true;
                let _ = events.send(LogEvent {
                    key: key.clone(),
                    instance: instances.len() - 1,
                    line: None,
                });
            }
        }
        instances.push(Instance::default());
        for line in lines {
            self.write(key, line, events);
        }
    }

    pub fn write(
        &mut self,
        key: &LogKey,
        text: &str,
        events: &tokio::sync::broadcast::Sender<LogEvent>,
    ) {
        let Some(instances) = self.instances.get_mut(key) else {
            return;
        };
        let index = instances.len() - 1;
        let Some(instance) = instances.last_mut() else {
            return;
        };
        let line = (now_nanos(), text.to_owned());
        instance.lines.push(line.clone());
        // No receiver only means that no client follows these logs.
        let _ = events.send(LogEvent {
            key: key.clone(),
            instance: index,
            line: Some(line),
        });
    }

    pub fn end(&mut self, key: &LogKey, events: &tokio::sync::broadcast::Sender<LogEvent>) {
        let Some(instances) = self.instances.get_mut(key) else {
            return;
        };
        let index = instances.len() - 1;
        if let Some(instance) = instances.last_mut().filter(|i| !i.ended) {
            instance.ended = true;
            let _ = events.send(LogEvent {
                key: key.clone(),
                instance: index,
                line: None,
            });
        }
    }

    /// Forgets a deleted pod's output, ending open follows.
    pub fn remove_pod(
        &mut self,
        namespace: &str,
        pod: &str,
        events: &tokio::sync::broadcast::Sender<LogEvent>,
    ) {
        let keys: Vec<LogKey> = self
            .instances
            .keys()
            .filter(|(ns, name, _)| ns == namespace && name == pod)
            .cloned()
            .collect();
        for key in keys {
            self.end(&key, events);
            self.instances.remove(&key);
        }
    }

    pub fn instance_count(&self, key: &LogKey) -> usize {
        self.instances.get(key).map_or(0, Vec::len)
    }
}

fn format_lines(lines: &[(String, String)], query: &Query) -> String {
    let tail: usize = query
        .get("tailLines")
        .and_then(|t| t.parse().ok())
        .unwrap_or(usize::MAX);
    let skip = lines.len().saturating_sub(tail);
    lines[skip..]
        .iter()
        .map(|line| format_line(line, query.flag("timestamps")))
        .collect()
}

fn format_line((time, text): &(String, String), timestamps: bool) -> String {
    if timestamps {
        format!("{time} {text}\n")
    } else {
        format!("{text}\n")
    }
}

pub fn serve(shared: &Shared, target: &Target, query: &Query) -> Response {
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let state = shared.lock();
    let Some(pod) = state.store.get(target.resource, &namespace, &name) else {
        return not_found(target.resource, &name);
    };
    let containers: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let container = match (query.get("container"), containers.as_slice()) {
        (Some(container), _) if containers.iter().any(|c| c == container) => container.to_owned(),
        (Some(container), _) => {
            return status_error(
                400,
                "BadRequest",
                format!("container {container} is not valid for pod {name}"),
                None,
            )
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            return status_error(
                400,
                "BadRequest",
                format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                ),
                None,
            )
        }
    };
    let key = (namespace, name.clone(), container.clone());
    let instances = state.logs.instances.get(&key).cloned().unwrap_or_default();
    let previous = query.flag("previous");
    let wanted = if previous {
        instances.len().checked_sub(2)
    } else {
        instances.len().checked_sub(1)
    };
    let Some(index) = wanted else {
        let message = if previous {
            format!("previous terminated container \"{container}\" in pod \"{name}\" not found")
        } else {
            let reason =
                waiting_reason(pod, &container).unwrap_or_else(|| "ContainerCreating".to_owned());
            format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}")
        };
        return status_error(400, "BadRequest", message, None);
    };
    let instance = &instances[index];
    let text = format_lines(&instance.lines, query);
    if previous || !query.flag("follow") || instance.ended {
        return (StatusCode::OK, [("content-type", "text/plain")], text).into_response();
    }

    let mut events = shared.log_events.subscribe();
    drop(state);
    let timestamps = query.flag("timestamps");
    let (sender, response) = streaming_response("text/plain");
    tokio::spawn(async move {
        if !text.is_empty() && sender.send(text.into()).await.is_err() {
            return;
        }
        while let Ok(event) = events.recv().await {
            if event.key != key || event.instance != index {
                continue;
            }
            let Some(line) = event.line else { return };
            if sender
                .send(format_line(&line, timestamps).into())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    response
}

fn waiting_reason(pod: &serde_json::Value, container: &str) -> Option<String> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|status| status["name"] == container)?["state"]["waiting"]["reason"]
        .as_str()
        .map(str::to_owned)
}
