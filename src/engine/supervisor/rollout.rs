//! Rollouts: building a revision, replacing replicas within the strategy's
//! bounds, failing on a replica that dies before it is ready or on the
//! progress deadline, and reverting to the last healthy revision.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use tokio::sync::oneshot;

use super::{
    notify, plan_of, progress_deadline, run_workdir, BuiltTree, Internal, Outcome, Phase, Rollout,
    SharedPlan, StableEndpoint, Supervisor, Waiter, ENDPOINT_CLOSE_GRACE,
};
use crate::backend::process::HOME_MARKER_VAR;
use crate::backend::source::{fetch_and_build, BuildDirs, BuildLog};
use crate::backend::{Backend, ImageBuild};
use crate::endpoint::{Endpoint, EndpointConfig};
use crate::engine::recorder::DeploymentOutcome;
use crate::engine::replica::is_first_start;
use crate::engine::rolling::{next_step, Counts, RollingLimits};
use crate::manifest::StrategyKind;
use crate::model::{DeploymentStatus, Revision, RevisionStatus};

impl<B: Backend> Supervisor<B> {
    /// Takes a new revision: builds it first if it has a `source`.
    pub(super) async fn begin_rollout(&mut self, revision: Revision, done: Option<Waiter>) {
        let done = match self.take_over_in_place(&revision, done) {
            Ok(()) => return,
            Err(done) => done,
        };
        self.abandon_rollout(revision.revision);
        self.deployment.revision = revision.revision;
        self.deployment.version = revision.spec.version.clone();
        self.deployment.tags = revision.spec.tags.clone();
        self.logs
            .set_retention(&self.deployment.id, log_retention(&revision.spec));

        if revision.spec.source.is_some() {
            self.start_build(revision, done);
            return;
        }
        let workdir = run_workdir(&revision, None);
        let plan = plan_of(&revision, workdir, None);
        self.start_rollout(plan, None, done.into_iter().collect())
            .await;
    }

    /// Lets a revision that changes only `autoScaling` take over the
    /// running replicas without replacing any: nothing they run differs.
    /// Gives `done` back when the revision needs a rollout.
    fn take_over_in_place(
        &mut self,
        revision: &Revision,
        done: Option<Waiter>,
    ) -> Result<(), Option<Waiter>> {
        let Some(stable) = self.stable.clone() else {
            return Err(done);
        };
        let serving = self.deployment.revision == stable.revision;
        if self.rollout.is_some()
            || !serving
            || !crate::autoscale::differs_only_in_autoscaling(&stable.spec, &revision.spec)
        {
            return Err(done);
        }

        let plan = std::sync::Arc::new(crate::engine::plan::RevisionPlan {
            revision: revision.revision,
            spec: revision.spec.clone(),
            workdir: stable.workdir.clone(),
            image: stable.image.clone(),
            equivalent: stable
                .equivalent
                .iter()
                .copied()
                .chain([stable.revision])
                .collect(),
        });
        for replica in &mut self.replicas {
            if replica.plan.revision == stable.revision {
                replica.plan = plan.clone();
            }
        }
        self.stable = Some(plan);
        self.deployment.revision = revision.revision;
        self.deployment.last_healthy_revision = Some(revision.revision);
        self.recorder.revision_status(
            &self.deployment.id,
            stable.revision,
            RevisionStatus::Superseded,
            None,
        );
        self.recorder.revision_status(
            &self.deployment.id,
            revision.revision,
            RevisionStatus::Deployed,
            None,
        );
        let message = format!(
            "revision {} changes only autoScaling; the running replicas carry on under it",
            revision.revision
        );
        self.recorder
            .agent_event(&self.deployment, "rollout", true, &message);
        notify(done.into_iter().collect(), Outcome::Done(message));
        // The engine stored the deployment as pending when it made the
        // revision; the status may not change here, so save it anyway.
        self.set_status(DeploymentStatus::Deployed, None);
        self.save_deployment();
        self.publish();
        Ok(())
    }

