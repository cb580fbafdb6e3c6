//! The deployment manager: the verbs of the API (deploy, redeploy, rollback,
//! scale, undeploy) and the queries (list, get, history, health, events).
//!
//! The engine stores revisions and hands them to one supervisor task per
//! deployment, which owns the replicas from then on. Mutating verbs are
//! serialised by one lock so that revision numbers are assigned in order;
//! waiting for a rollout happens outside it.

pub mod alert_rules;
mod alerts;
mod autoscaler;
pub use autoscaler::RECENT_DECISIONS;
mod backoff;
mod config;
mod kube_supervisor;
pub mod metrics;
mod notify;
mod plan;
mod ports;
mod recorder;
mod replica;
mod rolling;
pub mod scrape;
mod secrets;
pub mod supervisor;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::backend::docker::DockerBackend;
use crate::backend::process::{resolve_program, ProcessBackend};
use crate::backend::source::{local_path, BuildDirs};
use crate::backend::{Backend, BackendError};
use crate::config::{ConfigError, RenderError, Vault, VaultError, ENVIRONMENT_VARIABLE};
use crate::home::Home;
use crate::logs::{Follower, LogEntry, LogError, LogFilter, LogHub, LogQuery, LogStats, Page};
use crate::manifest::{self, BackendKind, Manifest, ManifestError, Override};
use crate::model::{
    Deployment, DeploymentKey, DeploymentStatus, DeploymentView, Event, EventOutcome, Health,
    HealthView, HistoryEntry, ReplicaCounts, Revision, RevisionStatus, SubmittedManifest,
};
use crate::store::{NewEvent, Store, StoreError};
use recorder::Recorder;
use supervisor::{Command, Outcome, Snapshot, Supervisor, SupervisorHandle};

pub use config::TemplateWrite;
pub use notify::ChannelChangeError;

