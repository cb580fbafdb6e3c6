//! Tasks that read the agent's API and send what they read to the event
//! loop as [`Action`]s.
//!
//! Each task owns its client and sends owned values, so nothing is shared
//! with the state. The channel is bounded: a slow frame makes the workers
//! wait rather than queue stale lists. A send that fails means the event
//! loop has ended, and the task ends with it.
//!
//! Changes arrive through the agent's change stream (`/v1/watch`): the
//! follow task keeps the lists and sends the metrics and detail readers a
//! pulse naming the deployment that changed, so an idle dashboard sends next to no
//! requests.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::action::{Action, AgentInfo, Operation, Request, SilenceRequest};
use super::app::{DetailRequest, LogsEffect, LogsWatch, ROW_SERIES};
use super::logs_worker::LogsJob;
use crate::api::client::{encode, Client, ClientError};
use crate::api::wire::{
    ActionResult, AgentStatus, AutoscaleBody, DeployBody, ManifestBody, RedeployBody, RestartBody,
    RollbackBody, ScaleBody, UndeployBody, WatchItem,
};
use crate::model::{DeploymentKey, DeploymentView, SeriesView};
use crate::monitor::alerts::AlertView;

/// Every deployment, undeployed ones too, because the change stream sends
/// those as well; the table hides them unless its filter names them.
const LIST_PATH: &str = "/v1/deployments?status=pending,building,deploying,deployed,degraded,failed,undeploying,undeployed";

/// Pause between two attempts to reach an agent that went away.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// How often the metrics task looks for rows that are due.
const METRICS_INTERVAL: Duration = Duration::from_secs(1);

