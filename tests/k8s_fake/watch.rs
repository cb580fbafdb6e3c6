//! Watch streams: synthetic `ADDED` events or a replay from a resource
//! version, then live changes, bookmarks, `timeoutSeconds`, and a 410
//! `ERROR` event for a resource version older than the kept history.

use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::selector::{FieldSelector, LabelSelector};
use super::server::{selected, selectors, status_error, streaming_response, Query, Target};
use super::store::Change;
use super::Shared;
use std::sync::Arc;

struct Filter {
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn accepts(&self, change: &Change) -> bool {
        change.resource == self.target.resource
            && self
                .target
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == change.namespace)
            && selected(&change.object, &self.labels, &self.fields)
    }
}

pub fn serve(shared: &Arc<Shared>, target: Target, query: &Query) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(selectors) => selectors,
        Err(response) => return *response,
    };
    let filter = Filter {
        target,
        labels,
        fields,
    };
    let bookmarks = query.flag("allowWatchBookmarks");
    let initial_events = query.flag("sendInitialEvents");
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let from = match query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
    {
        Some(text) => match text.parse::<u64>() {
            Ok(revision) => Some(revision),
            Err(_) => {
                return status_error(
                    400,
                    "BadRequest",
                    format!("invalid resourceVersion {text:?}: expected a number"),
                    None,
                )
            }
        },
        None => None,
    };

    let (sender, response) = streaming_response("application/json");
    let mut changes = shared.changes.subscribe();
    let mut first = Vec::new();
    let mut gone = false;
    let revision;
    {
        let state = shared.lock();
        revision = state.store.revision();
        match from {
            Some(_) if initial_events => first.extend(current_objects(&state.store, &filter)),
            Some(from) if from < state.store.oldest_watchable() => {
                first.push(expired(from));
                gone = true;
            }
            Some(from) => {
                for change in state
                    .store
                    .history_after(from)
                    .iter()
                    .filter(|c| filter.accepts(c))
                {
                    first.push(event_line(change.change.as_str(), &change.object));
                }
            }
            None => first.extend(current_objects(&state.store, &filter)),
        }
        if initial_events {
            first.push(bookmark(&filter, revision, true));
        }
    }

    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        for line in first {
            if sender.send(line.into()).await.is_err() {
                return;
            }
        }
        if gone {
            return;
        }
        stream_changes(
            &shared,
            &filter,
            &mut changes,
            &sender,
            revision,
            bookmarks,
            timeout,
        )
        .await;
    });
    response
}

fn current_objects(store: &super::store::Store, filter: &Filter) -> Vec<String> {
    store
        .list(filter.target.resource, filter.target.namespace.as_deref())
        .into_iter()
        .filter(|object| selected(object, &filter.labels, &filter.fields))
        .map(|object| event_line("ADDED", object))
        .collect()
}

async fn stream_changes(
    shared: &Shared,
    filter: &Filter,
    changes: &mut tokio::sync::broadcast::Receiver<Change>,
    sender: &mpsc::Sender<Bytes>,
    mut sent_up_to: u64,
    bookmarks: bool,
    timeout: Option<Duration>,
) {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticker = tokio::time::interval(shared.options.bookmark_interval);
    ticker.tick().await;
    loop {
        let line = tokio::select! {
            received = changes.recv() => match received {
                Ok(change) if change.revision > sent_up_to && filter.accepts(&change) => {
                    sent_up_to = change.revision;
                    event_line(change.change.as_str(), &change.object)
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => {
                    let _ = sender.send(expired(sent_up_to).into()).await;
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            _ = ticker.tick(), if bookmarks => {
                let (pending, revision) = drain_pending(shared, changes);
                for change in pending.into_iter().filter(|c| c.revision > sent_up_to && filter.accepts(c)) {
                    if sender.send(event_line(change.change.as_str(), &change.object).into()).await.is_err() {
                        return;
                    }
                }
                sent_up_to = sent_up_to.max(revision);
                bookmark(filter, revision, false)
            }
            _ = sleep_until(deadline) => return,
        };
        if sender.send(line.into()).await.is_err() {
            return;
        }
    }
}

/// Takes the changes already queued for this watch together with the
/// store's revision, under the lock, so a bookmark never overtakes a change.
fn drain_pending(
    shared: &Shared,
    changes: &mut tokio::sync::broadcast::Receiver<Change>,
) -> (Vec<Change>, u64) {
    let state = shared.lock();
    let mut pending = Vec::new();
    while let Ok(change) = changes.try_recv() {
        pending.push(change);
    }
    (pending, state.store.revision())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn event_line(kind: &str, object: &Value) -> String {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    line
}

fn bookmark(filter: &Filter, revision: u64, initial_events_end: bool) -> String {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let object = json!({
        "kind": filter.target.resource.kind,
        "apiVersion": filter.target.resource.api_version(),
        "metadata": metadata,
    });
    event_line("BOOKMARK", &object)
}

fn expired(from: u64) -> String {
    let status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("too old resource version: {from}"),
        "reason": "Expired",
        "code": 410,
    });
    event_line("ERROR", &status)
}
