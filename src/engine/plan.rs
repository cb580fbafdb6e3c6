//! What the supervisor needs to run one revision: its spec with paths made
//! absolute, and per-replica ports and probes derived from it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use super::ports::PortLease;
use crate::backend::{AssignedPort, BackendError, ContainerLaunch, ReplicaLaunch};
use crate::config::{render_env, SecretLookup};
use crate::manifest::{BackendKind, Manifest, PortRef, Probe, ProbeKind};
use crate::model::DeploymentKey;
use crate::probe::ProbeTarget;

/// One revision, ready to start replicas from.
#[derive(Debug)]
pub struct RevisionPlan {
    pub revision: u64,
    pub spec: Manifest,
    /// Where replicas start: the build tree for a `source`, else `run.workdir`.
    pub workdir: PathBuf,
    /// The id of the image built from `source` for a container backend,
    /// which replaces `image`.
    pub image: Option<String>,
    /// Earlier revisions that differ from this one only in `autoScaling`:
    /// their replicas run exactly what this revision runs, so they are
    /// adopted as this revision's.
    pub equivalent: Vec<u64>,
}

pub type SharedPlan = Arc<RevisionPlan>;

impl RevisionPlan {
    /// Lists the `hostPort`s of this revision, where its stable endpoints listen.
    pub fn host_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.spec.ports.iter().filter_map(|port| port.host_port)
    }

    /// Lists the `hostPort`s of this revision with whether clients speak HTTP/1.1 on
    /// each, which a port declares with `appProtocol: http` (in any letter case).
    pub fn stable_ports(&self) -> impl Iterator<Item = (u16, bool)> + '_ {
        self.spec.ports.iter().filter_map(|port| {
            let http = port
                .app_protocol
                .as_deref()
                .is_some_and(|protocol| protocol.eq_ignore_ascii_case("http"));
            Some((port.host_port?, http))
        })
    }

    /// Leases a private port for each manifest port of one replica. Host
    /// ports belong to the stable endpoints, never to a replica.
    pub fn assign_ports(&self) -> Result<(Vec<AssignedPort>, Vec<PortLease>), BackendError> {
        let mut leases = Vec::new();
        let mut assigned = Vec::new();
        for (position, port) in self.spec.ports.iter().enumerate() {
            let lease = PortLease::acquire().ok_or_else(|| BackendError::NoFreePort {
                field: format!("ports[{position}]"),
            })?;
            assigned.push(AssignedPort {
                name: port.name.clone(),
                container_port: port.container_port,
                host_port: port.host_port,
                port: lease.port(),
            });
            leases.push(lease);
        }
        Ok((assigned, leases))
    }

    /// Builds the launch request for replica `index` with its ports, with
    /// the current value of every secret that `env` refers to.
    pub fn launch(
        &self,
        deployment_id: &str,
        key: &DeploymentKey,
        index: u32,
        ports: Vec<AssignedPort>,
        secrets: &dyn SecretLookup,
    ) -> Result<ReplicaLaunch, BackendError> {
        let rendered = render_env(&self.spec.env, secrets)?;
        let mut env = rendered.env;
        if let Some(first) = ports.first() {
            env.insert("PORT".to_owned(), first.port.to_string());
        }
        for port in &ports {
            if let Some(name) = &port.name {
                env.insert(format!("PORT_{}", env_suffix(name)), port.port.to_string());
            }
        }
        env.insert("SHIPDECK_REPLICA".to_owned(), index.to_string());
        env.insert("SHIPDECK_DEPLOYMENT".to_owned(), key.name.clone());
        env.insert("SHIPDECK_ENVIRONMENT".to_owned(), key.environment.clone());
        env.insert("SHIPDECK_REVISION".to_owned(), self.revision.to_string());

        Ok(ReplicaLaunch {
            deployment_id: deployment_id.to_owned(),
            key: key.clone(),
            revision: self.revision,
            index,
            command: self
                .spec
                .run
                .as_ref()
                .map(|run| run.command.clone())
                .unwrap_or_default(),
            workdir: self.workdir.clone(),
            env,
            ports,
            memory_limit: self.limit(|list| list.memory.as_ref().map(|q| q.bytes)),
            cpu_millicores: self.limit(|list| list.cpu.as_ref().map(|q| q.millicores)),
            secret_values: rendered.secret_values,
            container: self.container_launch(),
            stop_signal: self.spec.stop_signal,
        })
    }

    /// The image, working directory and volumes of a `backend: docker` replica.
    fn container_launch(&self) -> Option<ContainerLaunch> {
        if self.spec.backend != BackendKind::Docker {
            return None;
        }
        Some(ContainerLaunch {
            image: self.image.clone().or_else(|| self.spec.image.clone())?,
            workdir: self.spec.run.as_ref().and_then(|run| run.workdir.clone()),
            volumes: self.spec.volumes.clone(),
            stats: self
                .spec
                .monitoring
                .as_ref()
                .is_none_or(|monitoring| monitoring.enabled),
        })
    }

    fn limit(&self, pick: impl Fn(&crate::manifest::ResourceList) -> Option<u64>) -> Option<u64> {
        self.spec.resources.limits.as_ref().and_then(pick)
    }

    /// The readiness probe of a replica with these ports, if the manifest
    /// has one; `None` means "ready once running".
    pub fn readiness_target(
        &self,
        ports: &[AssignedPort],
        env: &BTreeMap<String, String>,
    ) -> Option<ProbeTarget> {
        probe_target(self.spec.health_check.as_ref()?, ports, env)
    }

    /// Returns the port and path where a replica with these ports serves
    /// `monitoring.scrape`, if the manifest sets `monitoring.scrape`.
    pub fn scrape_target(&self, ports: &[AssignedPort]) -> Option<(u16, String)> {
        let monitoring = self.spec.monitoring.as_ref()?;
        if !monitoring.enabled {
            return None;
        }
        let scrape = monitoring.scrape.as_ref()?;
        let port = resolve_port(Some(&scrape.port), ports)?;
        Some((port, scrape.path.clone()))
    }

    /// Returns the liveness probe of a replica with these ports, if the manifest has one.
    pub fn liveness_target(
        &self,
        ports: &[AssignedPort],
        env: &BTreeMap<String, String>,
    ) -> Option<ProbeTarget> {
        probe_target(self.spec.liveness_check.as_ref()?, ports, env)
    }
}

