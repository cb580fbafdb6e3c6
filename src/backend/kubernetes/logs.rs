//! Pod output into the log pipeline of process replicas.
//!
//! A task follows the deployment's pods as the status watch reports them.
//! Each new pod, and each pod whose container restarted, gets a log stream
//! (`follow=true`). Its bytes go through the same capture (line assembly,
//! level detection, masking) as a process replica's stdout, under the
//! pod's name. When the pod shows restarts that no stream saw,
//! the previous container's output (`previous=true`) is stored first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::AsyncReadExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::Api;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;

use super::connect::Connection;
use super::status::{ClusterStatus, PodSummary};
use crate::logs::{CaptureTarget, LogHub, Stream};

/// Room in each pipe. When the capture falls behind, the stream reader
/// waits, so the output stays in the cluster instead of in the agent.
const PIPE_BYTES: usize = 64 * 1024;

/// The following of one deployment's pods. Dropping it ends the streams.
pub struct PodLogs {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PodLogs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One followed pod: the restart count its stream started at.
struct Followed {
    restarts: u32,
    /// Set once the server accepted the stream; a container that was still
    /// waiting to start had no output to stream.
    opened: Arc<AtomicBool>,
    stream: tokio::task::JoinHandle<()>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        self.stream.abort();
    }
}

/// Starts following the pods that `updates` reports.
pub fn follow_pods(
    connection: &Connection,
    updates: watch::Receiver<Option<ClusterStatus>>,
    hub: LogHub,
    deployment_id: String,
) -> PodLogs {
    let api: Api<Pod> = Api::namespaced(connection.client().clone(), &connection.namespace);
    let task = tokio::spawn(run(api, updates, hub, deployment_id));
    PodLogs { task }
}

async fn run(
    api: Api<Pod>,
    mut updates: watch::Receiver<Option<ClusterStatus>>,
    hub: LogHub,
    deployment_id: String,
) {
    let mut followed: HashMap<String, Followed> = HashMap::new();
    loop {
        let status = updates.borrow_and_update().clone();
        if let Some(status) = status {
            for pod in &status.pods {
                let previous = followed.get(&pod.name);
                if !needs_stream(previous, pod) {
                    continue;
                }
                let missed_previous = match previous {
                    // NOTE: after an agent restart the previous container's
                    // output may already be stored, and is stored again.
                    None => pod.restarts > 0,
                    Some(old) => pod.restarts > old.restarts + 1,
                };
                let target = CaptureTarget {
                    deployment_id: deployment_id.clone(),
                    source: pod.name.clone(),
                    stream: Stream::Stdout,
                    revision: pod.revision.unwrap_or(0),
                    build: false,
                };
                let opened = Arc::new(AtomicBool::new(false));
                let copy = PodStream {
                    api: api.clone(),
                    pod: pod.name.clone(),
                    previous_first: missed_previous,
                    opened: Arc::clone(&opened),
                };
                let stream = tokio::spawn(copy.run(hub.clone(), target));
                followed.insert(
                    pod.name.clone(),
                    Followed {
                        restarts: pod.restarts,
                        opened,
                        stream,
                    },
                );
            }
            followed.retain(|name, _| status.pods.iter().any(|pod| &pod.name == name));
        }
        if updates.changed().await.is_err() {
            return;
        }
    }
}

/// Returns whether a pod needs a new stream: it has none, or its stream ended and
/// either never opened or the container has restarted since.
fn needs_stream(previous: Option<&Followed>, pod: &PodSummary) -> bool {
    match previous {
        None => true,
        Some(old) => {
            old.stream.is_finished()
                && (pod.restarts > old.restarts || !old.opened.load(Ordering::Relaxed))
        }
    }
}

/// One log stream of one pod.
struct PodStream {
    api: Api<Pod>,
    pod: String,
    /// Whether to store the previous container's output before following.
    previous_first: bool,
    opened: Arc<AtomicBool>,
}

impl PodStream {
    /// Copies the pod's output into the log pipeline until the container ends.
    async fn run(self, hub: LogHub, target: CaptureTarget) {
        let (mut writer, reader) = tokio::io::duplex(PIPE_BYTES);
        let capture = hub.capture(target, reader);
        if self.previous_first && self.copy_previous(&mut writer).await.is_err() {
            return;
        }
        self.follow(&mut writer).await;
        // Dropping the writer lets the capture store its last partial line.
        drop(writer);
        let _ = capture.await;
    }

    async fn copy_previous(&self, writer: &mut tokio::io::DuplexStream) -> std::io::Result<()> {
        let params = LogParams {
            previous: true,
            ..LogParams::default()
        };
        match self.api.logs(&self.pod, &params).await {
            Ok(text) => writer.write_all(text.as_bytes()).await,
            Err(error) => {
                tracing::debug!(pod = %self.pod, %error, "no previous container output");
                Ok(())
            }
        }
    }

    async fn follow(&self, writer: &mut tokio::io::DuplexStream) {
        let params = LogParams {
            follow: true,
            ..LogParams::default()
        };
        let mut stream = match self.api.log_stream(&self.pod, &params).await {
            Ok(stream) => stream,
            // A container that waits to start has no output yet; the next
            // status change of the pod tries again.
            Err(error) => {
                tracing::debug!(pod = %self.pod, %error, "cannot follow the pod's output yet");
                return;
            }
        };
        self.opened.store(true, Ordering::Relaxed);
        let mut buffer = vec![0u8; 8192];
        loop {
            let read = match stream.read(&mut buffer).await {
                Ok(0) => return,
                Ok(read) => read,
                Err(error) => {
                    tracing::debug!(pod = %self.pod, %error, "pod log stream ended");
                    return;
                }
            };
            if writer.write_all(&buffer[..read]).await.is_err() {
                // The capture ended (the agent is stopping).
                return;
            }
        }
    }
}
