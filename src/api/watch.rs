//! `GET /v1/watch`: every change from the moment of the request, as a
//! newline-delimited JSON stream of [`WatchItem`]s.
//!
//! A client opens the stream first and reads the lists after, so that no
//! change falls between the two. A rollout changes a replica's state
//! several times within milliseconds, so changes of one deployment are
//! gathered for [`COALESCE`] and sent as one view of it. The view is read
//! when it is sent, so the client gets the newest state, not a stale copy.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::logs::LineStream;
use super::server::Shared;
use super::wire::WatchItem;
use crate::engine::Engine;
use crate::store::Change;

/// How long changes of deployments and metrics are gathered before they
/// are sent. Short enough that the delay is not visible.
const COALESCE: Duration = Duration::from_millis(50);

/// Lines waiting for a slow client. When it fills, the stream stops reading
/// the feed, the feed's queue fills behind it, and the client gets the count
/// of notices it missed.
const STREAM_LINES: usize = 256;

pub async fn watch(State(state): State<Shared>) -> Response {
    let changes = state.engine.follow_changes();
    let (sender, receiver) = mpsc::channel::<Bytes>(STREAM_LINES);
    tokio::spawn(forward(
        state.engine.clone(),
        changes,
        sender,
        state.closing.clone(),
    ));

    let body = axum::body::Body::new(LineStream { receiver });
    ([(CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// Deployments and metrics changed since the last flush, by id.
#[derive(Default)]
struct Pending {
    deployments: BTreeSet<String>,
    metrics: BTreeSet<String>,
    due: Option<Instant>,
}

impl Pending {
    fn add(&mut self, set: fn(&mut Self) -> &mut BTreeSet<String>, id: String) {
        set(self).insert(id);
        self.due.get_or_insert_with(|| Instant::now() + COALESCE);
    }
}

/// Reads the feed and writes lines until the client goes away or the
/// agent stops.
async fn forward(
    engine: Arc<Engine>,
    mut changes: broadcast::Receiver<Change>,
    sender: mpsc::Sender<Bytes>,
    mut closing: watch::Receiver<bool>,
) {
    let mut pending = Pending::default();
    loop {
        let due = pending.due;
        let flush = async move {
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        let items = tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => take(change, &mut pending),
                Err(RecvError::Lagged(count)) => vec![WatchItem::Missed { count }],
                Err(RecvError::Closed) => return,
            },
            () = flush => drain(&engine, &mut pending),
            () = sender.closed() => return,
            _ = closing.wait_for(|closing| *closing) => return,
        };
        for item in items {
            if sender.send(ndjson(&item)).await.is_err() {
                return;
            }
        }
    }
}

/// Sends events at once and gathers the other changes for the next flush.
fn take(change: Change, pending: &mut Pending) -> Vec<WatchItem> {
    match change {
        Change::Event(event) => vec![WatchItem::Event { event }],
        Change::Deployment { id } => {
            pending.add(|p| &mut p.deployments, id);
            Vec::new()
        }
        Change::Metrics { id } => {
            pending.add(|p| &mut p.metrics, id);
            Vec::new()
        }
    }
}

/// Reads each gathered deployment as it is now.
fn drain(engine: &Engine, pending: &mut Pending) -> Vec<WatchItem> {
    let Pending {
        deployments,
        metrics,
        ..
    } = std::mem::take(pending);
    let mut items = Vec::with_capacity(deployments.len() + metrics.len());

    for id in deployments {
        match engine.view_by_id(&id) {
            Ok(Some(view)) => items.push(WatchItem::Deployment {
                deployment: Box::new(view),
            }),
            Ok(None) => items.push(WatchItem::Removed { id }),
            // The client reads the lists again after a miss, which brings
            // the record back if the store can read it then.
            Err(error) => {
                tracing::warn!(%id, %error, "cannot read a changed deployment for a watcher");
                items.push(WatchItem::Missed { count: 1 });
            }
        }
    }
    items.extend(metrics.into_iter().map(|id| WatchItem::Metrics { id }));
    items
}

fn ndjson(item: &WatchItem) -> Bytes {
    let mut line = serde_json::to_vec(item).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}