    fn start_build(&mut self, revision: Revision, done: Option<Waiter>) {
        let dirs = BuildDirs::new(&self.builds_dir, &self.deployment.id, revision.revision);
        let spec = revision.spec.clone();
        let number = revision.revision;
        let internal = self.internal_tx.clone();
        let backend = self.backend.clone();
        let request = ImageBuild {
            key: self.deployment.key(),
            deployment_id: self.deployment.id.clone(),
            revision: number,
            dirs,
            log: BuildLog {
                hub: self.logs.clone(),
                deployment_id: self.deployment.id.clone(),
                revision: number,
            },
        };
        // The builds directory is `builds/` under the agent's home.
        let marker = self
            .builds_dir
            .parent()
            .map(|home| home.display().to_string());
        self.recorder
            .revision_status(&self.deployment.id, number, RevisionStatus::Building, None);
        tokio::spawn(async move {
            let Some(source) = spec.source.as_ref() else {
                return;
            };
            let build = spec.build.as_ref().map(|build| build.command.as_slice());
            // Builds run before any replica, with no secret values handed to
            // them: a variable that names a secret is left out rather than
            // passed with its `${SECRET:...}` text.
            let mut env: Vec<(String, String)> = spec
                .env
                .iter()
                .filter(|(_, value)| !value.contains("${SECRET:"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // The marker lets the next agent end a build that a crashed one
            // left running, as it does with replicas.
            env.extend(marker.map(|home| (HOME_MARKER_VAR.to_owned(), home)));
            let result = build_revision(&*backend, request, source, build, &env).await;
            let _ = internal
                .send(Internal::Built {
                    revision: number,
                    result,
                })
                .await;
        });
        self.phase = Phase::Building {
            revision: Box::new(revision),
            waiters: done.into_iter().collect(),
        };
        self.set_status(DeploymentStatus::Building, None);
    }

    pub(super) async fn finish_build(&mut self, number: u64, result: Result<BuiltTree, String>) {
        // A build that a newer revision or a stop replaced has no phase to end.
        let Phase::Building { revision, waiters } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        if revision.revision != number {
            self.phase = Phase::Building { revision, waiters };
            return;
        }
        self.phase = if self.stable.is_some() {
            Phase::Active
        } else {
            Phase::Idle
        };
        match result {
            Ok(built) => {
                let workdir = run_workdir(&revision, Some(&built.tree));
                let plan = plan_of(&revision, workdir, built.image);
                self.start_rollout(plan, None, waiters).await;
            }
            Err(error) => {
                let reason = format!(
                    "build of revision {number} failed: {error}; see `shipdeck logs {} --env {} --build --revision {number}`",
                    self.deployment.name, self.deployment.environment
                );
                self.recorder.revision_status(
                    &self.deployment.id,
                    number,
                    RevisionStatus::Failed,
                    Some(&reason),
                );
                self.recorder
                    .agent_event(&self.deployment, "build", false, &reason);
                self.after_failed_rollout(number, reason, waiters).await;
            }
        }
    }

    async fn start_rollout(
        &mut self,
        plan: SharedPlan,
        revert_reason: Option<String>,
        waiters: Vec<Waiter>,
    ) {
        if revert_reason.is_none() {
            self.recorder.revision_status(
                &self.deployment.id,
                plan.revision,
                RevisionStatus::Deploying,
                None,
            );
        }
        if let Err(reason) = self.ensure_endpoints(&plan).await {
            let reason = format!("revision {} cannot start: {reason}", plan.revision);
            if revert_reason.is_none() {
                self.recorder.revision_status(
                    &self.deployment.id,
                    plan.revision,
                    RevisionStatus::Failed,
                    Some(&reason),
                );
            }
            Box::pin(self.after_failed_rollout(plan.revision, reason, waiters)).await;
            return;
        }
        self.rollout = Some(Rollout {
            deadline: Instant::now() + progress_deadline(&plan),
            plan,
            revert_reason,
            ready_seen: 0,
            waiters,
        });
        self.phase = Phase::Active;
        self.set_status(DeploymentStatus::Deploying, None);
    }

    /// Opens a stable endpoint for every `hostPort` of `plan` that has none, and sets
    /// whether each endpoint observes HTTP as `plan` declares it. An endpoint that is
    /// already open keeps listening and changes its protocol for new connections only.
    pub(super) async fn ensure_endpoints(&mut self, plan: &SharedPlan) -> Result<(), String> {
        let wanted: Vec<(u16, bool)> = plan.stable_ports().collect();
        for (host_port, http) in wanted {
            if let Some(stable) = self.endpoints.get(&host_port) {
                stable.endpoint.set_http(http);
                continue;
            }
            let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, host_port));
            let config = EndpointConfig {
                http,
                ..EndpointConfig::default()
            };
            let endpoint = Endpoint::bind_with_config(address, config)
                .await
                .map_err(|error| error.to_string())?;
            tracing::info!(deployment = %self.deployment.key(), port = host_port, http, "stable endpoint listening");
            self.endpoints.insert(
                host_port,
                StableEndpoint {
                    endpoint,
                    backends: Vec::new(),
                },
            );
        }
        Ok(())
    }

