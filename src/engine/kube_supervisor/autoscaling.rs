//! Revisions that change only `autoScaling`. Applying such a revision's
//! Deployment would change its revision label, and with it the pod
//! template, so the cluster would replace every pod for nothing. Instead
//! the supervisor applies or deletes the HorizontalPodAutoscaler alone,
//! keeps the Deployment as it is, and makes the new revision the running
//! one at once.

use super::{notify, KubeSupervisor};
use crate::autoscale::differs_only_in_autoscaling;
use crate::backend::kubernetes::apply::{apply_autoscaler, scale_deployment};
use crate::engine::recorder::DeploymentOutcome;
use crate::engine::supervisor::{Outcome, SharedPlan, Waiter};
use crate::model::RevisionStatus;

impl KubeSupervisor {
    /// Returns the running revision's plan when `plan` can take over from it
    /// without replacing a pod. That holds when the cluster shows the
    /// running revision's Deployment and `plan` differs from it only in
    /// `autoScaling` and in the replica count, which the autoscaler or the
    /// `scale` subresource sets.
    pub(super) fn autoscaling_change_from(&self, plan: &SharedPlan) -> Option<SharedPlan> {
        if self.rollout.is_some() || self.connect_error.is_some() {
            return None;
        }
        let status = self.status.as_ref()?;
        if !status.exists || status.watch_error.is_some() {
            return None;
        }
        let stable = self.stable.clone()?;
        let mut running = stable.spec.clone();
        running.replicas = plan.spec.replicas;
        differs_only_in_autoscaling(&running, &plan.spec).then_some(stable)
    }

    /// Makes `plan`, which changes only autoscaling, the running revision
    /// in place of `stable`.
    pub(super) async fn change_autoscaling(
        &mut self,
        stable: SharedPlan,
        plan: SharedPlan,
        done: Option<Waiter>,
    ) {
        let waiters: Vec<Waiter> = done.into_iter().collect();
        let pods_of = self.template_revision();
        let replicas = self.deployment.desired_replicas;
        match self.apply_autoscaling(&plan, replicas).await {
            Ok(applied) => {
                self.deployment.revision = plan.revision;
                self.deployment.version = plan.spec.version.clone();
                self.deployment.tags = plan.spec.tags.clone();
                self.stable = Some(plan.clone());
                let message = format!(
                    "revision {} changes only autoScaling, so shipdeck {applied} and the pods of \
                     revision {pods_of} keep running",
                    plan.revision
                );
                self.finish_success(&plan, Some(stable), waiters, message);
                // The engine stored the new revision as pending; the
                // status may not change here, so save what runs.
                self.save_deployment();
            }
            Err(reason) => self.fail_autoscaling_change(&plan, &reason, waiters),
        }
    }

    /// Applies `plan`'s autoscaler, or deletes the autoscaler and sets the
    /// Deployment to `replicas` when `plan` turns autoscaling off. Returns
    /// what it did, for the timeline.
    async fn apply_autoscaling(
        &mut self,
        plan: &SharedPlan,
        replicas: u32,
    ) -> Result<String, String> {
        let objects = self.render_plan(plan, replicas).await?;
        let Some(cluster) = self.cluster.as_ref() else {
            return Err("not connected to the cluster".to_owned());
        };
        apply_autoscaler(&cluster.connection, &cluster.identity, &objects)
            .await
            .map_err(|error| error.to_string())?;
        if objects.autoscaler.is_some() {
            return Ok("applied the HorizontalPodAutoscaler".to_owned());
        }
        scale_deployment(&cluster.connection, &cluster.identity, replicas)
            .await
            .map_err(|error| error.to_string())?;
        Ok(format!(
            "deleted the HorizontalPodAutoscaler and set the Deployment to {replicas} replicas"
        ))
    }

    /// Records that `plan` could not take over. The running revision and
    /// its pods stay as they were, so nothing is reverted.
    fn fail_autoscaling_change(&mut self, plan: &SharedPlan, reason: &str, waiters: Vec<Waiter>) {
        let message = format!(
            "applying revision {}'s autoScaling failed: {reason}; revision {} keeps running",
            plan.revision, self.deployment.revision
        );
        tracing::warn!(deployment = %self.deployment.key(), %message, "autoscaling change failed");
        self.recorder().revision_status(
            &self.deployment.id,
            plan.revision,
            RevisionStatus::Failed,
            Some(&message),
        );
        self.recorder()
            .agent_event(&self.deployment, "rollout", false, &message);
        self.recorder()
            .notify_outcome(&self.deployment, DeploymentOutcome::Failed, &message);
        notify(waiters, Outcome::Failed(message));
        // The engine stored the new revision as pending; store what runs.
        self.save_deployment();
    }
}
