//! Store writes made by supervisors on their own (status changes, automatic
//! reverts), and the notifications of a deployment's outcomes. A failed
//! write is logged and does not stop supervision: the replicas matter more
//! than the record, and the next change writes again.

use time::OffsetDateTime;

use crate::model::{Deployment, EventOutcome, Notification, RevisionStatus};
use crate::notify::Notifier;
use crate::store::{Change, NewEvent, Store};

#[derive(Clone)]
pub struct Recorder {
    store: Store,
    notifier: Notifier,
}

/// An outcome of a deployment that is sent as a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentOutcome {
    /// A rollout finished with every replica ready.
    Succeeded,
    /// A build or rollout failed and nothing healthy runs in its place.
    Failed,
    /// A build or rollout failed and the last healthy revision runs again.
    Reverted,
    /// Every replica stopped after an undeploy.
    Undeployed,
}

impl DeploymentOutcome {
    fn kind(self) -> &'static str {
        match self {
            Self::Succeeded => "deployment-succeeded",
            Self::Failed => "deployment-failed",
            Self::Reverted => "deployment-reverted",
            Self::Undeployed => "deployment-undeployed",
        }
    }

    /// Failures and reverts need a person; the others are for the record.
    fn severity(self) -> &'static str {
        match self {
            Self::Succeeded | Self::Undeployed => "low",
            Self::Failed | Self::Reverted => "high",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Succeeded => "deployed",
            Self::Failed => "failed",
            Self::Reverted => "reverted",
            Self::Undeployed => "undeployed",
        }
    }
}

impl Recorder {
    pub fn new(store: Store, notifier: Notifier) -> Self {
        Self { store, notifier }
    }

    /// Tells the readers that follow changes that what the deployment's
    /// supervisor observes has changed.
    pub fn announce_deployment(&self, id: &str) {
        self.store
            .announce(Change::Deployment { id: id.to_owned() });
    }

    /// Sends the notification of a deployment's outcome, without waiting for
    /// its delivery.
    ///
    /// The channels are the `monitoring.notifications` of the deployment's
    /// newest revision, the manifest that was deployed last. Without any,
    /// the notification is only kept in the in-app history, because
    /// deployment notifications were never asked for.
    pub fn notify_outcome(
        &self,
        deployment: &Deployment,
        outcome: DeploymentOutcome,
        message: &str,
    ) {
        let notification = Notification {
            kind: outcome.kind().to_owned(),
            title: format!("{} {}", deployment.key(), outcome.verb()),
            message: message.to_owned(),
            severity: outcome.severity().to_owned(),
            deployment: deployment.name.clone(),
            environment: deployment.environment.clone(),
            time: OffsetDateTime::now_utc(),
            alert: None,
            sequence: 0,
        };
        let channels = self.outcome_channels(&deployment.id);
        if channels.is_empty() {
            self.notifier.keep(notification);
            return;
        }
        self.notifier.send(notification, Some(&channels));
    }

    fn outcome_channels(&self, deployment_id: &str) -> Vec<String> {
        let newest =
            self.store
                .latest_revision_number(deployment_id)
                .and_then(|number| match number {
                    Some(number) => self.store.get_revision(deployment_id, number),
                    None => Ok(None),
                });
        match newest {
            Ok(revision) => revision
                .and_then(|revision| revision.spec.monitoring)
                .map(|monitoring| monitoring.notifications)
                .unwrap_or_default(),
            Err(error) => {
                tracing::error!(deployment_id, %error, "reading the notification channels of a deployment failed");
                Vec::new()
            }
        }
    }

    pub fn save_deployment(&self, deployment: &Deployment) {
        if let Err(error) = self.store.put_deployment(deployment) {
            tracing::error!(deployment = %deployment.key(), %error, "saving the deployment record failed");
        }
    }

    /// Sets a revision's status, and its reason when one is given.
    pub fn revision_status(
        &self,
        deployment_id: &str,
        number: u64,
        status: RevisionStatus,
        reason: Option<&str>,
    ) {
        let result = self
            .store
            .get_revision(deployment_id, number)
            .and_then(|found| {
                let Some(mut revision) = found else {
                    return Ok(());
                };
                revision.status = status;
                if let Some(reason) = reason {
                    revision.reason = format!("{}: {reason}", revision.reason);
                }
                self.store.put_revision(&revision)
            });
        if let Err(error) = result {
            tracing::error!(deployment_id, revision = number, %error, "saving the revision status failed");
        }
    }

    /// Records something the agent did by itself.
    pub fn agent_event(&self, deployment: &Deployment, action: &str, ok: bool, message: &str) {
        self.user_event(deployment, "agent", action, ok, message);
    }

    /// Records something a Kubernetes cluster reported about the
    /// deployment's objects, with `cluster` as the actor.
    pub fn cluster_event(&self, deployment: &Deployment, action: &str, ok: bool, message: &str) {
        self.user_event(deployment, "cluster", action, ok, message);
    }

    /// Stores an event that an operator's request caused, with the
    /// operator's user name.
    pub fn user_event(
        &self,
        deployment: &Deployment,
        user: &str,
        action: &str,
        ok: bool,
        message: &str,
    ) {
        let event = NewEvent {
            time: OffsetDateTime::now_utc(),
            deployment: Some(deployment.key()),
            deployment_id: Some(deployment.id.clone()),
            user: user.to_owned(),
            action: action.to_owned(),
            outcome: if ok {
                EventOutcome::Ok
            } else {
                EventOutcome::Error
            },
            message: message.to_owned(),
        };
        if let Err(error) = self.store.append_event(event) {
            tracing::error!(deployment = %deployment.key(), %error, "saving an event failed");
        }
    }
}
