//! The deployment's status, health and endpoints as derived from its
//! replicas, stored when they change and published to readers.

use std::net::{Ipv4Addr, SocketAddr};

use time::OffsetDateTime;

use super::{notify, Outcome, Phase, Snapshot, Supervisor};
use crate::backend::Backend;
use crate::endpoint::Backend as EndpointBackend;
use crate::engine::replica::{is_first_start, Replica};
use crate::engine::scrape::ScrapeTarget;
use crate::model::{DeploymentStatus, Health, HealthCheckView, ReplicaView};

impl<B: Backend> Supervisor<B> {
    /// Derives the status from the replicas while the deployment is steady.
    pub(super) fn refresh_status(&mut self) {
        if !matches!(self.phase, Phase::Active) || self.rollout.is_some() {
            return;
        }
        let desired = self.deployment.desired_replicas;
        let ready = self.ready_count();
        if ready >= desired {
            let keep = self
                .deployment
                .status_reason
                .clone()
                .filter(|_| self.deployment.status == DeploymentStatus::Deployed);
            self.set_status(DeploymentStatus::Deployed, keep);
            return;
        }
        let unready: Vec<&Replica> = self
            .replicas
            .iter()
            .filter(|r| !r.ready && !r.is_stopping())
            .collect();
        // Replicas that are only starting (after a scale-up) are progress,
        // not trouble; one that failed or lost readiness degrades.
        let in_trouble = unready.iter().find(|r| !is_first_start(r));
        let (status, detail) = match (in_trouble, unready.first()) {
            (Some(replica), _) => (DeploymentStatus::Degraded, Some(*replica)),
            (None, Some(replica)) => (DeploymentStatus::Deploying, Some(*replica)),
            (None, None) => (DeploymentStatus::Degraded, None),
        };
        let detail = detail
            .map(|r| format!("; replica {}: {}", r.slot, r.message))
            .unwrap_or_default();
        let reason = format!("{ready} of {desired} replicas ready{detail}");
        self.set_status(status, Some(reason));
    }

    pub(super) fn ready_count(&self) -> u32 {
        let revision = self.deployment.revision;
        self.count(|r| r.ready && r.is_live() && r.revision() == revision)
    }

    pub(super) fn settle_scale_waiters(&mut self) {
        if self.scale_waiters.is_empty() || self.rollout.is_some() {
            return;
        }
        let desired = self.deployment.desired_replicas;
        let settled = self.ready_count() == desired
            && self
                .replicas
                .iter()
                .all(|r| r.slot < desired && !r.is_stopping());
        if settled {
            let message = format!("{desired} of {desired} replicas ready");
            notify(
                std::mem::take(&mut self.scale_waiters),
                Outcome::Done(message),
            );
        }
    }

    pub(super) fn set_status(&mut self, status: DeploymentStatus, reason: Option<String>) {
        if self.deployment.status == status && self.deployment.status_reason == reason {
            return;
        }
        let previous = self.deployment.status;
        self.deployment.status = status;
        self.deployment.status_reason = reason.clone();
        self.save_deployment();

        let noteworthy = matches!(
            (previous, status),
            (DeploymentStatus::Deployed, DeploymentStatus::Degraded)
                | (DeploymentStatus::Degraded, DeploymentStatus::Deployed)
        );
        if noteworthy {
            let message = reason.unwrap_or_else(|| "all replicas ready".to_owned());
            self.recorder
                .agent_event(&self.deployment, status.as_str(), true, &message);
        }
    }

    pub(super) fn save_deployment(&mut self) {
        self.deployment.updated_at = OffsetDateTime::now_utc();
        self.recorder.save_deployment(&self.deployment);
    }

    /// Points each stable endpoint at the replicas that are ready now.
    pub(super) fn sync_endpoints(&mut self) {
        for (host_port, stable) in &mut self.endpoints {
            let mut backends: Vec<(u64, SocketAddr)> = self
                .replicas
                .iter()
                .filter(|r| r.ready && r.is_live())
                .filter_map(|r| {
                    let id = r.id()?.0;
                    let port = r.ports.iter().find(|p| p.host_port == Some(*host_port))?;
                    Some((id, SocketAddr::from((Ipv4Addr::LOCALHOST, port.port))))
                })
                .collect();
            backends.sort_unstable();
            if backends != stable.backends {
                stable.endpoint.set_backends(
                    backends
                        .iter()
                        .map(|&(id, addr)| EndpointBackend { id, addr }),
                );
                stable.backends = backends;
            }
        }
    }

    /// Takes one replica out of every stable endpoint at once; returns
    /// whether any endpoint had it.
    pub(super) fn withdraw_from_endpoints(&mut self, id: u64) -> bool {
        let mut found = false;
        for stable in self.endpoints.values_mut() {
            if !stable.backends.iter().any(|(backend, _)| *backend == id) {
                continue;
            }
            found = true;
            stable.backends.retain(|(backend, _)| *backend != id);
            stable.endpoint.set_backends(
                stable
                    .backends
                    .iter()
                    .map(|&(id, addr)| EndpointBackend { id, addr }),
            );
        }
        found
    }