    /// Closes the endpoints that neither the serving revision nor a rollout uses.
    pub(super) fn close_unused_endpoints(&mut self) {
        let mut used: Vec<u16> = Vec::new();
        for plan in self
            .stable
            .iter()
            .chain(self.rollout.as_ref().map(|r| &r.plan))
        {
            used.extend(plan.host_ports());
        }
        let unused: Vec<u16> = self
            .endpoints
            .keys()
            .filter(|port| !used.contains(port))
            .copied()
            .collect();
        for port in unused {
            if let Some(stable) = self.endpoints.remove(&port) {
                tracing::info!(deployment = %self.deployment.key(), port, "closing stable endpoint");
                tokio::spawn(async move {
                    stable.endpoint.close(ENDPOINT_CLOSE_GRACE).await;
                });
            }
        }
    }

    /// Drops a rollout in progress because a newer revision replaces it.
    fn abandon_rollout(&mut self, newer: u64) {
        let reason = format!("replaced by revision {newer} before it became ready");
        if let Some(rollout) = self.rollout.take() {
            if rollout.revert_reason.is_none() {
                self.recorder.revision_status(
                    &self.deployment.id,
                    rollout.plan.revision,
                    RevisionStatus::Failed,
                    Some(&reason),
                );
            }
            notify(rollout.waiters, Outcome::Failed(reason.clone()));
        }
        if let Phase::Building { revision, waiters } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        {
            self.recorder.revision_status(
                &self.deployment.id,
                revision.revision,
                RevisionStatus::Failed,
                Some(&reason),
            );
            notify(waiters, Outcome::Failed(reason));
        }
        self.phase = if self.stable.is_some() {
            Phase::Active
        } else {
            Phase::Idle
        };
    }

    pub(super) fn begin_stop(
        &mut self,
        undeploy: bool,
        waiters: Vec<Waiter>,
        shutdown: Option<oneshot::Sender<()>>,
    ) {
        let reason = if undeploy {
            "undeployed"
        } else {
            "agent stopped"
        };
        let kept = undeploy.then(|| self.kept_after_undeploy()).flatten();
        self.cut_short(reason);
        self.phase = Phase::Stopping {
            undeploy,
            waiters,
            shutdown,
            kept,
        };
        self.stop_where(|_| true);
    }

