//! A fake Kubernetes API server for tests, speaking the real protocol over
//! plain HTTP on 127.0.0.1 (port 0), so that kube-rs and kubectl talk to it
//! as to a cluster.
//!
//! It serves:
//! - discovery: `/version`, `/api`, `/apis`, `/apis/GROUP` and the resource
//!   lists of `v1`, `apps/v1` and `autoscaling/v2`, in the legacy
//!   (unaggregated) form, which clients fall back to;
//! - namespaces, pods, services, secrets, events, deployments and
//!   horizontal pod autoscalers: create, get, list, update, patch, delete
//!   and deletecollection, with label and field selectors, `limit` and
//!   `continue`, `dryRun`, a delete's uid precondition, and the `scale`
//!   and `status` subresources;
//! - server-side apply (`application/apply-patch+yaml` with `fieldManager`
//!   and `force`) under the field-ownership model described in
//!   [`patch`], JSON merge patches, and strategic merge patches
//!   approximately (lists of objects merge by `name` and similar keys);
//! - watches with resource versions, bookmarks, `timeoutSeconds`,
//!   `sendInitialEvents`, and a 410 `Expired` event for a resource version
//!   older than the kept history ([`FakeApiServer::compact`] drops it);
//! - pod logs with `follow`, `previous`, `tailLines` and `timestamps`;
//! - the resource metrics API (`metrics.k8s.io/v1beta1` pods, see
//!   [`metrics`]) from usage scripted per image, which
//!   [`FakeApiServer::set_metrics_api`] can unregister or make fail with 503;
//! - a scripted controller (see [`controller`]) that runs Deployments'
//!   pods as ready, unready, crash-looping, OOM-killed or failing to pull,
//!   per image, and writes Deployment status, conditions and Events, and
//!   the HorizontalPodAutoscaler status a test scripts;
//! - scripted 403s ([`FakeApiServer::forbid`]) and a required bearer token
//!   ([`FakeApiServer::require_token`]), which answers 401 otherwise;
//! - HTTPS with mutual TLS ([`FakeApiServer::start_tls`], see [`tls`]).
//!
//! Every request is recorded (method, path, query, content type, body),
//! so tests can check exactly what a client sent.
//!
//! What it does not cover: scheduling (every pod lands on `fake-node` at
//! once), admission and validation beyond names, kinds and namespaces
//! (any field is stored as sent), defaulting beyond a few fields, real
//! probes (readiness is scripted), ReplicaSets, the HPA controller (its
//! status is scripted and it scales nothing), node metrics, OpenAPI
//! documents (`/openapi/v2` is an empty
//! document, so kubectl's client-side validation checks nothing), aggregated discovery, Table output,
//! graceful deletion and finalizers (deletes take effect at once), JSON
//! patches, YAML request bodies, list-merging in server-side apply (lists
//! are atomic), label selector changes on watches (an object that stops
//! matching sends nothing, where a real server sends DELETED),
//! authentication by client certificate (it is recorded, not required), and
//! RBAC beyond the scripted 403s.

#![allow(dead_code)]

pub mod controller;
pub mod logs;
pub mod metrics;
pub mod patch;
pub mod resources;
pub mod selector;
pub mod server;
pub mod store;
pub mod tls;
pub mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot, Notify};

pub use controller::PodBehavior;
use logs::{LogEvent, Logs};
pub use metrics::{MetricsApi, Usage};
use resources::ResourceType;
use store::{Change, Store};

