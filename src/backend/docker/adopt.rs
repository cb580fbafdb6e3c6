//! Finding the containers an earlier agent of this home left, by their
//! labels, for the supervisors to adopt or discard, and removing those of
//! deployments that no supervisor runs.

use std::collections::HashMap;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::ListContainersOptions;
use bollard::Docker;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::spec::{LABEL_DEPLOYMENT_ID, LABEL_HOME, LABEL_REPLICA, LABEL_REVISION};
use super::{remove, replica_source, DockerBackend, DockerError};
use crate::backend::{FoundReplica, ReplicaLaunch};
use crate::logs::{LogFilter, LogQuery, Page};

impl DockerBackend {
    /// Lists this home's containers of `deployment_id` that this agent does
    /// not follow.
    pub(super) async fn find(
        &self,
        docker: &Docker,
        deployment_id: &str,
    ) -> Result<Vec<FoundReplica>, DockerError> {
        let labels = vec![
            format!("{LABEL_HOME}={}", self.shared.home),
            format!("{LABEL_DEPLOYMENT_ID}={deployment_id}"),
        ];
        let mut found = Vec::new();
        for summary in self.list(docker, labels).await? {
            let Some(replica) = found_replica(&summary) else {
                tracing::warn!(container = ?summary.names, "a container with this home's label lacks the replica labels; leaving it alone");
                continue;
            };
            if self.shared.is_tracked(&replica.container) {
                continue;
            }
            let started_at = self.started_at(docker, &replica.container).await;
            found.push(FoundReplica {
                started_at,
                ..replica
            });
        }
        Ok(found)
    }

    /// Returns the time of the newest captured line of the replica, as an
    /// entry id (nanoseconds since the epoch), so that its adopted log
    /// stream resumes after it.
    // NOTE: the id is the agent's capture time, a little after the engine's
    // stamp of the line. A line that the engine stamped in that gap and the
    // crashed agent never stored is skipped on resume.
    pub(super) fn last_logged(&self, launch: &ReplicaLaunch) -> Option<u64> {
        let query = LogQuery {
            replica: Some(replica_source(&launch.key, launch.index)),
            revision: Some(launch.revision),
            ..LogQuery::default()
        };
        let filter = LogFilter::new(&query).ok()?;
        match self
            .logs
            .query(&launch.deployment_id, &filter, Page::Tail(1))
        {
            Ok(entries) => entries.last().map(|entry| entry.id),
            Err(error) => {
                tracing::warn!(deployment_id = %launch.deployment_id, %error, "cannot read the last captured line; the adopted container's output starts from its beginning");
                None
            }
        }
    }

    /// Removes this home's containers whose deployment id `claimed` rejects.
    pub(super) async fn remove_unclaimed(
        &self,
        claimed: &(impl Fn(&str) -> bool + Send + Sync),
    ) -> Result<(), DockerError> {
        let docker = self.docker().await?;
        let labels = vec![format!("{LABEL_HOME}={}", self.shared.home)];
        for summary in self.list(docker, labels).await? {
            let labels = summary.labels.as_ref();
            let Some(deployment) = labels.and_then(|labels| labels.get(LABEL_DEPLOYMENT_ID)) else {
                continue;
            };
            if claimed(deployment) {
                continue;
            }
            let Some(id) = summary.id.as_deref() else {
                continue;
            };
            tracing::warn!(container = ?summary.names, deployment, "removing a container of a deployment that no longer runs");
            remove(docker, id).await;
        }
        Ok(())
    }

    async fn list(
        &self,
        docker: &Docker,
        labels: Vec<String>,
    ) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), labels)])),
            ..Default::default()
        };
        docker
            .list_containers(Some(options))
            .await
            .map_err(|source| self.request_error("list", "containers", source))
    }

    async fn started_at(&self, docker: &Docker, container: &str) -> Option<OffsetDateTime> {
        let info = docker.inspect_container(container, None).await.ok()?;
        let started = info.state?.started_at?;
        OffsetDateTime::parse(&started, &Rfc3339).ok()
    }
}

/// Reads a container's replica from its labels and published ports.
fn found_replica(summary: &ContainerSummary) -> Option<FoundReplica> {
    let labels = summary.labels.as_ref()?;
    let revision = labels.get(LABEL_REVISION)?.parse().ok()?;
    let slot = labels.get(LABEL_REPLICA)?.parse().ok()?;
    let ports = summary
        .ports
        .iter()
        .flatten()
        .filter_map(|port| Some((port.private_port, port.public_port?)))
        .collect();
    let name = summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| name.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    Some(FoundReplica {
        container: summary.id.clone()?,
        name,
        revision,
        slot,
        running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
        ports,
        started_at: None,
        created: summary.created.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::PortSummary;

    #[test]
    fn found_replica_reads_labels_and_ports() {
        let summary = ContainerSummary {
            id: Some("abc".to_owned()),
            names: Some(vec!["/shipdeck-web-development-r3-1".to_owned()]),
            labels: Some(HashMap::from([
                (LABEL_REVISION.to_owned(), "3".to_owned()),
                (LABEL_REPLICA.to_owned(), "1".to_owned()),
            ])),
            ports: Some(vec![PortSummary {
                ip: Some("127.0.0.1".to_owned()),
                private_port: 8080,
                public_port: Some(41000),
                typ: None,
            }]),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            created: Some(7),
            ..Default::default()
        };
        let found = found_replica(&summary).expect("a replica");

        assert_eq!(found.name, "shipdeck-web-development-r3-1");
        assert_eq!((found.revision, found.slot), (3, 1));
        assert_eq!(found.ports, [(8080, 41000)]);
        assert!(found.running);
    }

    #[test]
    fn container_without_replica_labels_is_not_found() {
        let summary = ContainerSummary {
            id: Some("abc".to_owned()),
            labels: Some(HashMap::new()),
            ..Default::default()
        };
        assert!(found_replica(&summary).is_none());
    }
}