    /// Ends the rollout or build in progress, and notifies its waiters.
    pub(super) fn cut_short(&mut self, reason: &str) {
        if let Some(rollout) = self.rollout.take() {
            notify(
                rollout.waiters,
                Outcome::Failed(format!("rollout cut short: {reason}")),
            );
        }
        if let Phase::Building { waiters, .. } = std::mem::replace(&mut self.phase, Phase::Idle) {
            notify(
                waiters,
                Outcome::Failed(format!("build cut short: {reason}")),
            );
        }
        self.stable = None;
    }

    /// Describes what an undeploy leaves on the platform on purpose, from
    /// the revision that runs or is being rolled out.
    fn kept_after_undeploy(&self) -> Option<String> {
        let plan = self
            .rollout
            .as_ref()
            .map(|rollout| &rollout.plan)
            .or(self.stable.as_ref())?;
        self.backend
            .kept_after_undeploy(&self.deployment.key(), &plan.spec)
    }

    /// After a failed build or rollout of `failed`: back to the last healthy
    /// revision if there is one, else stop everything.
    async fn after_failed_rollout(&mut self, failed: u64, reason: String, waiters: Vec<Waiter>) {
        match self
            .stable
            .clone()
            .filter(|stable| stable.revision != failed)
        {
            Some(stable) => {
                let message = format!("{reason}; reverting to revision {}", stable.revision);
                self.recorder
                    .agent_event(&self.deployment, "revert", true, &message);
                self.deployment.revision = stable.revision;
                self.deployment.version = stable.spec.version.clone();
                Box::pin(self.start_rollout(stable, Some(reason), waiters)).await;
            }
            None => {
                notify(waiters, Outcome::Failed(reason.clone()));
                self.stop_where(|_| true);
                self.stable = None;
                self.phase = Phase::Idle;
                self.close_unused_endpoints();
                self.recorder
                    .notify_outcome(&self.deployment, DeploymentOutcome::Failed, &reason);
                self.set_status(DeploymentStatus::Failed, Some(reason));
            }
        }
    }

    pub(super) async fn step_rollout(&mut self) {
        let Some(rollout) = self.rollout.as_ref() else {
            return;
        };
        let plan = rollout.plan.clone();

        if let Some(reason) = self.rollout_failure(&plan) {
            self.fail_rollout(reason).await;
            return;
        }
        self.note_progress(&plan);

        let recreate = plan.spec.strategy.kind == StrategyKind::Recreate;
        let nothing_serves = !self.replicas.iter().any(|r| r.revision() != plan.revision);
        let done = if recreate || nothing_serves {
            self.step_all_at_once(&plan).await
        } else {
            self.step_rolling(&plan).await
        };
        if done {
            self.complete_rollout();
        }
    }

    /// Pushes the deadline out when another new replica became ready.
    fn note_progress(&mut self, plan: &SharedPlan) {
        let ready = self.count(|r| r.revision() == plan.revision && r.ready && r.is_live());
        let Some(rollout) = self.rollout.as_mut() else {
            return;
        };
        if ready > rollout.ready_seen {
            rollout.ready_seen = ready;
            rollout.deadline = Instant::now() + progress_deadline(plan);
        }
    }

    /// Returns why the rollout of `plan` has failed, if it has.
    fn rollout_failure(&self, plan: &SharedPlan) -> Option<String> {
        let failed = self
            .replicas
            .iter()
            .find(|r| r.revision() == plan.revision && r.has_ended() && !r.was_ready);
        if let Some(replica) = failed {
            return Some(format!(
                "replica {} of revision {} {} before it became ready",
                replica.slot,
                plan.revision,
                match replica.last_exit {
                    Some(exit) => super::super::replica::describe_exit(exit, replica.last_exit_oom),
                    None => format!("could not start: {}", replica.message),
                }
            ));
        }
        let deadline = self.rollout.as_ref().map(|r| r.deadline)?;
        if Instant::now() < deadline {
            return None;
        }
        let waiting = self
            .replicas
            .iter()
            .find(|r| r.revision() == plan.revision && !r.ready)
            .map(|r| format!(" (replica {}: {})", r.slot, r.message))
            .unwrap_or_default();
        Some(format!(
            "revision {} did not become ready within progressDeadlineSeconds={}{waiting}",
            plan.revision, plan.spec.strategy.progress_deadline_seconds
        ))
    }