/// Largest replica count accepted by `scale`, matching the manifest's limit.
pub const MAX_REPLICAS: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("invalid --set {value:?}: {message}")]
    InvalidOverride { value: String, message: String },
    #[error("deployment {name:?} not found{}; list deployments with `shipdeck ls`", in_environment(.environment))]
    NotFound {
        name: String,
        environment: Option<String>,
    },
    #[error("deployment {name:?} exists in several environments ({}); choose one with --env", .environments.join(", "))]
    Ambiguous {
        name: String,
        environments: Vec<String>,
    },
    #[error("revision {revision} of {name:?} not found; see `shipdeck history {name}`")]
    RevisionNotFound { name: String, revision: u64 },
    #[error("{name:?} has no earlier healthy revision whose spec differs from the current one; choose one with `shipdeck rollback {name} --to-revision N` (see `shipdeck history {name}`), or in the dashboard with r in the history tab")]
    NoRollbackTarget { name: String },
    #[error("{name:?} is undeployed; deploy it again with `shipdeck deploy`")]
    Undeployed { name: String },
    #[error("autoscaling is on for {name:?} ({min} to {max} replicas), so it sets the count; turn it off first with `shipdeck autoscale off {name}`, or pass --force to turn it off and scale")]
    AutoscalingOn { name: String, min: u32, max: u32 },
    #[error("autoscaling is off for {name:?}; turn it on with `shipdeck autoscale {name} --min N --max N --cpu PERCENT`")]
    AutoscalingOff { name: String },
    #[error("the cluster's HorizontalPodAutoscaler of {name:?} has not been seen yet; try again in a few seconds, and check `shipdeck events {name}` for apply errors")]
    AutoscalerNotSeen { name: String },
    #[error("invalid replica count {value}: must be between 0 and {MAX_REPLICAS}")]
    InvalidReplicas { value: i64 },
    #[error("{field}: {message}")]
    Unsupported { field: String, message: String },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Logs(#[from] LogError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Secrets(#[from] RenderError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the key rotation stopped unexpectedly; see the agent's log, and check the secrets with `shipdeck secrets ls`")]
    RotationAborted,
    #[error("the supervisor of {key} is not running; restart the agent with `shipdeck agent stop` and try again")]
    SupervisorGone { key: DeploymentKey },
    #[error(transparent)]
    AlertRule(#[from] alert_rules::AlertRuleError),
    #[error(transparent)]
    Channel(#[from] notify::ChannelChangeError),
}

fn in_environment(environment: &Option<String>) -> String {
    environment
        .as_ref()
        .map(|env| format!(" in environment {env:?}"))
        .unwrap_or_default()
}

/// The caller of a request: the OS user behind the client connection.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
}

/// A manifest sent by a client.
#[derive(Debug, Clone, Default)]
pub struct ManifestInput {
    pub text: String,
    /// File name for error messages.
    pub origin: String,
    /// Directory relative paths in the manifest are taken from.
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct DeployRequest {
    pub manifest: ManifestInput,
    pub environment: Option<String>,
    pub sets: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RedeployRequest {
    pub manifest: Option<ManifestInput>,
    pub sets: Vec<String>,
}

/// What a new revision is for, beside its spec.
struct Rollout {
    /// The event's action: `deploy`, `redeploy`, `rollback`, `restart`.
    action: &'static str,
    /// The revision's reason, shown in history.
    reason: String,
    /// The earlier revision whose finished build this one reuses.
    built_as: Option<u64>,
    submitted: Option<SubmittedManifest>,
}

impl Rollout {
    fn new(
        action: &'static str,
        reason: String,
        built_as: Option<u64>,
        submitted: Option<SubmittedManifest>,
    ) -> Self {
        Self {
            action,
            reason,
            built_as,
            submitted,
        }
    }
}

/// Keeps `input` and `sets` as the client sent them.
fn submitted(input: &ManifestInput, sets: &[String]) -> SubmittedManifest {
    SubmittedManifest {
        text: input.text.clone(),
        origin: input.origin.clone(),
        base_dir: input.base_dir.as_ref().map(|dir| dir.display().to_string()),
        sets: sets.to_vec(),
    }
}

/// Filters and order of `list`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub environment: Option<String>,
    pub statuses: Vec<DeploymentStatus>,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub sort: SortKey,
    pub descending: bool,
    pub limit: Option<usize>,
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    Name,
    CreatedAt,
    UpdatedAt,
}

/// The immediate result of a verb; `completion` resolves when the change ends.
pub struct Accepted {
    pub deployment: DeploymentView,
    pub revision: Option<u64>,
    pub completion: Option<oneshot::Receiver<Outcome>>,
}

pub struct Engine {
    store: Store,
    home: Home,
    vault: Arc<Vault>,
    backend: Arc<ProcessBackend>,
    docker: Arc<DockerBackend>,
    logs: LogHub,
    recorder: Recorder,
    notifier: crate::notify::Notifier,
    alerts: Mutex<alerts::AlertBook>,
    supervisors: Mutex<HashMap<String, SupervisorHandle>>,
    /// The reason each deployment's CPU and memory get no values, by
    /// deployment id, as the metrics collector last found it.
    metrics_unavailable: Mutex<HashMap<String, String>>,
    changes: tokio::sync::Mutex<()>,
    /// The newest per-replica measurements, from the collector to the autoscaler.
    autoscale_readings: autoscaler::Readings,
    autoscaling_ranges: autoscaler::RangeCache,
}

impl Engine {
    /// Creates the engine and starts supervising every deployment that
    /// should run, after ending replicas a crashed agent left behind.
    pub fn start(home: Home, store: Store, vault: Arc<Vault>) -> Result<Arc<Self>, EngineError> {
        let logs = LogHub::start(store.clone());
        let backend = Arc::new(ProcessBackend::new(home.root(), logs.clone()));
        let docker = Arc::new(DockerBackend::new(home.root(), logs.clone()));
        docker.prepare();
        let swept = backend.sweep_orphans();
        if swept > 0 {
            tracing::warn!(groups = swept, "ended replicas left by an earlier agent");
        }
        let notifier =
            crate::notify::Notifier::new(store.clone(), notify_failure_hook(store.clone()));
        let engine = Arc::new(Self {
            recorder: Recorder::new(store.clone(), notifier.clone()),
            notifier,
            alerts: Mutex::new(alerts::AlertBook::default()),
            store,
            home,
            vault,
            backend,
            docker,
            logs,
            supervisors: Mutex::new(HashMap::new()),
            metrics_unavailable: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            autoscale_readings: autoscaler::Readings::default(),
            autoscaling_ranges: autoscaler::RangeCache::default(),
        });
        engine.seed_config()?;
        engine.load_alerts()?;
        let resumed = engine.resume_all()?;
        engine.sweep_docker_leftovers();
        engine.record_start(resumed, swept);
        engine.start_metrics();
        engine.start_autoscaler();
        Ok(engine)
    }

    /// Records the agent's start, so that a crash and its aftermath show in
    /// `events` and not only in the agent's log.
    fn record_start(&self, resumed: usize, swept: usize) {
        let mut message = format!("agent started; resumed {resumed} deployments");
        if swept > 0 {
            message.push_str(&format!(
                "; ended {swept} replica process groups left by an earlier agent"
            ));
        }
        let event = NewEvent {
            time: OffsetDateTime::now_utc(),
            deployment: None,
            deployment_id: None,
            user: "agent".to_owned(),
            action: "agent-start".to_owned(),
            outcome: EventOutcome::Ok,
            message,
        };
        if let Err(error) = self.store.append_event(event) {
            tracing::error!(%error, "saving the agent start event failed");
        }
    }

    /// Removes the containers an earlier agent left for deployments that no
    /// supervisor runs (undeployed, failed or deleted ones). Each supervisor
    /// adopts or removes its own deployment's containers.
    fn sweep_docker_leftovers(self: &Arc<Self>) {
        let engine = Arc::downgrade(self);
        self.docker.sweep_unclaimed(move |deployment_id| {
            // An engine that is gone claims everything: nothing is removed
            // while the agent stops.
            engine.upgrade().is_none_or(|engine| {
                engine
                    .supervisors_guard()
                    .get(deployment_id)
                    .is_some_and(|handle| !handle.commands.is_closed())
            })
        });
    }

    /// Starts a supervisor for every deployment that should run; returns how many.
    fn resume_all(&self) -> Result<usize, EngineError> {
        let mut resumed = 0;
        let scan = self.store.list_deployments()?;
        for error in &scan.unreadable {
            tracing::error!(%error, "skipping an unreadable deployment record");
        }
        for deployment in scan.records {
            if !deployment.wants_replicas() || deployment.status == DeploymentStatus::Failed {
                continue;
            }
            match self.resume(deployment.clone()) {
                Ok(()) => resumed += 1,
                Err(error) => {
                    tracing::error!(deployment = %deployment.key(), %error, "cannot resume deployment")
                }
            }
        }
        Ok(resumed)
    }

    /// Lists the revisions just before `revision` that differ from it only
    /// in `autoScaling`, back to the first that differs in more, so that
    /// containers an earlier agent left under them are adopted.
    fn equivalent_revisions(&self, revision: &Revision) -> Result<Vec<u64>, EngineError> {
        let mut equivalent = Vec::new();
        let mut later = revision.spec.clone();
        let mut number = revision.revision;
        while number > 1 {
            number -= 1;
            let Some(earlier) = self.store.get_revision(&revision.deployment_id, number)? else {
                break;
            };
            // Each step back must change only autoScaling; a restart, which
            // keeps the spec, exists to replace replicas and ends the chain.
            if !crate::autoscale::differs_only_in_autoscaling(&earlier.spec, &later) {
                break;
            }
            equivalent.push(number);
            later = earlier.spec;
        }
        Ok(equivalent)
    }

    fn resume(&self, deployment: Deployment) -> Result<(), EngineError> {
        let builds = self.home.builds_dir();
        let stable = match deployment.last_healthy_revision {
            Some(number) => match self.store.get_revision(&deployment.id, number)? {
                Some(revision) => {
                    let mut plan = supervisor::plan_for_restart(&revision, &builds);
                    let equivalent = self.equivalent_revisions(&revision)?;
                    if let Some(plan) = Arc::get_mut(&mut plan) {
                        plan.equivalent = equivalent;
                    }
                    Some(plan)
                }
                None => None,
            },
            None => None,
        };
        let resume = if Some(deployment.revision) != deployment.last_healthy_revision {
            self.store
                .get_revision(&deployment.id, deployment.revision)?
                .filter(|revision| revision.status != RevisionStatus::Failed)
        } else {
            None
        };
        tracing::info!(deployment = %deployment.key(), revision = deployment.revision, "resuming");
        self.spawn_supervisor(deployment, stable, resume);
        Ok(())
    }

    fn spawn_supervisor(
        &self,
        deployment: Deployment,
        stable: Option<supervisor::SharedPlan>,
        resume: Option<Revision>,
    ) -> SupervisorHandle {
        let id = deployment.id.clone();
        let handle = match deployment.backend {
            BackendKind::Docker => {
                let services = self.services(self.docker.clone());
                Supervisor::spawn(services, deployment, stable, resume)
            }
            BackendKind::Kubernetes => {
                kube_supervisor::spawn(self.kube_services(), deployment, stable, resume)
            }
            BackendKind::Process => {
                let services = self.services(self.backend.clone());
                Supervisor::spawn(services, deployment, stable, resume)
            }
        };
        self.supervisors_guard().insert(id, handle.clone());
        handle
    }

    fn services<B: Backend>(&self, backend: Arc<B>) -> supervisor::Services<B> {
        supervisor::Services {
            backend,
            secrets: self.vault.clone(),
            recorder: self.recorder.clone(),
            builds_dir: self.home.builds_dir(),
            logs: self.logs.clone(),
        }
    }

    fn kube_services(&self) -> kube_supervisor::KubeServices {
        kube_supervisor::KubeServices {
            secrets: self.vault.clone(),
            recorder: self.recorder.clone(),
            home: self.home.root().display().to_string(),
            environment: crate::backend::kubernetes::KubeEnvironment::from_process(),
            logs: self.logs.clone(),
        }
    }

    fn supervisors_guard(&self) -> std::sync::MutexGuard<'_, HashMap<String, SupervisorHandle>> {
        self.supervisors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns why the deployment's CPU and memory get no values, if they do not.
    fn metrics_unavailable_reason(&self, deployment_id: &str) -> Option<String> {
        self.metrics_unavailable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(deployment_id)
            .cloned()
    }

    /// Sets or clears why the deployment's CPU and memory get no values,
    /// and announces the deployment when that changes, so that clients
    /// read its view again.
    fn set_metrics_unavailable(&self, deployment_id: &str, reason: Option<String>) {
        let changed = {
            let mut reasons = self
                .metrics_unavailable
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match reason {
                Some(reason) => {
                    reasons.insert(deployment_id.to_owned(), reason.clone()) != Some(reason)
                }
                None => reasons.remove(deployment_id).is_some(),
            }
        };
        if changed {
            self.recorder.announce_deployment(deployment_id);
        }
    }

    /// Returns the running supervisor of a deployment, starting one if it has none.
    fn supervisor_for(&self, deployment: &Deployment) -> SupervisorHandle {
        if let Some(handle) = self.supervisors_guard().get(&deployment.id) {
            if !handle.commands.is_closed() {
                return handle.clone();
            }
        }
        self.spawn_supervisor(deployment.clone(), None, None)
    }

    /// Returns the snapshot of every supervised deployment.
    fn all_snapshots(&self) -> Vec<Snapshot> {
        let guard = self.supervisors_guard();
        guard
            .values()
            .map(|handle| handle.snapshot.borrow().clone())
            .collect()
    }

    fn snapshot(&self, deployment_id: &str) -> Option<Snapshot> {
        let guard = self.supervisors_guard();
        let snapshot = guard.get(deployment_id)?.snapshot.borrow().clone();
        Some(snapshot)
    }

    pub async fn deploy(
        &self,
        request: DeployRequest,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let (mut overrides, vars) = split_sets(&request.sets)?;
        if let Some(environment) = &request.environment {
            overrides.push(Override {
                path: "environment".to_owned(),
                value: environment.clone(),
            });
        }
        let spec = self.build_spec(&request.manifest, &overrides, vars)?;
        let _guard = self.changes.lock().await;
        let existing = self
            .store
            .find_deployment(&DeploymentKey::new(&spec.name, &spec.environment))?;
        if let Some(deployment) = existing.as_ref().filter(|d| self.runs_spec(d, &spec)) {
            // Like `kubectl apply`, deploying what already runs changes nothing.
            let message = format!("unchanged; revision {} keeps running", deployment.revision);
            self.record(caller, deployment, "deploy", EventOutcome::Ok, &message)
                .await?;
            return Ok(Accepted {
                deployment: self.view(deployment),
                revision: Some(deployment.revision),
                completion: None,
            });
        }
        let submitted = Some(submitted(&request.manifest, &request.sets));
        let rollout = Rollout::new("deploy", "deploy".to_owned(), None, submitted);
        self.roll_out(existing, spec, rollout, caller).await
    }

    /// Returns whether `deployment` is deployed from exactly `spec`, at the spec's scale.
    fn runs_spec(&self, deployment: &Deployment, spec: &Manifest) -> bool {
        let live = self
            .snapshot(&deployment.id)
            .map(|snapshot| snapshot.deployment)
            .unwrap_or_else(|| deployment.clone());
        if live.status != DeploymentStatus::Deployed || live.desired_replicas != spec.replicas {
            return false;
        }
        matches!(
            self.store.get_revision(&deployment.id, live.revision),
            Ok(Some(revision)) if revision.spec == *spec
        )
    }

    pub async fn redeploy(
        &self,
        name: &str,
        environment: Option<&str>,
        request: RedeployRequest,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        let (spec, submitted) = match &request.manifest {
            Some(input) => {
                let (mut overrides, vars) = split_sets(&request.sets)?;
                overrides.push(Override {
                    path: "environment".to_owned(),
                    value: deployment.environment.clone(),
                });
                let spec = self.build_spec(input, &overrides, vars)?;
                (spec, Some(submitted(input, &request.sets)))
            }
            None => {
                let mut current = self.revision(&deployment, deployment.revision)?;
                // Like the current scale, the autoscaling that `shipdeck
                // autoscale` set stays unless `--set` changes it.
                let live_scaling = current.spec.auto_scaling.clone();
                let (mut spec, submitted) = match current.submitted.take() {
                    Some(stored) => self.render_again(&deployment, stored, &request.sets)?,
                    None => (self.reuse_spec(&deployment, current, &request.sets)?, None),
                };
                if !request
                    .sets
                    .iter()
                    .any(|set| set.starts_with("autoScaling"))
                {
                    spec.auto_scaling = live_scaling;
                }
                (spec, submitted)
            }
        };
        if spec.name != deployment.name {
            return Err(EngineError::Manifest(ManifestError {
                origin: "redeploy".to_owned(),
                path: "name".to_owned(),
                line: 1,
                column: 1,
                message: format!(
                    "the manifest is for {:?}, not {:?}; use `shipdeck deploy` for another deployment",
                    spec.name, deployment.name
                ),
            }));
        }
        let rollout = Rollout::new("redeploy", "redeploy".to_owned(), None, submitted);
        self.roll_out(Some(deployment), spec, rollout, caller).await
    }

    /// Renders the manifest a revision was made from again, with today's
    /// environment config and templates, its `--set` values and then
    /// `sets`. The current scale stays unless `sets` changes it.
    fn render_again(
        &self,
        deployment: &Deployment,
        stored: SubmittedManifest,
        sets: &[String],
    ) -> Result<(Manifest, Option<SubmittedManifest>), EngineError> {
        let mut all_sets = stored.sets.clone();
        all_sets.extend(sets.iter().cloned());
        let (mut overrides, vars) = split_sets(&all_sets)?;
        overrides.push(Override {
            path: "environment".to_owned(),
            value: deployment.environment.clone(),
        });
        let input = ManifestInput {
            text: stored.text.clone(),
            origin: stored.origin.clone(),
            base_dir: stored.base_dir.as_ref().map(PathBuf::from),
        };
        let mut spec = self.build_spec(&input, &overrides, vars)?;
        let (new_overrides, _) = split_sets(sets)?;
        if !new_overrides.iter().any(|o| o.path == "replicas") {
            spec.replicas = deployment.desired_replicas;
        }
        let submitted = SubmittedManifest {
            sets: all_sets,
            ..stored
        };
        Ok((spec, Some(submitted)))
    }

    /// Returns the current revision's stored spec with `sets` applied, for a
    /// revision stored without the manifest it was made from.
    fn reuse_spec(
        &self,
        deployment: &Deployment,
        mut current: Revision,
        sets: &[String],
    ) -> Result<Manifest, EngineError> {
        let (overrides, vars) = split_sets(sets)?;
        // The current scale lives on the deployment, not in the
        // revision's spec; `--set replicas=N` still wins below.
        current.spec.replicas = deployment.desired_replicas;
        // The stored spec has its environment config and template
        // merged in already, so only the placeholders that an
        // override brings in are left to replace.
        let mut spec = if overrides.is_empty() {
            current.spec
        } else {
            let text = manifest::to_yaml(&current.spec);
            manifest::parse(&text, "current revision", &overrides)?
        };
        self.interpolate_env(&mut spec, vars)?;
        Ok(spec)
    }

    pub async fn rollback(
        &self,
        name: &str,
        environment: Option<&str>,
        to_revision: Option<u64>,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        let target = match to_revision {
            Some(number) => self.revision(&deployment, number)?,
            None => self.previous_healthy(&deployment)?,
        };
        let mut spec = target.spec.clone();
        // Like `kubectl rollout undo`, a rollback keeps the current scale.
        spec.replicas = deployment.desired_replicas;
        let reason = format!("rollback to revision {}", target.revision);
        let rollout = Rollout::new("rollback", reason, Some(target.revision), target.submitted);
        self.roll_out(Some(deployment), spec, rollout, caller).await
    }

    /// Finds the newest revision before the current one that was healthy.
    fn previous_healthy(&self, deployment: &Deployment) -> Result<Revision, EngineError> {
        let scan = self.store.revisions(&deployment.id)?;
        let current_spec = self
            .store
            .get_revision(&deployment.id, deployment.revision)?
            .map(|revision| revision.spec);
        scan.records
            .into_iter()
            .rev()
            .filter(|r| r.revision < deployment.revision)
            .filter(|r| {
                matches!(
                    r.status,
                    RevisionStatus::Deployed | RevisionStatus::Superseded
                )
            })
            .find(|r| Some(&r.spec) != current_spec.as_ref())
            .ok_or_else(|| EngineError::NoRollbackTarget {
                name: deployment.name.clone(),
            })
    }

    fn revision(&self, deployment: &Deployment, number: u64) -> Result<Revision, EngineError> {
        self.store
            .get_revision(&deployment.id, number)?
            .ok_or_else(|| EngineError::RevisionNotFound {
                name: deployment.name.clone(),
                revision: number,
            })
    }

    /// Stores the next revision of a deployment (creating the deployment if
    /// needed) and hands it to the supervisor.
    /// `built_as` names an earlier revision whose finished build the new
    /// one reuses (for a rollback).
    async fn roll_out(
        &self,
        existing: Option<Deployment>,
        spec: Manifest,
        rollout: Rollout,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let Rollout {
            action,
            reason,
            built_as,
            submitted,
        } = rollout;
        self.check_startable(&spec, existing.as_ref())?;
        let spec = keep_autoscaled_count(spec, existing.as_ref());

        let now = OffsetDateTime::now_utc();
        let mut deployment = existing.unwrap_or_else(|| new_deployment(&spec, now));
        let number = self
            .store
            .latest_revision_number(&deployment.id)?
            .unwrap_or(0)
            + 1;
        let revision = Revision {
            deployment_id: deployment.id.clone(),
            revision: number,
            version: spec.version.clone(),
            status: RevisionStatus::Pending,
            reason,
            created_at: now,
            spec,
            submitted,
        };
        deployment.status = DeploymentStatus::Pending;
        deployment.status_reason = None;
        deployment.revision = number;
        deployment.version = revision.version.clone();
        deployment.desired_replicas = revision.spec.replicas;
        deployment.backend = revision.spec.backend;
        deployment.tags = revision.spec.tags.clone();
        deployment.updated_at = now;
        self.store
            .put_deployment_and_revision(&deployment, &revision)?;
        if let (Some(earlier), Some(_)) = (built_as, revision.spec.source.as_ref()) {
            self.reuse_build(&deployment.id, earlier, number);
        }

        let message = format!("revision {number} ({})", revision.reason);
        let supervisor = self.supervisor_for(&deployment);
        let (ack, acked) = oneshot::channel();
        let (done, completion) = oneshot::channel();
        let desired = deployment.desired_replicas;
        let command = Command::Rollout {
            revision: Box::new(revision),
            desired,
            ack,
            done: Some(done),
        };
        self.send(&deployment, &supervisor, command, acked).await?;
        self.record(caller, &deployment, action, EventOutcome::Ok, &message)
            .await?;
        Ok(Accepted {
            deployment: self.view(&deployment),
            revision: Some(number),
            completion: Some(completion),
        })
    }

    /// Points the build directory of revision `to` at the finished build of
    /// revision `from`, so that a rollback runs the exact tree that ran
    /// before. Fetching again would take whatever the source contains now
    /// (a git branch that moved on, a replaced archive).
    fn reuse_build(&self, deployment_id: &str, from: u64, to: u64) {
        let builds = self.home.builds_dir();
        let earlier = BuildDirs::new(&builds, deployment_id, from);
        if !earlier.is_done() {
            return;
        }
        let target = BuildDirs::new(&builds, deployment_id, to);
        // A relative link stays valid if the home directory moves.
        if let Err(error) = std::os::unix::fs::symlink(from.to_string(), &target.root) {
            tracing::warn!(
                revision = to,
                from,
                %error,
                "cannot reuse the earlier build; the source is fetched and built again"
            );
        }
    }

    /// Rejects a spec that cannot start at all before anything is stored:
    /// a missing program, a missing working directory, a taken host port.
    fn check_startable(
        &self,
        spec: &Manifest,
        existing: Option<&Deployment>,
    ) -> Result<(), EngineError> {
        check_supported(spec)?;
        check_same_backend(spec, existing)?;
        self.check_environment(spec)?;
        self.check_secrets(spec)?;
        // A docker replica's command and working directory are inside its image.
        if spec.source.is_none() && spec.backend == BackendKind::Process {
            if let Some(run) = &spec.run {
                let workdir = Path::new(run.workdir.as_deref().unwrap_or("."));
                if !workdir.is_dir() {
                    return Err(BackendError::MissingWorkdir {
                        path: workdir.to_path_buf(),
                    }
                    .into());
                }
                if let Some(program) = run.command.first().filter(|p| !p.contains("${")) {
                    resolve_program(program, workdir, &self.backend.search_path())?;
                }
            }
        }
        self.check_host_ports(spec, existing)
    }

    /// Rejects a spec whose host ports another process holds; the ports of
    /// this deployment's own stable endpoints are fine.
    fn check_host_ports(
        &self,
        spec: &Manifest,
        existing: Option<&Deployment>,
    ) -> Result<(), EngineError> {
        // A Kubernetes hostPort is the Service's port in the cluster.
        if spec.backend == BackendKind::Kubernetes {
            return Ok(());
        }
        let own_ports = existing
            .and_then(|d| self.snapshot(&d.id))
            .map(|snapshot| ports_of(&snapshot.endpoints))
            .unwrap_or_default();
        for (position, port) in spec.ports.iter().enumerate() {
            let Some(host) = port.host_port else { continue };
            if !own_ports.contains(&host) && !plan::port_is_free(host) {
                return Err(BackendError::PortInUse {
                    port: host,
                    field: format!("ports[{position}].hostPort"),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Sets a deployment's replica count. While autoscaling is on, the
    /// autoscaler owns the count: the request is refused unless `force`,
    /// which turns autoscaling off first (as a new revision).
    pub async fn scale(
        &self,
        name: &str,
        environment: Option<&str>,
        replicas: i64,
        force: bool,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let count = u32::try_from(replicas)
            .ok()
            .filter(|count| *count <= MAX_REPLICAS)
            .ok_or(EngineError::InvalidReplicas { value: replicas })?;
        let deployment = self.resolve(name, environment)?;
        if let Some(scaling) = self.autoscaling_of(&deployment)? {
            if !force {
                return Err(EngineError::AutoscalingOn {
                    name: deployment.name,
                    min: scaling.min_replicas,
                    max: scaling.max_replicas,
                });
            }
            let accepted = self
                .set_autoscaling(name, environment, None, caller)
                .await?;
            if let Some(completion) = accepted.completion {
                let _ = completion.await;
            }
        }

        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        if !deployment.wants_replicas() {
            return Err(EngineError::Undeployed {
                name: deployment.name,
            });
        }
        let message = format!("replicas {} -> {count}", deployment.desired_replicas);
        let completion = self
            .send_scale(&deployment, count, caller, "scale", &message)
            .await?;
        Ok(Accepted {
            deployment: self.view(&deployment),
            revision: None,
            completion: Some(completion),
        })
    }

    /// Scales for the autoscaler, with its decision's reason as the event.
    pub(crate) async fn scale_to(
        &self,
        deployment: &Deployment,
        count: u32,
        caller: &Caller,
        action: &str,
        message: &str,
    ) -> Result<(), EngineError> {
        let _guard = self.changes.lock().await;
        // The deployment may have changed while the autoscaler evaluated.
        let current = self.resolve(&deployment.name, Some(&deployment.environment))?;
        if !current.wants_replicas() || current.revision != deployment.revision {
            return Ok(());
        }
        self.send_scale(&current, count, caller, action, message)
            .await
            .map(|_| ())
    }

    async fn send_scale(
        &self,
        deployment: &Deployment,
        count: u32,
        caller: &Caller,
        action: &str,
        message: &str,
    ) -> Result<oneshot::Receiver<Outcome>, EngineError> {
        let supervisor = self.supervisor_for(deployment);
        let (ack, acked) = oneshot::channel();
        let (done, completion) = oneshot::channel();
        let command = Command::Scale {
            replicas: count,
            ack,
            done: Some(done),
        };
        self.send(deployment, &supervisor, command, acked).await?;
        self.record(caller, deployment, action, EventOutcome::Ok, message)
            .await?;
        Ok(completion)
    }

    /// Returns the current revision's autoscaling, when it is on.
    fn autoscaling_of(
        &self,
        deployment: &Deployment,
    ) -> Result<Option<crate::manifest::AutoScaling>, EngineError> {
        let spec = self.revision(deployment, deployment.revision)?.spec;
        Ok(spec.auto_scaling.filter(|scaling| scaling.enabled))
    }

    /// Turns autoscaling on with `setting`, or off with `None`, as a new
    /// revision that differs from the current one only there. The replicas
    /// keep running (see `differs_only_in_autoscaling`).
    pub async fn set_autoscaling(
        &self,
        name: &str,
        environment: Option<&str>,
        setting: Option<crate::manifest::AutoScaling>,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        if !deployment.wants_replicas() {
            return Err(EngineError::Undeployed {
                name: deployment.name,
            });
        }
        let current = self.revision(&deployment, deployment.revision)?;
        let mut spec = current.spec.clone();
        spec.replicas = deployment.desired_replicas;
        let reason = match &setting {
            Some(scaling) => format!("autoscale {}", describe_autoscaling(scaling)),
            None => "autoscale off".to_owned(),
        };
        spec.auto_scaling = match setting {
            Some(scaling) => Some(keep_behavior(scaling, spec.auto_scaling.as_ref())),
            // Off keeps the block, disabled, so that turning it on again
            // from the CLI finds the manifest's interval and rate rules.
            None => match spec.auto_scaling.take() {
                Some(scaling) if scaling.enabled => Some(crate::manifest::AutoScaling {
                    enabled: false,
                    ..scaling
                }),
                _ => {
                    return Err(EngineError::AutoscalingOff {
                        name: deployment.name,
                    })
                }
            },
        };
        crate::manifest::check_rules(&spec).map_err(|problem| {
            EngineError::Manifest(ManifestError {
                origin: "autoscale".to_owned(),
                path: problem.path,
                line: 1,
                column: 1,
                message: problem.message,
            })
        })?;
        let rollout = Rollout::new(
            "autoscale",
            reason,
            Some(current.revision),
            current.submitted,
        );
        self.roll_out(Some(deployment), spec, rollout, caller).await
    }

    pub async fn undeploy(
        &self,
        name: &str,
        environment: Option<&str>,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        let supervisor = self.supervisor_for(&deployment);
        let (ack, acked) = oneshot::channel();
        let (done, completion) = oneshot::channel();
        let command = Command::Undeploy {
            ack,
            done: Some(done),
        };
        self.send(&deployment, &supervisor, command, acked).await?;
        self.record(
            caller,
            &deployment,
            "undeploy",
            EventOutcome::Ok,
            "stopping all replicas",
        )
        .await?;
        Ok(Accepted {
            deployment: self.view(&deployment),
            revision: None,
            completion: Some(completion),
        })
    }

    /// Restarts replicas without changing the spec. Every replica: the
    /// current spec rolls out again as a new revision, within the
    /// strategy's `maxSurge` and `maxUnavailable`, reusing its build, as
    /// `kubectl rollout restart` does. One replica (`replica: Some(slot)`):
    /// it stops and a fresh one of the same revision takes its slot.
    pub async fn restart(
        &self,
        name: &str,
        environment: Option<&str>,
        replica: Option<u32>,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        let _guard = self.changes.lock().await;
        let deployment = self.resolve(name, environment)?;
        if !deployment.wants_replicas() {
            return Err(EngineError::Undeployed {
                name: deployment.name,
            });
        }
        match replica {
            None => {
                let number = deployment.revision;
                let mut current = self.revision(&deployment, number)?;
                current.spec.replicas = deployment.desired_replicas;
                let reason = format!("restart of revision {number}");
                let rollout = Rollout::new("restart", reason, Some(number), current.submitted);
                self.roll_out(Some(deployment), current.spec, rollout, caller)
                    .await
            }
            Some(slot) => self.restart_replica(deployment, slot, caller).await,
        }
    }

    async fn restart_replica(
        &self,
        deployment: Deployment,
        slot: u32,
        caller: &Caller,
    ) -> Result<Accepted, EngineError> {
        if deployment.backend == BackendKind::Kubernetes {
            return Err(EngineError::Unsupported {
                field: "replica".to_owned(),
                message: format!(
                    "the pods of {} have no index to restart one by; restart every replica \
                     with `shipdeck restart {}`, or delete one pod with kubectl",
                    deployment.key(),
                    deployment.name
                ),
            });
        }
        let desired = deployment.desired_replicas;
        if slot >= desired {
            let range = match desired {
                0 => "no replicas".to_owned(),
                1 => "only replica 0".to_owned(),
                _ => format!("replicas 0 to {}", desired - 1),
            };
            return Err(EngineError::Unsupported {
                field: "replica".to_owned(),
                message: format!(
                    "{} has {range}, so replica {slot} does not exist; see the replicas with `shipdeck get {}`",
                    deployment.key(),
                    deployment.name
                ),
            });
        }

        let live = self
            .snapshot(&deployment.id)
            .map_or(deployment.status, |snapshot| snapshot.deployment.status);
        if matches!(
            live,
            DeploymentStatus::Pending | DeploymentStatus::Building | DeploymentStatus::Deploying
        ) {
            return Err(EngineError::Unsupported {
                field: "replica".to_owned(),
                message: format!(
                    "{} is {live}; restart replica {slot} once the rollout has finished",
                    deployment.key()
                ),
            });
        }

        let supervisor = self.supervisor_for(&deployment);
        let (ack, acked) = oneshot::channel();
        let (done, completion) = oneshot::channel();
        let command = Command::RestartReplica {
            slot,
            ack,
            done: Some(done),
        };
        self.send(&deployment, &supervisor, command, acked).await?;
        let message = format!("replica {slot}");
        self.record(caller, &deployment, "restart", EventOutcome::Ok, &message)
            .await?;
        Ok(Accepted {
            deployment: self.view(&deployment),
            revision: None,
            completion: Some(completion),
        })
    }

    /// Returns the current revision's spec as manifest YAML, at the
    /// current scale.
    pub fn manifest_source(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<crate::model::ManifestSource, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let mut current = self.revision(&deployment, deployment.revision)?;
        current.spec.replicas = deployment.desired_replicas;
        Ok(crate::model::ManifestSource {
            name: deployment.name,
            environment: deployment.environment,
            revision: current.revision,
            text: manifest::to_yaml(&current.spec),
        })
    }

    async fn send(
        &self,
        deployment: &Deployment,
        supervisor: &SupervisorHandle,
        command: Command,
        acked: oneshot::Receiver<()>,
    ) -> Result<(), EngineError> {
        let gone = || EngineError::SupervisorGone {
            key: deployment.key(),
        };
        supervisor
            .commands
            .send(command)
            .await
            .map_err(|_| gone())?;
        acked.await.map_err(|_| gone())
    }

    /// Writes an event for a client's action and flushes, so that a change
    /// is on disk before the client learns of it.
    async fn record(
        &self,
        caller: &Caller,
        deployment: &Deployment,
        action: &str,
        outcome: EventOutcome,
        message: &str,
    ) -> Result<(), EngineError> {
        self.store.append_event(NewEvent {
            time: OffsetDateTime::now_utc(),
            deployment: Some(deployment.key()),
            deployment_id: Some(deployment.id.clone()),
            user: caller.user.clone(),
            action: action.to_owned(),
            outcome,
            message: message.to_owned(),
        })?;
        self.store.flush_async().await?;
        Ok(())
    }

    /// Finds a deployment by name, and by environment when given.
    pub fn resolve(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<Deployment, EngineError> {
        if let Some(environment) = environment {
            return self
                .store
                .find_deployment(&DeploymentKey::new(name, environment))?
                .ok_or_else(|| EngineError::NotFound {
                    name: name.to_owned(),
                    environment: Some(environment.to_owned()),
                });
        }
        let mut found = self.store.deployments_named(name)?.records;
        match found.len() {
            0 => Err(EngineError::NotFound {
                name: name.to_owned(),
                environment: None,
            }),
            1 => Ok(found.remove(0)),
            _ => Err(EngineError::Ambiguous {
                name: name.to_owned(),
                environments: found.into_iter().map(|d| d.environment).collect(),
            }),
        }
    }

    pub fn get(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<DeploymentView, EngineError> {
        let deployment = self.resolve(name, environment)?;
        Ok(self.view(&deployment))
    }

    /// Joins a stored deployment with its supervisor's live state.
    fn view(&self, stored: &Deployment) -> DeploymentView {
        let snapshot = self.snapshot(&stored.id);
        let deployment = snapshot
            .as_ref()
            .map(|s| s.deployment.clone())
            .filter(|live| live.updated_at >= stored.updated_at)
            .unwrap_or_else(|| stored.clone());
        let ready = snapshot.as_ref().map_or(0, |s| {
            s.replicas
                .iter()
                .filter(|r| r.ready && r.revision == deployment.revision)
                .count()
        });
        DeploymentView {
            id: deployment.id.clone(),
            name: deployment.name.clone(),
            environment: deployment.environment.clone(),
            backend: deployment.backend,
            status: deployment.status,
            status_reason: deployment.status_reason.clone(),
            health: snapshot.as_ref().map_or(Health::Unknown, |s| s.health),
            version: deployment.version.clone(),
            revision: deployment.revision,
            replicas: ReplicaCounts {
                desired: deployment.desired_replicas,
                ready: u32::try_from(ready).unwrap_or(u32::MAX),
            },
            autoscaling: self.autoscaling_range(&deployment),
            endpoints: snapshot
                .as_ref()
                .map(|s| s.endpoints.clone())
                .unwrap_or_default(),
            tags: deployment.tags.clone(),
            replica_details: snapshot.map(|s| s.replicas).unwrap_or_default(),
            metrics_unavailable: self.metrics_unavailable_reason(&deployment.id),
            created_at: deployment.created_at,
            updated_at: deployment.updated_at,
        }
    }

    /// Returns the deployment with `id` as the API shows it, or `None` if it
    /// no longer exists.
    pub fn view_by_id(&self, id: &str) -> Result<Option<DeploymentView>, EngineError> {
        let stored = self.store.get_deployment(id)?;
        Ok(stored.map(|deployment| self.view(&deployment)))
    }

    /// Starts following what changes from now on, for the watch stream.
    pub fn follow_changes(&self) -> tokio::sync::broadcast::Receiver<crate::store::Change> {
        self.store.follow_changes()
    }

    pub fn list(&self, query: &ListQuery) -> Result<Vec<DeploymentView>, EngineError> {
        let scan = self.store.list_deployments()?;
        for error in &scan.unreadable {
            tracing::error!(%error, "skipping an unreadable deployment record");
        }
        let mut views: Vec<DeploymentView> = scan
            .records
            .iter()
            .map(|deployment| self.view(deployment))
            .filter(|view| matches_query(view, query))
            .collect();
        match query.sort {
            SortKey::Name => {
                views.sort_by(|a, b| (&a.name, &a.environment).cmp(&(&b.name, &b.environment)))
            }
            SortKey::CreatedAt => views.sort_by_key(|v| v.created_at),
            SortKey::UpdatedAt => views.sort_by_key(|v| v.updated_at),
        }
        if query.descending {
            views.reverse();
        }
        let limit = query.limit.unwrap_or(usize::MAX);
        Ok(views.into_iter().skip(query.offset).take(limit).collect())
    }

    pub fn history(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<Vec<HistoryEntry>, EngineError> {
        let deployment = self.resolve(name, environment)?;
        Ok(self.store.history(&deployment.id)?.records)
    }

    /// Returns one stored revision with its rendered spec, secrets still as
    /// `${SECRET:name}` references.
    pub fn revision_of(
        &self,
        name: &str,
        environment: Option<&str>,
        number: u64,
    ) -> Result<Revision, EngineError> {
        let deployment = self.resolve(name, environment)?;
        self.revision(&deployment, number)
    }

    pub fn health(&self, name: &str, environment: Option<&str>) -> Result<HealthView, EngineError> {
        let deployment = self.resolve(name, environment)?;
        Ok(match self.snapshot(&deployment.id) {
            Some(snapshot) => HealthView {
                status: snapshot.health,
                checks: snapshot.checks,
                last_checked: snapshot.last_checked,
            },
            None => HealthView {
                status: Health::Unknown,
                checks: Vec::new(),
                last_checked: None,
            },
        })
    }

    pub fn events(
        &self,
        name: Option<&str>,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Event>, EngineError> {
        let id = match name {
            Some(name) => Some(self.resolve(name, environment)?.id),
            None => None,
        };
        Ok(self.store.events(id.as_deref(), limit)?.records)
    }

    /// Returns a deployment's captured output that passes `query`, oldest
    /// first. Build output without a revision means the current revision's.
    pub fn logs(
        &self,
        name: &str,
        environment: Option<&str>,
        query: &LogQuery,
        page: Page,
    ) -> Result<Vec<LogEntry>, EngineError> {
        let deployment = self.resolve(name, environment)?;
        let filter = LogFilter::new(&self.build_revision_default(query, &deployment))?;
        Ok(self.logs.query(&deployment.id, &filter, page)?)
    }

    /// Starts following a deployment's output. Returns the follower, then the
    /// newest `tail` entries that pass `query`; the follower skips those.
    pub fn follow_logs(
        &self,
        name: &str,
        environment: Option<&str>,
        query: &LogQuery,
        tail: usize,
    ) -> Result<(Follower, Vec<LogEntry>), EngineError> {
        let deployment = self.resolve(name, environment)?;
        let filter = LogFilter::new(&self.build_revision_default(query, &deployment))?;
        Ok(self.logs.follow_tail(&deployment.id, filter, tail)?)
    }

    /// Returns what the store contains of a deployment's output.
    pub fn log_stats(
        &self,
        name: &str,
        environment: Option<&str>,
    ) -> Result<LogStats, EngineError> {
        let deployment = self.resolve(name, environment)?;
        Ok(self.logs.stats(&deployment.id))
    }

    /// Returns the log hub, for the backend's build capture and for tests.
    pub fn log_hub(&self) -> &LogHub {
        &self.logs
    }

    fn build_revision_default(&self, query: &LogQuery, deployment: &Deployment) -> LogQuery {
        let mut query = query.clone();
        if query.build && query.revision.is_none() {
            query.revision = Some(deployment.revision);
        }
        query
    }

    /// Describes how resource limits are enforced on this host.
    pub fn limits_summary(&self) -> String {
        self.backend.limits_summary()
    }

    /// Counts for `agent status`: deployments that run and their replicas.
    pub fn counts(&self) -> (usize, usize) {
        let guard = self.supervisors_guard();
        let running = guard.values().filter(|h| !h.commands.is_closed());
        running.fold((0, 0), |(deployments, replicas), handle| {
            let live = handle.snapshot.borrow().replicas.len();
            (deployments + 1, replicas + live)
        })
    }

    /// Stops every replica (each within its grace period) and flushes the store.
    pub async fn shutdown(&self, timeout: Duration) {
        let handles: Vec<SupervisorHandle> = self.supervisors_guard().values().cloned().collect();
        let mut pending = Vec::new();
        for handle in handles {
            let (done, finished) = oneshot::channel();
            if handle
                .commands
                .send(Command::Shutdown { done })
                .await
                .is_ok()
            {
                pending.push(finished);
            }
        }
        let all = futures_join(pending);
        if tokio::time::timeout(timeout, all).await.is_err() {
            tracing::warn!("replicas did not stop in time; they are killed with the agent");
        }
        self.logs.flush().await;
        if let Err(error) = self.store.flush_async().await {
            tracing::error!(%error, "flushing the store at shutdown failed");
        }
    }
}

/// Records a delivery that failed every attempt as an event of the
/// notification's deployment, without the notification's body.
fn notify_failure_hook(store: Store) -> crate::notify::FailureHook {
    Arc::new(move |notification, channel, problem| {
        let key = (!notification.deployment.is_empty())
            .then(|| DeploymentKey::new(&notification.deployment, &notification.environment));
        let event = crate::store::NewEvent {
            time: OffsetDateTime::now_utc(),
            deployment: key,
            deployment_id: None,
            user: "agent".to_owned(),
            action: "notify-failed".to_owned(),
            outcome: EventOutcome::Error,
            message: format!("{} to channel {channel}: {problem}", notification.kind),
        };
        if let Err(error) = store.append_event(event) {
            tracing::error!(%error, channel, "saving a failed notification event failed");
        }
    })
}

async fn futures_join(receivers: Vec<oneshot::Receiver<()>>) {
    for receiver in receivers {
        let _ = receiver.await;
    }
}

fn ports_of(endpoints: &[String]) -> BTreeSet<u16> {
    endpoints
        .iter()
        .filter_map(|endpoint| endpoint.rsplit(':').next()?.parse().ok())
        .collect()
}

/// Rejects settings the manifest accepts but this agent cannot carry out
/// yet, rather than running something other than what was requested.
fn check_supported(spec: &Manifest) -> Result<(), EngineError> {
    let unsupported = |field: &str, message: &str| {
        Err(EngineError::Unsupported {
            field: field.to_owned(),
            message: message.to_owned(),
        })
    };
    match spec.backend {
        BackendKind::Process => Ok(()),
        BackendKind::Kubernetes => crate::backend::kubernetes::render::check_supported(spec)
            .map_err(|error| EngineError::Unsupported {
                field: error.field,
                message: error.message,
            }),
        BackendKind::Docker if spec.build.is_some() => unsupported(
            "build.command",
            "build.command is for backend: process; backend: docker builds the image from \
             the Dockerfile at the top of the source, so remove build",
        ),
        BackendKind::Docker => Ok(()),
    }
}

/// Rejects a redeploy that changes the backend, because the running
/// replicas belong to the old backend's supervisor.
fn check_same_backend(spec: &Manifest, existing: Option<&Deployment>) -> Result<(), EngineError> {
    match existing {
        Some(deployment) if deployment.backend != spec.backend && deployment.wants_replicas() => {
            Err(EngineError::Unsupported {
                field: "backend".to_owned(),
                message: format!(
                    "{} runs on backend {:?}, and a redeploy cannot move it to {:?}; \
                     undeploy it first (shipdeck undeploy {}), then deploy again",
                    deployment.name, deployment.backend, spec.backend, deployment.name
                ),
            })
        }
        _ => Ok(()),
    }
}

fn matches_query(view: &DeploymentView, query: &ListQuery) -> bool {
    let status_ok = if query.statuses.is_empty() {
        view.status != DeploymentStatus::Undeployed
    } else {
        query.statuses.contains(&view.status)
    };
    status_ok
        && query
            .environment
            .as_ref()
            .is_none_or(|env| &view.environment == env)
        && query
            .name
            .as_ref()
            .is_none_or(|text| view.name.contains(text.as_str()))
        && query.tags.iter().all(|tag| view.tags.contains(tag))
}

/// Prefix of a `--set` that defines a `${NAME}` variable instead of
/// overriding a manifest field.
const VARIABLE_PREFIX: &str = "var.";

/// Splits `--set` arguments into manifest overrides and `var.NAME=VALUE`
/// variables.
fn split_sets(sets: &[String]) -> Result<(Vec<Override>, BTreeMap<String, String>), EngineError> {
    let mut overrides = Vec::new();
    let mut vars = BTreeMap::new();
    for set in sets {
        let invalid = |message: String| EngineError::InvalidOverride {
            value: set.clone(),
            message,
        };
        if let Some(assignment) = set.strip_prefix(VARIABLE_PREFIX) {
            let (name, value) = assignment.split_once('=').ok_or_else(|| {
                invalid("expected var.NAME=VALUE, such as var.REGION=eu".to_owned())
            })?;
            check_variable_name(name).map_err(invalid)?;
            vars.insert(name.to_owned(), value.to_owned());
        } else {
            overrides.push(set.parse::<Override>().map_err(invalid)?);
        }
    }
    Ok((overrides, vars))
}

fn check_variable_name(name: &str) -> Result<(), String> {
    if name == ENVIRONMENT_VARIABLE {
        return Err(format!(
            "${{{ENVIRONMENT_VARIABLE}}} is the deployment's environment; choose it with --env"
        ));
    }
    if !manifest::is_env_name(name) {
        return Err(format!(
            "invalid variable name `{name}`; use letters, digits and `_`, not starting with a digit"
        ));
    }
    Ok(())
}

impl Engine {
    /// Parses a manifest, merges in its environment config and template,
    /// validates the result and renders it for this host: relative paths
    /// become absolute against the manifest's directory.
    fn build_spec(
        &self,
        input: &ManifestInput,
        overrides: &[Override],
        vars: BTreeMap<String, String>,
    ) -> Result<Manifest, EngineError> {
        let mut parsed = manifest::parse_typed::<Manifest>(&input.text, &input.origin, overrides)?;
        self.apply_config(&mut parsed.value, vars)?;
        let spec = parsed.validate()?;
        Ok(absolute_paths(spec, input))
    }
}

fn absolute_paths(mut spec: Manifest, input: &ManifestInput) -> Manifest {
    let base = input.base_dir.clone().unwrap_or_else(|| PathBuf::from("/"));
    // In a revision built from source, run.workdir stays relative to the
    // build tree; otherwise it becomes absolute here.
    // A docker replica's run.workdir is a path inside the image.
    let on_host = spec.source.is_none() && spec.backend == BackendKind::Process;
    if let Some(run) = spec.run.as_mut().filter(|_| on_host) {
        let workdir = base.join(run.workdir.as_deref().unwrap_or("."));
        run.workdir = Some(normalize(&workdir).display().to_string());
    }
    if let Some(source) = spec.source.as_mut() {
        if let Ok(path) = local_path(&source.url) {
            if path.is_relative() {
                source.url = normalize(&base.join(path)).display().to_string();
            }
        }
    }
    spec
}

/// Removes `.` and `..` components without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn new_deployment(spec: &Manifest, now: OffsetDateTime) -> Deployment {
    Deployment {
        id: new_id(),
        name: spec.name.clone(),
        environment: spec.environment.clone(),
        backend: spec.backend,
        status: DeploymentStatus::Pending,
        status_reason: None,
        version: spec.version.clone(),
        revision: 0,
        last_healthy_revision: None,
        desired_replicas: spec.replicas,
        tags: spec.tags.clone(),
        created_at: now,
        updated_at: now,
    }
}

/// Generates a random 128-bit id in hex.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS generator failing is next to impossible; time and pid still
        // give an id that is unique on this host.
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        bytes = (nanos ^ i128::from(std::process::id())).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Describes an autoscaling setting for the revision's reason, such as
/// "1..5 cpu 70%".
fn describe_autoscaling(scaling: &crate::manifest::AutoScaling) -> String {
    let mut text = format!("{}..{}", scaling.min_replicas, scaling.max_replicas);
    if let Some(percent) = scaling.target_cpu_utilization {
        text.push_str(&format!(" cpu {percent}%"));
    }
    if let Some(percent) = scaling.target_memory_utilization {
        text.push_str(&format!(" memory {percent}%"));
    }
    for target in &scaling.metrics {
        text.push_str(&format!(" {}={}", target.name, target.average_value));
    }
    text
}

/// Keeps the current revision's rate policies and interval where the new
/// setting (from `shipdeck autoscale`, which has no flags for them) leaves
/// them out.
fn keep_behavior(
    mut scaling: crate::manifest::AutoScaling,
    current: Option<&crate::manifest::AutoScaling>,
) -> crate::manifest::AutoScaling {
    if let Some(current) = current {
        scaling.scale_up_policy = scaling
            .scale_up_policy
            .or_else(|| current.scale_up_policy.clone());
        scaling.scale_down_policy = scaling
            .scale_down_policy
            .or_else(|| current.scale_down_policy.clone());
        scaling.interval = scaling.interval.or(current.interval);
    }
    scaling
}

/// Keeps the live replica count when the new revision autoscales: the
/// autoscaler owns the count, and the manifest's `replicas` is only where a
/// new deployment starts (as a cluster's Deployment leaves `replicas` to
/// its HorizontalPodAutoscaler). A count outside the new range is left to
/// the autoscaler, which moves it in at its next evaluation and records why.
fn keep_autoscaled_count(mut spec: Manifest, existing: Option<&Deployment>) -> Manifest {
    let autoscaled = spec
        .auto_scaling
        .as_ref()
        .is_some_and(|scaling| scaling.enabled);
    let live = existing
        .filter(|deployment| deployment.wants_replicas())
        .map(|deployment| deployment.desired_replicas);
    if let (true, Some(live)) = (autoscaled, live) {
        spec.replicas = live;
    }
    spec
}