/// Settings of one fake server.
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// Time between bookmarks on watches that allow them.
    pub bookmark_interval: Duration,
    /// Changes kept for watches to resume from; older resource versions
    /// get 410 Gone.
    pub history_limit: usize,
    /// Time a new pod stays `Pending` before its script starts.
    pub pod_start_delay: Duration,
    /// Time between restarts of a crash-looping pod.
    pub crash_interval: Duration,
    /// Time between controller passes when nothing wakes it.
    pub controller_tick: Duration,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            bookmark_interval: Duration::from_secs(1),
            history_limit: 10_000,
            pod_start_delay: Duration::from_millis(100),
            crash_interval: Duration::from_millis(500),
            controller_tick: Duration::from_millis(100),
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    /// The body parsed as JSON, if it was JSON.
    pub body: Option<Value>,
    pub body_text: String,
    pub authorization: Option<String>,
    pub user_agent: Option<String>,
    /// The DER of the client certificate of the connection, over TLS.
    pub client_certificate: Option<Vec<u8>>,
}

impl RecordedRequest {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this request is a watch.
    pub fn is_watch(&self) -> bool {
        self.method == "GET" && matches!(self.query_value("watch"), Some("true" | "1"))
    }
}

/// A scripted 403 for one verb on one resource (`pods/log` for a
/// subresource), in one namespace or, with `None`, in all.
#[derive(Debug, Clone)]
pub struct ForbiddenRule {
    pub verb: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub user: String,
}

/// Everything behind the server's lock.
pub struct State {
    pub store: Store,
    pub requests: Vec<RecordedRequest>,
    pub forbidden: Vec<ForbiddenRule>,
    pub token: Option<String>,
    pub behaviors: HashMap<String, PodBehavior>,
    pub log_scripts: HashMap<String, Vec<String>>,
    pub logs: Logs,
    pub controller: controller::ControllerState,
    pub options: FakeOptions,
    pub log_events: broadcast::Sender<LogEvent>,
    /// Each image's container usage, as the metrics API reports it.
    pub usage: HashMap<String, Usage>,
    pub metrics_api: MetricsApi,
    next_ip: u32,
}

impl State {
    pub fn next_cluster_ip(&mut self) -> String {
        self.next_ip += 1;
        format!("10.96.{}.{}", self.next_ip / 250, self.next_ip % 250 + 1)
    }

    /// Deletes an object and what a real cluster would remove with it: a
    /// Deployment's pods, a pod's logs, a namespace's contents.
    pub fn delete_cascading(
        &mut self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let deleted = self.store.delete(resource, namespace, name)?;
        let uid = deleted["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match resource.kind {
            "Deployment" => {
                let pods = resources::by_kind("Pod")?;
                let owned: Vec<String> = self
                    .store
                    .list(pods, Some(namespace))
                    .into_iter()
                    .filter(|pod| pod["metadata"]["ownerReferences"][0]["uid"] == uid.as_str())
                    .map(store::name_of)
                    .collect();
                for pod in owned {
                    self.delete_cascading(pods, namespace, &pod);
                }
            }
            "Pod" => {
                let events = self.log_events.clone();
                self.logs.remove_pod(namespace, name, &events);
                controller::forget_pod(self, &uid);
            }
            "Namespace" => {
                for resource in resources::RESOURCES.iter().filter(|r| r.namespaced) {
                    let names: Vec<String> = self
                        .store
                        .list(resource, Some(name))
                        .into_iter()
                        .map(store::name_of)
                        .collect();
                    for object in names {
                        self.delete_cascading(resource, name, &object);
                    }
                }
            }
            _ => {}
        }
        Some(deleted)
    }
}

/// What the server's tasks share.
pub struct Shared {
    state: Mutex<State>,
    pub changes: broadcast::Sender<Change>,
    pub log_events: broadcast::Sender<LogEvent>,
    /// Wakes the controller after a write.
    pub wake: Notify,
    pub address: String,
    pub options: FakeOptions,
}