    /// First rollout, `Recreate`, or nothing left serving: stop every other
    /// revision, then start all replicas at once.
    async fn step_all_at_once(&mut self, plan: &SharedPlan) -> bool {
        let revision = plan.revision;
        self.stop_where(|r| r.revision() != revision);
        if self.replicas.iter().any(|r| r.revision() != revision) {
            return false;
        }
        let mut all_ready = true;
        for slot in 0..self.deployment.desired_replicas {
            self.fill_slot(slot, plan).await;
            all_ready &= self.slot_ready(slot, revision);
        }
        all_ready
    }

    /// `RollingUpdate`: new replicas start and old ones stop within
    /// `maxSurge` and `maxUnavailable`.
    async fn step_rolling(&mut self, plan: &SharedPlan) -> bool {
        let revision = plan.revision;
        let desired = self.deployment.desired_replicas;
        let counts = Counts {
            desired,
            new_total: self.count(|r| r.revision() == revision && r.holds_slot()),
            new_ready: self.count(|r| r.revision() == revision && r.ready && r.is_live()),
            old_total: self.count(|r| r.revision() != revision && r.holds_slot()),
            old_ready: self.count(|r| r.revision() != revision && r.ready && r.is_live()),
            old_starting: self.count(|r| r.revision() != revision && is_first_start(r)),
        };
        if counts.new_ready >= desired && counts.old_total == 0 {
            return true;
        }
        let strategy = &plan.spec.strategy;
        let limits = RollingLimits::resolve(strategy.max_surge, strategy.max_unavailable, desired);
        let step = next_step(counts, limits);

        self.stop_where(|r| r.revision() != revision && !r.ready && !is_first_start(r));
        self.stop_old_ready(revision, step.stop_old_ready);
        for _ in 0..step.start_new {
            let Some(slot) = self.free_slot(revision) else {
                break;
            };
            self.fill_slot(slot, plan).await;
        }
        false
    }