    pub(super) fn publish(&self) {
        let mut replicas: Vec<ReplicaView> = self.replicas.iter().map(Replica::view).collect();
        replicas.sort_by_key(|view| (view.index, view.revision));
        let desired = self.deployment.desired_replicas;
        let health = if desired == 0 || !self.deployment.wants_replicas() {
            Health::Unknown
        } else if self.platform_problem().is_some() {
            // What runs on a platform that does not respond cannot be seen.
            Health::Unknown
        } else if self.ready_count() >= desired {
            Health::Healthy
        } else {
            Health::Unhealthy
        };
        let snapshot = Snapshot {
            deployment: self.deployment.clone(),
            replicas,
            checks: self.checks(),
            health,
            last_checked: self.last_checked,
            endpoints: self.endpoints(),
            scrape_targets: self.scrape_targets(),
            endpoint_readers: self
                .endpoints
                .values()
                .map(|stable| stable.endpoint.stats_reader())
                .collect(),
            cluster_autoscaler: None,
            pod_metrics: None,
        };
        // Probe messages change at every check; only what a deployment's
        // view shows is worth a notice to the dashboards that follow.
        let changed = {
            let old = self.snapshot_tx.borrow();
            old.deployment != snapshot.deployment
                || old.replicas != snapshot.replicas
                || old.health != snapshot.health
                || old.endpoints != snapshot.endpoints
        };
        self.snapshot_tx.send_replace(snapshot);
        if changed {
            self.recorder.announce_deployment(&self.deployment.id);
        }
    }

    fn checks(&self) -> Vec<HealthCheckView> {
        let mut replicas: Vec<&Replica> =
            self.replicas.iter().filter(|r| !r.is_stopping()).collect();
        replicas.sort_by_key(|r| (r.slot, r.revision()));
        let mut checks = Vec::new();
        if let Some(problem) = self.platform_problem() {
            checks.push(HealthCheckView {
                name: "platform".to_owned(),
                status: Health::Unknown,
                message: format!("{problem}; replicas are shown as last seen"),
            });
        }
        for r in replicas {
            checks.push(HealthCheckView {
                name: format!("replica-{} (revision {})", r.slot, r.revision()),
                status: if r.ready {
                    Health::Healthy
                } else {
                    Health::Unhealthy
                },
                message: r.message.clone(),
            });
            if let Some(message) = &r.liveness_message {
                let failing = r.liveness.as_ref().is_some_and(|p| p.failures > 0);
                checks.push(HealthCheckView {
                    name: format!("replica-{} (revision {}) liveness", r.slot, r.revision()),
                    status: if failing {
                        Health::Unhealthy
                    } else {
                        Health::Healthy
                    },
                    message: message.clone(),
                });
            }
            if let Some(health) = r.container_health {
                checks.push(HealthCheckView {
                    name: format!("replica-{} (revision {}) HEALTHCHECK", r.slot, r.revision()),
                    status: health.as_health(),
                    message: format!("the image's HEALTHCHECK reports {health}"),
                });
            }
        }
        checks
    }

    fn scrape_targets(&self) -> Vec<ScrapeTarget> {
        self.replicas
            .iter()
            .filter(|r| r.ready && r.is_live())
            .filter_map(|r| {
                let (port, path) = r.plan.scrape_target(&r.ports)?;
                Some(ScrapeTarget {
                    replica: (r.slot, r.revision()),
                    address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                    path,
                })
            })
            .collect()
    }

    /// Lists the stable address of every port with a `hostPort`. Ports
    /// without one have no stable address, so they are listed per replica.
    fn endpoints(&self) -> Vec<String> {
        let plan = self
            .rollout
            .as_ref()
            .map(|r| &r.plan)
            .or(self.stable.as_ref());
        let mut endpoints: Vec<String> = self
            .endpoints
            .keys()
            .map(|host_port| {
                let port = plan.and_then(|p| {
                    p.spec
                        .ports
                        .iter()
                        .find(|q| q.host_port == Some(*host_port))
                });
                format!("{}://127.0.0.1:{host_port}", scheme_of(port))
            })
            .collect();

        let mut live: Vec<&Replica> = self.replicas.iter().filter(|r| r.is_live()).collect();
        live.sort_by_key(|r| r.slot);
        for replica in live {
            for (assigned, port) in replica.ports.iter().zip(&replica.plan.spec.ports) {
                if port.host_port.is_none() {
                    endpoints.push(format!(
                        "{}://127.0.0.1:{}",
                        scheme_of(Some(port)),
                        assigned.port
                    ));
                }
            }
        }
        endpoints
    }
}

fn scheme_of(port: Option<&crate::manifest::Port>) -> String {
    let Some(port) = port else {
        return "tcp".to_owned();
    };
    match port.app_protocol.as_deref() {
        Some(protocol) => protocol.to_owned(),
        None if port.name.as_deref().is_some_and(|n| n.starts_with("http")) => "http".to_owned(),
        None => "tcp".to_owned(),
    }
}