impl Shared {
    /// Locks the state; a panic in another holder does not hide the state
    /// from the test that reads it afterwards.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The current time as the API server writes timestamps (seconds).
pub fn now() -> String {
    let time = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The current time with nanoseconds, as log timestamps have it.
pub fn now_nanos() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A running fake API server. It runs on its own thread and runtime, so
/// both synchronous tests (running kubectl) and async tests can use it;
/// dropping it stops the server.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    tls: Option<tls::FakeTls>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApiServer {
    pub fn start() -> Self {
        Self::start_with(FakeOptions::default())
    }

    pub fn start_with(options: FakeOptions) -> Self {
        Self::launch(options, None)
    }

    /// Starts a server that speaks HTTPS with a certificate of its own
    /// test CA, and accepts client certificates that CA issued
    /// ([`Self::client_certificate`]).
    pub fn start_tls() -> Self {
        Self::launch(FakeOptions::default(), Some(tls::FakeTls::new()))
    }

    fn launch(options: FakeOptions, tls: Option<tls::FakeTls>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind the fake API server to 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("make the fake API server's listener non-blocking");
        let address = listener
            .local_addr()
            .expect("read the fake API server's address");
        let (changes, _) = broadcast::channel(4096);
        let (log_events, _) = broadcast::channel(4096);
        let state = State {
            store: Store::new(options.history_limit, changes.clone()),
            requests: Vec::new(),
            forbidden: Vec::new(),
            token: None,
            behaviors: HashMap::new(),
            log_scripts: HashMap::new(),
            logs: Logs::default(),
            controller: controller::ControllerState::default(),
            options: options.clone(),
            log_events: log_events.clone(),
            usage: HashMap::new(),
            metrics_api: MetricsApi::default(),
            next_ip: 0,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changes,
            log_events,
            wake: Notify::new(),
            address: address.to_string(),
            options,
        });
        let namespaces = resources::by_kind("Namespace").expect("namespaces are served");
        for namespace in ["default", "kube-system"] {
            let object = json!({"metadata": {"name": namespace}, "status": {"phase": "Active"}});
            shared.lock().store.create(namespaces, object, &now());
        }

        let (shutdown, stopped) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        let acceptor = tls.as_ref().map(tls::FakeTls::acceptor);
        let thread = std::thread::spawn(move || run(task_shared, listener, acceptor, stopped));
        FakeApiServer {
            shared,
            address,
            tls,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// Issues a client certificate that this server accepts, for a server
    /// started with [`Self::start_tls`].
    pub fn client_certificate(&self, name: &str) -> tls::IssuedCertificate {
        self.tls
            .as_ref()
            .expect("a server started with start_tls")
            .client_certificate(name)
    }

    /// Builds the `cluster` entry of a kubeconfig for this server, indented
    /// as a list item's field.
    pub fn kubeconfig_cluster(&self) -> String {
        let mut cluster = format!("    server: {}\n", self.url());
        if let Some(tls) = &self.tls {
            let ca = base64::engine::general_purpose::STANDARD.encode(&tls.ca_pem);
            cluster.push_str(&format!("    certificate-authority-data: {ca}\n"));
        }
        cluster
    }

    /// A kubeconfig with one context, `fake`, pointing at this server.
    pub fn kubeconfig_yaml(&self, namespace: &str, token: Option<&str>) -> String {
        let user = match token {
            Some(token) => format!("    token: {token}\n"),
            None => "    {}\n".to_owned(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n{}\
             users:\n- name: fake\n  user:\n{user}contexts:\n- name: fake\n  context:\n    cluster: fake\n    \
             user: fake\n    namespace: {namespace}\ncurrent-context: fake\n",
            self.kubeconfig_cluster()
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `dir/kubeconfig` and returns the path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml(namespace, None)).expect("write the kubeconfig");
        path
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    pub fn create_namespace(&self, name: &str) {
        let namespaces = resources::by_kind("Namespace").expect("namespaces are served");
        let object = json!({"metadata": {"name": name}, "status": {"phase": "Active"}});
        self.shared.lock().store.create(namespaces, object, &now());
    }

    /// Stores an object as if another client had created it.
    pub fn insert(&self, object: Value) -> Value {
        let kind = object["kind"].as_str().unwrap_or_default();
        let resource = resources::by_kind(kind)
            .unwrap_or_else(|| panic!("the fake does not serve kind {kind:?}"));
        let created = self.shared.lock().store.create(resource, object, &now());
        self.shared.wake.notify_one();
        created
    }

    /// The stored object, by plural resource name.
    pub fn object(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let resource = resources::RESOURCES.iter().find(|r| r.plural == plural)?;
        self.shared
            .lock()
            .store
            .get(resource, namespace, name)
            .cloned()
    }

    pub fn objects(&self, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(resource) = resources::RESOURCES.iter().find(|r| r.plural == plural) else {
            return Vec::new();
        };
        self.shared
            .lock()
            .store
            .list(resource, namespace)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Scripts how pods whose first container runs `image` behave.
    pub fn set_behavior(&self, image: &str, behavior: PodBehavior) {
        self.shared
            .lock()
            .behaviors
            .insert(image.to_owned(), behavior);
    }

    /// Scripts the usage the metrics API reports for each running container
    /// of `image`.
    pub fn set_usage(&self, image: &str, usage: Usage) {
        self.shared.lock().usage.insert(image.to_owned(), usage);
    }

    /// Serves the metrics API, or stops serving it in one of the ways a
    /// cluster lacks it.
    pub fn set_metrics_api(&self, mode: MetricsApi) {
        self.shared.lock().metrics_api = mode;
    }

    /// Scripts the status of the HorizontalPodAutoscaler `name`, which the
    /// controller writes whenever the object exists and has another.
    pub fn set_autoscaler_status(&self, namespace: &str, name: &str, status: Value) {
        self.shared
            .lock()
            .controller
            .autoscaler_statuses
            .insert((namespace.to_owned(), name.to_owned()), status);
        self.shared.wake.notify_one();
    }

    /// Scripts the lines each container instance running `image` prints.
    pub fn set_log_lines(&self, image: &str, lines: &[&str]) {
        let lines = lines.iter().map(|l| (*l).to_owned()).collect();
        self.shared
            .lock()
            .log_scripts
            .insert(image.to_owned(), lines);
    }

    /// Appends a line to the running instance of a pod's container.
    pub fn write_log(&self, namespace: &str, pod: &str, container: &str, line: &str) {
        let mut state = self.shared.lock();
        let events = state.log_events.clone();
        let key = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        state.logs.write(&key, line, &events);
    }

    /// Answers `verb` on `resource` (in `namespace`, or anywhere) with 403.
    pub fn forbid(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        self.shared.lock().forbidden.push(ForbiddenRule {
            verb: verb.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.map(str::to_owned),
            user: "system:serviceaccount:default:shipdeck-test".to_owned(),
        });
    }

    /// Requires `Authorization: Bearer TOKEN` on every request.
    pub fn require_token(&self, token: &str) {
        self.shared.lock().token = Some(token.to_owned());
    }

    /// Drops the watch history, so a watch from an older resource version
    /// gets 410 Gone.
    pub fn compact(&self) {
        self.shared.lock().store.compact();
    }

    pub fn revision(&self) -> u64 {
        self.shared.lock().store.revision()
    }

    /// Waits until `check` holds for the server's objects, or panics after
    /// `timeout` naming `what`.
    pub fn wait_for(&self, what: &str, timeout: Duration, check: impl Fn(&FakeApiServer) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    stopped: oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build the fake API server's runtime");
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).expect("register the listener with tokio");
        let router = axum::Router::new()
            .fallback(server::handle)
            .with_state(Arc::clone(&shared));
        tokio::spawn(run_controller(Arc::clone(&shared)));
        match acceptor {
            Some(acceptor) => {
                tokio::select! {
                    _ = tls::serve(listener, acceptor, router) => {}
                    _ = stopped => {}
                }
            }
            None => {
                tokio::select! {
                    _ = axum::serve(listener, router) => {}
                    _ = stopped => {}
                }
            }
        }
    });
    // Open watch and log streams end with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
}

async fn run_controller(shared: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(shared.options.controller_tick) => {}
        }
        let mut state = shared.lock();
        controller::reconcile(&mut state, Instant::now());
    }
}
