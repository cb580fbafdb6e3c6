//! Store writes made by supervisors on their own (status changes, automatic
//! reverts). A failed write is logged and does not stop supervision: the
//! replicas matter more than the record, and the next change writes again.

use time::OffsetDateTime;

use crate::model::{Deployment, EventOutcome, RevisionStatus};
use crate::store::{NewEvent, Store};

#[derive(Clone)]
pub struct Recorder {
    store: Store,
}

impl Recorder {
    pub fn new(store: Store) -> Self {
        Self { store }
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
        let event = NewEvent {
            time: OffsetDateTime::now_utc(),
            deployment: Some(deployment.key()),
            deployment_id: Some(deployment.id.clone()),
            user: "agent".to_owned(),
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
