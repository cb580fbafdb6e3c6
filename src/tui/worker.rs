//! Tasks that read the agent's API and send what they read to the event
//! loop as [`Action`]s.
//!
//! Each task owns its client and sends owned values, so nothing is shared
//! with the state. The channel is bounded: a slow frame makes the workers
//! wait rather than queue stale lists. A send that fails means the event
//! loop has ended, and the task ends with it.
//!
//! NOTE: the agent has no event stream yet, so changes arrive by polling
//! once a second, and a status that flips and flips back within a second
//! is not seen.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::action::{Action, AgentInfo, Operation};
use super::app::{DetailRequest, LogsEffect, LogsWatch, ROW_SERIES};
use super::logs_worker::LogsJob;
use crate::api::client::{encode, Client, ClientError};
use crate::api::wire::{
    ActionResult, AgentStatus, RedeployBody, RollbackBody, ScaleBody, UndeployBody,
};
use crate::model::{DeploymentKey, DeploymentView, SeriesView};
use crate::monitor::alerts::AlertView;

/// How often the deployments and alerts lists are read.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest time between two metric reads of one deployment.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// The window and step of the row metrics: five minutes in ten steps, one
/// per cell of the sparkline, each the average of about three samples at
/// the default ten-second collection interval.
const METRICS_QUERY: &str = "since=5m&step=30s";

/// The running worker tasks; dropping it stops them.
pub struct Workers {
    tasks: Vec<JoinHandle<()>>,
    metrics: watch::Sender<Vec<DeploymentKey>>,
    /// Unbounded because operations come from key presses, which a person
    /// makes slowly enough, and a full queue would drop a confirmed change.
    operations: mpsc::UnboundedSender<Operation>,
    detail: watch::Sender<Option<DetailRequest>>,
    logs: watch::Sender<Option<LogsWatch>>,
    /// Unbounded for the same reason as `operations`: jobs come from key
    /// presses, and the tab waits for each one it sent.
    logs_jobs: mpsc::UnboundedSender<LogsJob>,
}