    /// Stops `count` ready replicas of other revisions, highest slot first.
    fn stop_old_ready(&mut self, revision: u64, count: u32) {
        let mut old: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| {
                let r = &self.replicas[i];
                r.revision() != revision && r.ready && r.is_live()
            })
            .collect();
        old.sort_by_key(|&i| std::cmp::Reverse(self.replicas[i].slot));
        for index in old.into_iter().take(count as usize) {
            self.stop_replica(index);
        }
        self.drop_stopped_entries();
    }

    /// Finds the lowest slot below the desired count that no replica of
    /// `revision` occupies.
    fn free_slot(&self, revision: u64) -> Option<u32> {
        (0..self.deployment.desired_replicas).find(|slot| {
            !self
                .replicas
                .iter()
                .any(|r| r.slot == *slot && r.revision() == revision && r.holds_slot())
        })
    }

    fn slot_ready(&self, slot: u32, revision: u64) -> bool {
        self.replicas
            .iter()
            .any(|r| r.slot == slot && r.revision() == revision && r.ready && r.is_live())
    }

    pub(super) async fn fail_rollout(&mut self, reason: String) {
        let Some(rollout) = self.rollout.take() else {
            return;
        };
        tracing::warn!(deployment = %self.deployment.key(), %reason, "rollout failed");

        // Replicas of the failed revision never took traffic unless they
        // were ready; either way they go now.
        let failed_revision = rollout.plan.revision;
        self.stop_where(|r| r.revision() == failed_revision);

        if let Some(first_reason) = rollout.revert_reason {
            // The revert itself failed: keep supervising the last healthy
            // revision, which shows as degraded while it does not come up.
            let message = format!("{first_reason}; the revert failed too: {reason}");
            notify(rollout.waiters, Outcome::Failed(message.clone()));
            self.recorder
                .agent_event(&self.deployment, "revert", false, &message);
            self.recorder
                .notify_outcome(&self.deployment, DeploymentOutcome::Failed, &message);
            self.set_status(DeploymentStatus::Degraded, Some(message));
            return;
        }
        self.recorder.revision_status(
            &self.deployment.id,
            failed_revision,
            RevisionStatus::Failed,
            Some(&reason),
        );
        self.recorder
            .agent_event(&self.deployment, "rollout", false, &reason);
        self.after_failed_rollout(failed_revision, reason, rollout.waiters)
            .await;
    }

    fn complete_rollout(&mut self) {
        let Some(rollout) = self.rollout.take() else {
            return;
        };
        let plan = rollout.plan;
        let previous = self.stable.replace(plan.clone());
        self.close_unused_endpoints();

        if let Some(first_reason) = rollout.revert_reason {
            let message = format!("{first_reason}; reverted to revision {}", plan.revision);
            self.recorder
                .agent_event(&self.deployment, "revert", true, &message);
            self.recorder
                .notify_outcome(&self.deployment, DeploymentOutcome::Reverted, &message);
            notify(rollout.waiters, Outcome::Failed(message.clone()));
            self.set_status(DeploymentStatus::Deployed, Some(message));
            return;
        }

        // After an undeploy nothing is stable any more, but the revision
        // that served last is still marked deployed in the history.
        let previous = previous
            .map(|p| p.revision)
            .or(self.deployment.last_healthy_revision);
        if let Some(previous) = previous.filter(|&p| p != plan.revision) {
            self.recorder.revision_status(
                &self.deployment.id,
                previous,
                RevisionStatus::Superseded,
                None,
            );
        }
        self.recorder.revision_status(
            &self.deployment.id,
            plan.revision,
            RevisionStatus::Deployed,
            None,
        );
        self.deployment.last_healthy_revision = Some(plan.revision);
        let desired = self.deployment.desired_replicas;
        let message = format!(
            "revision {} is ready ({desired} of {desired} replicas)",
            plan.revision
        );
        self.recorder
            .agent_event(&self.deployment, "rollout", true, &message);
        self.recorder
            .notify_outcome(&self.deployment, DeploymentOutcome::Succeeded, &message);
        notify(rollout.waiters, Outcome::Done(message));
        self.set_status(DeploymentStatus::Deployed, None);
    }
}

/// Fetches the source and runs `build.command`, then has the backend build
/// its image from the tree, if it runs images.
async fn build_revision<B: Backend>(
    backend: &B,
    request: ImageBuild,
    source: &crate::manifest::Source,
    build: Option<&[String]>,
    env: &[(String, String)],
) -> Result<BuiltTree, String> {
    let tree = fetch_and_build(&request.dirs, source, build, env, &request.log)
        .await
        .map_err(|error| error.to_string())?;
    let image = backend
        .build_image(request)
        .await
        .map_err(|error| error.to_string())?;
    Ok(BuiltTree { tree, image })
}

/// Returns the retention of a revision's `logs.retention`, with the agent's default
/// for each limit it leaves out.
pub(super) fn log_retention(spec: &crate::manifest::Manifest) -> crate::logs::Retention {
    let default = crate::logs::Retention::default();
    let Some(retention) = spec.logs.as_ref().and_then(|logs| logs.retention.as_ref()) else {
        return default;
    };
    crate::logs::Retention {
        max_lines: retention.max_lines.unwrap_or(default.max_lines),
        max_bytes: retention
            .max_size
            .as_ref()
            .map_or(default.max_bytes, |size| size.bytes),
        max_age: retention
            .max_age
            .map_or(default.max_age, |age| age.as_std()),
    }
}