fn probe_target(
    check: &Probe,
    ports: &[AssignedPort],
    env: &BTreeMap<String, String>,
) -> Option<ProbeTarget> {
    let resolve = || resolve_port(check.port.as_ref(), ports);
    Some(match check.kind {
        ProbeKind::Http => ProbeTarget::Http {
            port: resolve()?,
            path: check.path.clone().unwrap_or_else(|| "/".to_owned()),
        },
        ProbeKind::Tcp => ProbeTarget::Tcp { port: resolve()? },
        ProbeKind::Exec => ProbeTarget::Exec {
            command: check.command.clone().unwrap_or_default(),
            env: env.clone(),
        },
    })
}

/// Maps a probe's port (a `containerPort` or a port name) to the replica's
/// actual port; without a port the first one is meant.
fn resolve_port(port: Option<&PortRef>, ports: &[AssignedPort]) -> Option<u16> {
    let found = match port {
        None => ports.first(),
        Some(PortRef::Number(number)) => ports.iter().find(|p| p.container_port == *number),
        Some(PortRef::Name(name)) => ports.iter().find(|p| p.name.as_deref() == Some(name)),
    };
    found.map(|p| p.port)
}

/// `http-alt` → `HTTP_ALT`, for `PORT_<NAME>`.
fn env_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Whether nothing listens on `port`. std sets SO_REUSEADDR, so a port
/// whose last user just closed (TIME_WAIT) counts as free.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ports_mark_http_case_insensitively() {
        let manifest = crate::manifest::parse(
            "name: web\nrun: { command: [\"true\"] }\nports:\n\
             - { name: web, containerPort: 8080, hostPort: 18080, appProtocol: HTTP }\n\
             - { name: db, containerPort: 5432, hostPort: 15432 }\n\
             - { name: grpc, containerPort: 9000, hostPort: 19000, appProtocol: grpc }\n\
             - { name: admin, containerPort: 9090 }\n",
            "test",
            &[],
        )
        .expect("manifest parses");
        let plan = RevisionPlan {
            revision: 1,
            spec: manifest,
            workdir: PathBuf::from("/"),
            image: None,
            equivalent: Vec::new(),
        };

        let ports: Vec<(u16, bool)> = plan.stable_ports().collect();

        assert_eq!(ports, [(18080, true), (15432, false), (19000, false)]);
    }

    #[test]
    fn env_suffix_uppercases_and_replaces() {
        assert_eq!(env_suffix("http-alt"), "HTTP_ALT");
    }

    #[test]
    fn probe_port_resolves_by_name_and_number() {
        let ports = vec![
            AssignedPort {
                name: Some("http".into()),
                container_port: 8080,
                host_port: Some(18080),
                port: 18080,
            },
            AssignedPort {
                name: Some("admin".into()),
                container_port: 9090,
                host_port: None,
                port: 40000,
            },
        ];
        assert_eq!(
            resolve_port(Some(&PortRef::Number(9090)), &ports),
            Some(40000)
        );
        assert_eq!(
            resolve_port(Some(&PortRef::Name("http".into())), &ports),
            Some(18080)
        );
        assert_eq!(resolve_port(None, &ports), Some(18080));
    }
}