impl Workers {
    /// Starts the poller, the metrics reader and the operations task on the
    /// current runtime.
    pub fn start(client: Client, socket: String, actions: mpsc::Sender<Action>) -> Self {
        let (metrics, wanted) = watch::channel(Vec::new());
        let (operations, queued) = mpsc::unbounded_channel();
        let (detail, wanted_detail) = watch::channel(None);
        let (logs, wanted_logs) = watch::channel(None);
        let (logs_jobs, queued_logs) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(poll(client.clone(), socket, actions.clone())),
            tokio::spawn(read_metrics(client.clone(), wanted, actions.clone())),
            tokio::spawn(super::detail_worker::read_detail(
                client.clone(),
                wanted_detail,
                actions.clone(),
            )),
            tokio::spawn(super::logs_worker::follow_logs(
                client.clone(),
                wanted_logs,
                actions.clone(),
            )),
            tokio::spawn(super::logs_worker::run_jobs(
                client.clone(),
                queued_logs,
                actions.clone(),
            )),
            tokio::spawn(run_operations(client, queued, actions)),
        ];
        Self {
            tasks,
            metrics,
            operations,
            detail,
            logs,
            logs_jobs,
        }
    }

    /// Follows, pages or saves what the logs tab asks for. A new follow
    /// replaces the previous one.
    pub fn logs(&self, effect: LogsEffect) {
        let job = match effect {
            LogsEffect::Watch(watch) => {
                self.logs.send_replace(watch);
                return;
            }
            LogsEffect::Fetch(fetch) => LogsJob::Fetch(fetch),
            LogsEffect::Save(save) => LogsJob::Save(save),
        };
        if let Err(error) = self.logs_jobs.send(job) {
            tracing::error!(job = ?error.0, "the logs task has ended; the request is dropped");
        }
    }

    /// Queues a change for the agent; its result arrives as
    /// [`Action::OperationFinished`].
    pub fn execute(&self, operation: Operation) {
        tracing::info!(?operation, "sending an operation to the agent");
        if let Err(error) = self.operations.send(operation) {
            // The task ends only when the workers are dropped, which
            // happens after the event loop has ended.
            tracing::error!(operation = ?error.0, "the operations task has ended; the operation is dropped");
        }
    }

    /// Replaces what the detail view reads; as with the metrics, only the
    /// latest request counts.
    pub fn watch_detail(&self, request: Option<DetailRequest>) {
        self.detail.send_replace(request);
    }

    /// Replaces the deployments whose metrics are read. Only the latest set
    /// counts, so sets that follow each other quickly collapse into one.
    pub fn watch_metrics(&self, keys: Vec<DeploymentKey>) {
        self.metrics.send_replace(keys);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Outcome of one read, for the connection state.
pub(super) enum Read<T> {
    Data(T),
    /// The agent responded with an error; the connection is fine.
    Failed(String),
    Unreachable(String),
}

pub(super) fn classify<T>(result: Result<T, ClientError>) -> Read<T> {
    match result {
        Ok(value) => Read::Data(value),
        Err(error) if error.is_unreachable() => Read::Unreachable(error.to_string()),
        Err(error) => Read::Failed(error.to_string()),
    }
}

/// Reads the deployments and alerts lists every [`POLL_INTERVAL`], and the
/// agent's status after every (re)connection.
#[tracing::instrument(skip_all)]
async fn poll(client: Client, socket: String, actions: mpsc::Sender<Action>) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut connected = false;
    // The last failure logged, so that one that repeats every second is
    // logged once.
    let mut last_failure = String::new();
    loop {
        interval.tick().await;
        match poll_once(&client, &socket, &mut connected).await {
            Ok(batch) => {
                for action in batch {
                    if let Action::FetchFailed { what, message } = &action {
                        if *message != last_failure {
                            tracing::warn!(what, %message, "a read failed");
                            last_failure.clone_from(message);
                        }
                    }
                    if actions.send(action).await.is_err() {
                        tracing::debug!("the dashboard closed; the poller stops");
                        return;
                    }
                }
            }
            Err(reason) => {
                if connected {
                    tracing::warn!(%reason, "lost the agent");
                }
                connected = false;
                if actions
                    .send(Action::ConnectionLost { reason })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Reads the lists once, and the agent's status after a (re)connection.
/// Returns `Err` with the reason when the agent is unreachable.
async fn poll_once(
    client: &Client,
    socket: &str,
    connected: &mut bool,
) -> Result<Vec<Action>, String> {
    let mut batch = Vec::new();
    if !*connected {
        match classify(client.get::<AgentStatus>("/v1/agent").await) {
            Read::Data(status) => {
                tracing::info!(pid = status.pid, "connected to the agent");
                batch.push(Action::ConnectionRestored);
                batch.push(Action::AgentInfo(AgentInfo {
                    socket: socket.to_owned(),
                    home: status.home,
                    version: status.version,
                    pid: status.pid,
                }));
                *connected = true;
            }
            Read::Failed(message) => batch.push(failed("the agent's status", message)),
            Read::Unreachable(reason) => return Err(reason),
        }
    }
    match classify(client.get::<Vec<DeploymentView>>("/v1/deployments").await) {
        Read::Data(list) => batch.push(Action::Deployments(list)),
        Read::Failed(message) => batch.push(failed("the deployments", message)),
        Read::Unreachable(reason) => return Err(reason),
    }
    match classify(client.get::<Vec<AlertView>>("/v1/alerts").await) {
        Read::Data(list) => batch.push(Action::Alerts(list)),
        Read::Failed(message) => batch.push(failed("the alerts", message)),
        Read::Unreachable(reason) => return Err(reason),
    }
    Ok(batch)
}

fn failed(what: &str, message: String) -> Action {
    Action::FetchFailed {
        what: what.to_owned(),
        message,
    }
}

/// Reads the row metrics of the watched deployments, each at most once per
/// [`METRICS_INTERVAL`]. Requests go one at a time, so one dashboard has at
/// most one metrics request in flight.
#[tracing::instrument(skip_all)]
async fn read_metrics(
    client: Client,
    mut wanted: watch::Receiver<Vec<DeploymentKey>>,
    actions: mpsc::Sender<Action>,
) {
    let mut interval = tokio::time::interval(METRICS_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_read: HashMap<DeploymentKey, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            changed = wanted.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let keys = wanted.borrow_and_update().clone();
        last_read.retain(|key, _| keys.contains(key));
        for key in keys {
            let due = last_read
                .get(&key)
                .is_none_or(|read| read.elapsed() >= METRICS_INTERVAL);
            if !due {
                continue;
            }
            last_read.insert(key.clone(), Instant::now());
            match classify(client.get::<Vec<SeriesView>>(&metrics_path(&key)).await) {
                Read::Data(series) => {
                    if actions.send(Action::Metrics { key, series }).await.is_err() {
                        return;
                    }
                }
                // A deployment removed since the list was read, or without
                // collection yet: its row shows dashes.
                Read::Failed(message) => tracing::debug!(%key, %message, "no metrics"),
                // The poller reports the lost connection.
                Read::Unreachable(_) => break,
            }
        }
    }
}

/// Sends queued operations to the agent one at a time, in order, so that
/// `+ + -` arrives as pressed.
#[tracing::instrument(skip_all)]
async fn run_operations(
    client: Client,
    mut queued: mpsc::UnboundedReceiver<Operation>,
    actions: mpsc::Sender<Action>,
) {
    while let Some(operation) = queued.recv().await {
        let result = send_operation(&client, &operation).await;
        match &result {
            Ok(summary) => tracing::info!(?operation, %summary, "the agent accepted"),
            Err(error) => tracing::warn!(?operation, %error, "the agent rejected or failed"),
        }
        let result = result
            .map(|_| operation.done())
            .map_err(|error| error.to_string());
        let finished = Action::OperationFinished { operation, result };
        if actions.send(finished).await.is_err() {
            return;
        }
    }
}

/// Posts one operation; the body fields are those the CLI sends.
async fn send_operation(client: &Client, operation: &Operation) -> Result<String, ClientError> {
    let key = operation.key();
    let path = |verb: &str| format!("/v1/deployments/{}/{verb}", encode(&key.name));
    let environment = Some(key.environment.clone());
    let result: ActionResult = match operation {
        Operation::Scale { replicas, .. } => {
            let body = ScaleBody {
                environment,
                replicas: i64::from(*replicas),
                ..ScaleBody::default()
            };
            client.post(&path("scale"), &body).await?
        }
        Operation::Rollback { to_revision, .. } => {
            let body = RollbackBody {
                environment,
                to_revision: *to_revision,
                ..RollbackBody::default()
            };
            client.post(&path("rollback"), &body).await?
        }
        Operation::Redeploy { .. } => {
            let body = RedeployBody {
                environment,
                ..RedeployBody::default()
            };
            client.post(&path("redeploy"), &body).await?
        }
        Operation::Undeploy { .. } => {
            let body = UndeployBody {
                environment,
                ..UndeployBody::default()
            };
            client.post(&path("undeploy"), &body).await?
        }
    };
    Ok(format!("revision {}", result.deployment.revision))
}

/// Builds the API path of a row's metrics request.
pub fn metrics_path(key: &DeploymentKey) -> String {
    format!(
        "/v1/deployments/{}/metrics?env={}&{METRICS_QUERY}&metric={}",
        encode(&key.name),
        encode(&key.environment),
        encode(&ROW_SERIES.join(","))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_path_encodes_names() {
        let path = metrics_path(&DeploymentKey::new("web", "staging"));
        assert_eq!(
            path,
            "/v1/deployments/web/metrics?env=staging&since=5m&step=30s&metric=cpu_percentage%2Cmemory_usage%2Crequests_per_second"
        );
    }
}