/// Maximum time between two metric reads of one watched deployment:
/// the sparkline's step, after which its window has moved by one cell.
const METRICS_REFRESH: Duration = Duration::from_secs(30);

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
    /// Unbounded for the reason `operations` is.
    requests: mpsc::UnboundedSender<Request>,
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
        let (pulses, _) = broadcast::channel(PULSES);
        let (requests, queued_requests) = mpsc::unbounded_channel();
        let (logs, wanted_logs) = watch::channel(None);
        let (logs_jobs, queued_logs) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(super::request_worker::run_requests(
                client.clone(),
                queued_requests,
                actions.clone(),
            )),
            tokio::spawn(read_metrics(
                client.clone(),
                wanted,
                pulses.subscribe(),
                actions.clone(),
            )),
            tokio::spawn(super::detail_worker::read_detail(
                client.clone(),
                wanted_detail,
                pulses.subscribe(),
                actions.clone(),
            )),
            tokio::spawn(follow(client.clone(), socket, actions.clone(), pulses)),
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
            requests,
            logs,
            logs_jobs,
        }
    }

    /// Follows, pages or saves what the logs tab requests. A new follow
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

    /// Queues a one-off request; its result arrives as an action.
    pub fn request(&self, request: Request) {
        if let Err(error) = self.requests.send(request) {
            tracing::error!(request = ?error.0, "the requests task has ended; the request is dropped");
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

/// A notice from the follow task to the other readers: something of this
/// deployment changed, so what they show of it may be stale.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Pulse {
    /// The deployment's record or its supervisor's view changed.
    Deployment(DeploymentKey),
    /// New metric samples were stored.
    Metrics(DeploymentKey),
    /// An event was recorded; `alerts` when it is about alerts or silences.
    Event {
        key: Option<DeploymentKey>,
        alerts: bool,
    },
    /// Notices were lost: everything may be stale.
    Everything,
}

/// Pulses kept for a slow reader; a miss makes it read everything again.
const PULSES: usize = 1024;

/// How long the follow task gathers changes before it sends the list, so
/// that a rollout's burst of changes redraws the table once.
const SEND_DELAY: Duration = Duration::from_millis(100);

/// How often the lists are read again in full even when the stream is
/// quiet. The stream carries every change the store and the supervisors
/// announce, so this only bounds how long an unannounced change (an alert
/// turning pending writes no event) stays off screen.
const RESYNC_INTERVAL: Duration = Duration::from_secs(15);

/// Follows the agent's change stream and keeps the deployments and alerts
/// lists current; reconnects each [`RECONNECT_DELAY`] while the agent is
/// away.
#[tracing::instrument(skip_all)]
async fn follow(
    client: Client,
    socket: String,
    actions: mpsc::Sender<Action>,
    pulses: broadcast::Sender<Pulse>,
) {
    let mut connected = false;
    loop {
        let reason = match follow_once(&client, &socket, &actions, &pulses, &mut connected).await {
            Ok(()) => return,
            Err(reason) => reason,
        };
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
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// The lists that the follow task keeps between two sends.
#[derive(Default)]
struct Lists {
    deployments: HashMap<String, DeploymentView>,
    deployments_changed: bool,
    alerts_stale: bool,
    due: Option<Instant>,
}

impl Lists {
    fn replace(&mut self, views: Vec<DeploymentView>) {
        self.deployments = views.into_iter().map(|v| (v.id.clone(), v)).collect();
        self.mark(|lists| lists.deployments_changed = true);
    }

    fn mark(&mut self, change: fn(&mut Self)) {
        change(self);
        self.due.get_or_insert_with(|| Instant::now() + SEND_DELAY);
    }

    fn key_of(&self, id: &str) -> Option<DeploymentKey> {
        self.deployments.get(id).map(DeploymentView::key)
    }

    /// Returns the deployments in the order the API lists them.
    fn sorted(&self) -> Vec<DeploymentView> {
        let mut views: Vec<DeploymentView> = self.deployments.values().cloned().collect();
        views.sort_by(|a, b| (&a.name, &a.environment).cmp(&(&b.name, &b.environment)));
        views
    }
}

/// Opens the stream, reads the lists, then applies the stream until it
/// ends. Returns `Ok` when the dashboard closed, and `Err` with the reason
/// when the agent went away.
async fn follow_once(
    client: &Client,
    socket: &str,
    actions: &mpsc::Sender<Action>,
    pulses: &broadcast::Sender<Pulse>,
    connected: &mut bool,
) -> Result<(), String> {
    // The stream opens first, so that no change falls between it and the
    // lists read next.
    let mut stream = match client.get_lines("/v1/watch").await {
        Ok(stream) => stream,
        Err(error) => return Err(error.to_string()),
    };
    let mut lists = Lists::default();
    let batch = read_lists(client, socket, connected, &mut lists).await?;
    if !send_all(actions, batch).await {
        return Ok(());
    }
    // The readers' data may be older than the reconnection.
    let _ = pulses.send(Pulse::Everything);

    let mut resync = tokio::time::interval(RESYNC_INTERVAL);
    resync.set_missed_tick_behavior(MissedTickBehavior::Delay);
    resync.reset();
    loop {
        let due = lists.due;
        let send = async move {
            match due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = stream.next_line() => {
                let line = match line {
                    Ok(Some(line)) => line,
                    Ok(None) => return Err(format!("the agent at {socket} ended the change stream; it stopped or restarts")),
                    Err(error) => return Err(error.to_string()),
                };
                apply_line(&line, &mut lists, pulses);
            }
            () = send => {
                if !send_lists(client, actions, &mut lists).await? {
                    return Ok(());
                }
            }
            _ = resync.tick() => {
                let batch = read_lists(client, socket, connected, &mut lists).await?;
                if !send_all(actions, batch).await {
                    return Ok(());
                }
            }
        }
    }
}

/// Applies one line of the stream to the lists and pulses the other readers.
fn apply_line(line: &[u8], lists: &mut Lists, pulses: &broadcast::Sender<Pulse>) {
    let item = match serde_json::from_slice::<WatchItem>(line) {
        Ok(item) => item,
        Err(error) => {
            // A newer agent may send kinds this dashboard does not know.
            tracing::debug!(%error, "skipping a line of the change stream");
            return;
        }
    };
    let pulse = match item {
        WatchItem::Deployment { deployment } => {
            let key = deployment.key();
            lists.deployments.insert(deployment.id.clone(), *deployment);
            lists.mark(|lists| lists.deployments_changed = true);
            Some(Pulse::Deployment(key))
        }
        WatchItem::Removed { id } => {
            let key = lists.key_of(&id);
            lists.deployments.remove(&id);
            lists.mark(|lists| lists.deployments_changed = true);
            key.map(Pulse::Deployment)
        }
        WatchItem::Event { event } => {
            let alerts = event.action.starts_with("alert");
            if alerts {
                lists.mark(|lists| lists.alerts_stale = true);
            }
            Some(Pulse::Event {
                key: event.deployment,
                alerts,
            })
        }
        WatchItem::Metrics { id } => lists.key_of(&id).map(Pulse::Metrics),
        WatchItem::Missed { count } => {
            tracing::info!(
                count,
                "the change stream missed notices; reading everything again"
            );
            lists.mark(|lists| {
                lists.deployments_changed = true;
                lists.alerts_stale = true;
            });
            Some(Pulse::Everything)
        }
    };
    if let Some(pulse) = pulse {
        // Without readers (no detail view, no rows) the pulse is not needed.
        let _ = pulses.send(pulse);
    }
}

/// Sends what changed since the last send. Returns `Ok(false)` when the
/// dashboard closed.
async fn send_lists(
    client: &Client,
    actions: &mpsc::Sender<Action>,
    lists: &mut Lists,
) -> Result<bool, String> {
    lists.due = None;
    let mut batch = Vec::new();
    if std::mem::take(&mut lists.deployments_changed) {
        batch.push(Action::Deployments(lists.sorted()));
    }
    if std::mem::take(&mut lists.alerts_stale) {
        batch.push(read_alerts(client).await?);
    }
    Ok(send_all(actions, batch).await)
}

async fn send_all(actions: &mpsc::Sender<Action>, batch: Vec<Action>) -> bool {
    for action in batch {
        if let Action::FetchFailed { what, message } = &action {
            tracing::warn!(what, %message, "a read failed");
        }
        if actions.send(action).await.is_err() {
            tracing::debug!("the dashboard closed; the change reader stops");
            return false;
        }
    }
    true
}

/// Reads the agent's status after a (re)connection, and the deployments
/// and alerts lists. Returns `Err` with the reason when the agent is
/// unreachable.
async fn read_lists(
    client: &Client,
    socket: &str,
    connected: &mut bool,
    lists: &mut Lists,
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
    match classify(client.get::<Vec<DeploymentView>>(LIST_PATH).await) {
        Read::Data(list) => {
            lists.replace(list);
            lists.due = None;
            lists.deployments_changed = false;
            batch.push(Action::Deployments(lists.sorted()));
        }
        Read::Failed(message) => batch.push(failed("the deployments", message)),
        Read::Unreachable(reason) => return Err(reason),
    }
    let alerts = read_alerts(client).await?;
    if matches!(alerts, Action::Alerts(_)) {
        lists.alerts_stale = false;
    }
    batch.push(alerts);
    Ok(batch)
}

/// Reads the alerts list. Returns the action to send, or `Err` with the
/// reason when the agent is unreachable.
async fn read_alerts(client: &Client) -> Result<Action, String> {
    match classify(client.get::<Vec<AlertView>>("/v1/alerts").await) {
        Read::Data(list) => Ok(Action::Alerts(list)),
        Read::Failed(message) => Ok(failed("the alerts", message)),
        Read::Unreachable(reason) => Err(reason),
    }
}

fn failed(what: &str, message: String) -> Action {
    Action::FetchFailed {
        what: what.to_owned(),
        message,
    }
}

/// Reads the row metrics of the watched deployments: when a deployment
/// starts being watched, when the agent stores new samples of it, and at
/// least every [`METRICS_REFRESH`] so that the sparkline moves on with
/// time. Requests go one at a time, so one dashboard has at most one
/// metrics request in flight.
#[tracing::instrument(skip_all)]
async fn read_metrics(
    client: Client,
    mut wanted: watch::Receiver<Vec<DeploymentKey>>,
    mut pulses: broadcast::Receiver<Pulse>,
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
            pulse = pulses.recv() => match pulse {
                Ok(Pulse::Metrics(key)) => {
                    last_read.remove(&key);
                }
                Ok(Pulse::Everything) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    last_read.clear();
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        let keys = wanted.borrow_and_update().clone();
        last_read.retain(|key, _| keys.contains(key));
        for key in keys {
            let due = last_read
                .get(&key)
                .is_none_or(|read| read.elapsed() >= METRICS_REFRESH);
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
                // The follow task reports the lost connection.
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
        let finished = match result {
            Err(ClientError::Api { status, message })
                if matches!(operation, Operation::Scale { .. })
                    && rejected_for_autoscaling(status, &message) =>
            {
                Action::ScaleRejected { operation, message }
            }
            result => {
                let result = result
                    .map(|_| operation.done())
                    .map_err(|error| error.to_string());
                Action::OperationFinished { operation, result }
            }
        };
        if actions.send(finished).await.is_err() {
            return;
        }
    }
}

/// Returns whether the agent rejected a scale because autoscaling sets the
/// count. The agent sends a conflict with the engine's message for it, and
/// a test below ties the prefix to the engine's wording.
fn rejected_for_autoscaling(status: u16, message: &str) -> bool {
    status == 409 && message.starts_with("autoscaling is on for ")
}

/// Posts one operation; the body fields are those the CLI sends.
async fn send_operation(client: &Client, operation: &Operation) -> Result<String, ClientError> {
    let key = operation.key();
    let path = |verb: &str| format!("/v1/deployments/{}/{verb}", encode(&key.name));
    let environment = Some(key.environment.clone());
    let result: ActionResult = match operation {
        Operation::Scale {
            replicas, force, ..
        } => {
            let body = ScaleBody {
                environment,
                replicas: i64::from(*replicas),
                force: *force,
                ..ScaleBody::default()
            };
            client.post(&path("scale"), &body).await?
        }
        Operation::Autoscale { setting, .. } => {
            let body = AutoscaleBody {
                environment,
                setting: setting.as_ref().map(|setting| setting.to_manifest()),
                wait: false,
                timeout_ms: None,
            };
            client.put(&path("autoscale"), &body).await?
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
        Operation::Deploy { manifest, .. } => {
            let body = DeployBody {
                manifest: ManifestBody {
                    text: manifest.clone(),
                    origin: "dashboard editor".to_owned(),
                    base_dir: working_directory(),
                },
                ..DeployBody::default()
            };
            client.post("/v1/deployments", &body).await?
        }
        Operation::Edit { manifest, .. } => {
            let body = RedeployBody {
                environment,
                manifest: Some(ManifestBody {
                    text: manifest.clone(),
                    origin: "dashboard editor".to_owned(),
                    base_dir: working_directory(),
                }),
                ..RedeployBody::default()
            };
            client.post(&path("redeploy"), &body).await?
        }
        Operation::Restart { replica, .. } => {
            let body = RestartBody {
                environment,
                replica: *replica,
                ..RestartBody::default()
            };
            client.post(&path("restart"), &body).await?
        }
        Operation::Silence(request) => {
            let SilenceRequest {
                rule,
                duration,
                comment,
                ..
            } = request.as_ref();
            let body = serde_json::json!({
                "environment": environment,
                "rule": rule,
                "for": duration,
                "comment": comment,
            });
            let _: serde_json::Value = client.post(&path("silences"), &body).await?;
            return Ok(format!("{rule} silenced for {duration}"));
        }
        Operation::EndSilence { id, .. } => {
            let route = format!(
                "{}/{}?env={}",
                path("silences"),
                encode(id),
                encode(&key.environment)
            );
            client.delete(&route).await?;
            return Ok(format!("silence {id} ended"));
        }
        Operation::Acknowledge { rule, .. } => {
            let route = format!("{}/{}/ack", path("alerts"), encode(rule));
            let body = serde_json::json!({ "environment": environment });
            client.post_unit(&route, &body).await?;
            return Ok(format!("{rule} acknowledged"));
        }
    };
    Ok(format!("revision {}", result.deployment.revision))
}

/// Returns the dashboard's working directory. Relative paths in a
/// manifest written in the editor start from it, as they start from a
/// manifest file's directory in the CLI.
fn working_directory() -> Option<String> {
    std::env::current_dir()
        .ok()
        .map(|dir| dir.display().to_string())
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
    use crate::model::DeploymentStatus;

    #[test]
    fn metrics_path_encodes_names() {
        let path = metrics_path(&DeploymentKey::new("web", "staging"));
        assert_eq!(
            path,
            "/v1/deployments/web/metrics?env=staging&since=5m&step=30s&metric=cpu_percentage%2Cmemory_usage%2Crequests_per_second"
        );
    }

    fn view(id: &str, name: &str) -> DeploymentView {
        let json = serde_json::json!({
            "id": id, "name": name, "environment": "staging", "backend": "process",
            "status": "deployed", "health": "healthy", "version": "1", "revision": 1,
            "replicas": {"desired": 1, "ready": 1}, "endpoints": [],
            "createdAt": "2026-12-05T00:00:00Z", "updatedAt": "2026-12-05T00:00:00Z",
        });
        serde_json::from_value(json).expect("a deployment view")
    }

    fn line(item: &WatchItem) -> Vec<u8> {
        serde_json::to_vec(item).expect("serialise")
    }

    #[test]
    fn stream_lines_update_the_lists_and_pulse() {
        let (pulses, mut pulsed) = broadcast::channel(16);
        let mut lists = Lists::default();
        lists.replace(vec![view("b", "web"), view("a", "api")]);
        lists.deployments_changed = false;
        lists.due = None;

        let mut scaled = view("b", "web");
        scaled.replicas.desired = 3;
        apply_line(
            &line(&WatchItem::Deployment {
                deployment: Box::new(scaled),
            }),
            &mut lists,
            &pulses,
        );
        let web = DeploymentKey::new("web", "staging");
        assert_eq!(pulsed.try_recv(), Ok(Pulse::Deployment(web.clone())));
        assert!(lists.deployments_changed);
        assert!(lists.due.is_some());
        let sorted = lists.sorted();
        assert_eq!(sorted[0].name, "api");
        assert_eq!(sorted[1].replicas.desired, 3);

        apply_line(
            &line(&WatchItem::Metrics { id: "b".into() }),
            &mut lists,
            &pulses,
        );
        assert_eq!(pulsed.try_recv(), Ok(Pulse::Metrics(web.clone())));
        assert!(!lists.alerts_stale);

        apply_line(
            &line(&WatchItem::Removed { id: "a".into() }),
            &mut lists,
            &pulses,
        );
        assert_eq!(lists.sorted().len(), 1);
        assert_eq!(
            pulsed.try_recv(),
            Ok(Pulse::Deployment(DeploymentKey::new("api", "staging")))
        );

        apply_line(&line(&WatchItem::Missed { count: 3 }), &mut lists, &pulses);
        assert!(lists.alerts_stale);
        assert_eq!(pulsed.try_recv(), Ok(Pulse::Everything));

        apply_line(b"{\"type\":\"fromTheFuture\"}", &mut lists, &pulses);
        assert!(pulsed.try_recv().is_err(), "unknown kinds are skipped");
    }

    #[test]
    fn autoscaling_rejection_matches_engine() {
        let rejection = crate::engine::EngineError::AutoscalingOn {
            name: "web".to_owned(),
            min: 1,
            max: 5,
        };
        assert!(rejected_for_autoscaling(409, &rejection.to_string()));
        let undeployed = crate::engine::EngineError::Undeployed {
            name: "web".to_owned(),
        };
        assert!(!rejected_for_autoscaling(409, &undeployed.to_string()));
        assert!(!rejected_for_autoscaling(400, &rejection.to_string()));
    }

    #[test]
    fn list_path_names_every_status() {
        let (_, query) = LIST_PATH.split_once("status=").expect("a status list");
        let statuses: Vec<DeploymentStatus> = query
            .split(',')
            .map(|name| name.parse().expect("a status name"))
            .collect();
        assert_eq!(statuses, DeploymentStatus::ALL);
    }
}
