//! Translation of a replica launch into the engine's container settings:
//! name, labels, command, environment, limits, published ports, volumes.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};

use crate::backend::process::expand_command;
use crate::backend::{BackendError, ContainerLaunch, ReplicaLaunch};
use crate::manifest::{StopSignal, VolumeKind};

pub const LABEL_DEPLOYMENT: &str = "shipdeck.deployment";
pub const LABEL_ENVIRONMENT: &str = "shipdeck.environment";
pub const LABEL_REVISION: &str = "shipdeck.revision";
pub const LABEL_REPLICA: &str = "shipdeck.replica";
pub const LABEL_DEPLOYMENT_ID: &str = "shipdeck.deployment-id";
/// The agent home that created the container, so that agents of two homes
/// on one engine never touch each other's containers.
pub const LABEL_HOME: &str = "shipdeck.home";

/// Returns the readable container name, `shipdeck-NAME-ENV-rREV-IDX`.
pub fn container_name(launch: &ReplicaLaunch) -> String {
    let raw = format!(
        "shipdeck-{}-{}-r{}-{}",
        launch.key.name, launch.key.environment, launch.revision, launch.index
    );
    // The engine accepts [a-zA-Z0-9][a-zA-Z0-9_.-]*; custom environment
    // names may contain other characters.
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Returns the labels that mark a container as this agent's replica.
pub fn labels(launch: &ReplicaLaunch, home: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_DEPLOYMENT.to_owned(), launch.key.name.clone()),
        (LABEL_ENVIRONMENT.to_owned(), launch.key.environment.clone()),
        (LABEL_REVISION.to_owned(), launch.revision.to_string()),
        (LABEL_REPLICA.to_owned(), launch.index.to_string()),
        (LABEL_DEPLOYMENT_ID.to_owned(), launch.deployment_id.clone()),
        (LABEL_HOME.to_owned(), home.to_owned()),
    ])
}

/// Builds the container settings of one replica.
///
/// Inside the container the application listens on its `containerPort`,
/// so `PORT` and `PORT_<NAME>` name that port; the engine publishes it on
/// 127.0.0.1 at the private port the supervisor assigned, where the probes
/// and the stable endpoint reach it.
pub fn container_body(
    launch: &ReplicaLaunch,
    container: &ContainerLaunch,
    home: &str,
) -> Result<ContainerCreateBody, BackendError> {
    let env = container_env(launch);
    let cmd = if launch.command.is_empty() {
        None
    } else {
        Some(expand_command(&launch.command, &env)?)
    };
    let exposed: Vec<String> = launch
        .ports
        .iter()
        .map(|port| format!("{}/tcp", port.container_port))
        .collect();
    let (binds, anonymous) = volumes(container);
    Ok(ContainerCreateBody {
        image: Some(container.image.clone()),
        cmd,
        working_dir: container.workdir.clone(),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels(launch, home)),
        // Without a TTY the engine keeps stdout and stderr apart and frames
        // the log stream; the log reader relies on that.
        tty: Some(false),
        stop_signal: Some(signal_name(launch.stop_signal).to_owned()),
        exposed_ports: Some(exposed),
        volumes: (!anonymous.is_empty()).then_some(anonymous),
        host_config: Some(HostConfig {
            memory: launch.memory_limit.and_then(|b| i64::try_from(b).ok()),
            nano_cpus: launch
                .cpu_millicores
                .and_then(|m| i64::try_from(m.saturating_mul(1_000_000)).ok()),
            port_bindings: Some(port_bindings(launch)),
            binds: (!binds.is_empty()).then_some(binds),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The manifest's environment with `PORT` and `PORT_<NAME>` set to the
/// container ports, which is where the application listens.
fn container_env(launch: &ReplicaLaunch) -> BTreeMap<String, String> {
    let mut env = launch.env.clone();
    if let Some(first) = launch.ports.first() {
        env.insert("PORT".to_owned(), first.container_port.to_string());
    }
    for port in &launch.ports {
        if let Some(name) = &port.name {
            let suffix: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            env.insert(format!("PORT_{suffix}"), port.container_port.to_string());
        }
    }
    env
}

fn port_bindings(launch: &ReplicaLaunch) -> HashMap<String, Option<Vec<PortBinding>>> {
    launch
        .ports
        .iter()
        .map(|port| {
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".to_owned()),
                host_port: Some(port.port.to_string()),
            };
            (format!("{}/tcp", port.container_port), Some(vec![binding]))
        })
        .collect()
}

/// Splits the manifest's volumes into binds (`hostPath` as a bind mount,
/// `persistentVolume` as a named volume) and anonymous volumes
/// (`emptyDir`), which the engine removes with the container.
fn volumes(container: &ContainerLaunch) -> (Vec<String>, Vec<String>) {
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for volume in &container.volumes {
        match volume.kind {
            VolumeKind::EmptyDir => anonymous.push(volume.mount_path.clone()),
            VolumeKind::HostPath | VolumeKind::PersistentVolume => {
                let source = volume.source.as_deref().unwrap_or(&volume.name);
                binds.push(format!("{source}:{}", volume.mount_path));
            }
        }
    }
    (binds, anonymous)
}

/// Returns the signal's name as the engine's kill API and `StopSignal` take it.
pub fn signal_name(signal: StopSignal) -> &'static str {
    match signal {
        StopSignal::Term => "SIGTERM",
        StopSignal::Int => "SIGINT",
        StopSignal::Quit => "SIGQUIT",
        StopSignal::Hup => "SIGHUP",
        StopSignal::Usr1 => "SIGUSR1",
        StopSignal::Usr2 => "SIGUSR2",
        StopSignal::Kill => "SIGKILL",
    }
}

/// Splits an image reference into the name and tag that the pull API
/// takes. Without a tag the API pulls every tag, so `latest` is meant, as
/// `docker pull` does.
pub fn pull_reference(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_owned(), digest.to_owned());
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(colon) => {
            let at = last_slash + colon;
            (image[..at].to_owned(), image[at + 1..].to_owned())
        }
        None => (image.to_owned(), "latest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::AssignedPort;
    use crate::manifest::Volume;
    use crate::model::DeploymentKey;

    fn launch() -> ReplicaLaunch {
        ReplicaLaunch {
            deployment_id: "d1".to_owned(),
            key: DeploymentKey::new("web", "staging"),
            revision: 3,
            index: 1,
            command: vec!["serve".to_owned(), "--port=${PORT}".to_owned()],
            workdir: ".".into(),
            env: BTreeMap::from([("PORT".to_owned(), "41000".to_owned())]),
            ports: vec![AssignedPort {
                name: Some("http-alt".to_owned()),
                container_port: 8080,
                host_port: Some(18080),
                port: 41000,
            }],
            memory_limit: Some(256 * 1024 * 1024),
            cpu_millicores: Some(500),
            secret_values: Vec::new(),
            container: None,
            stop_signal: StopSignal::Int,
        }
    }

    fn container(volumes: Vec<Volume>) -> ContainerLaunch {
        ContainerLaunch {
            image: "sample:1".to_owned(),
            workdir: Some("/app".to_owned()),
            volumes,
        }
    }

    #[test]
    fn name_reads_well_and_is_valid() {
        let mut launch = launch();
        assert_eq!(container_name(&launch), "shipdeck-web-staging-r3-1");
        launch.key = DeploymentKey::new("web", "qa/eu");
        assert_eq!(container_name(&launch), "shipdeck-web-qa-eu-r3-1");
    }

    #[test]
    fn body_maps_limits_ports_and_command() {
        let body = container_body(&launch(), &container(Vec::new()), "/home/a").unwrap();
        let host = body.host_config.unwrap();

        assert_eq!(host.memory, Some(268_435_456));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        let bindings = host.port_bindings.unwrap();
        let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("41000"));
        assert_eq!(body.cmd.unwrap(), ["serve", "--port=8080"]);
        assert_eq!(body.working_dir.as_deref(), Some("/app"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(body.tty, Some(false));
    }

    #[test]
    fn env_names_container_ports() {
        let body = container_body(&launch(), &container(Vec::new()), "/home/a").unwrap();
        let env = body.env.unwrap();

        assert!(env.contains(&"PORT=8080".to_owned()), "{env:?}");
        assert!(env.contains(&"PORT_HTTP_ALT=8080".to_owned()), "{env:?}");
    }

    #[test]
    fn labels_name_replica_and_home() {
        let labels = labels(&launch(), "/home/a");

        assert_eq!(labels[LABEL_DEPLOYMENT], "web");
        assert_eq!(labels[LABEL_ENVIRONMENT], "staging");
        assert_eq!(labels[LABEL_REVISION], "3");
        assert_eq!(labels[LABEL_REPLICA], "1");
        assert_eq!(labels[LABEL_HOME], "/home/a");
    }

    #[test]
    fn empty_command_keeps_image_default() {
        let mut launch = launch();
        launch.command.clear();
        let body = container_body(&launch, &container(Vec::new()), "/h").unwrap();
        assert_eq!(body.cmd, None);
    }

    #[test]
    fn volumes_map_by_kind() {
        let volume = |name: &str, kind, source: Option<&str>| Volume {
            name: name.to_owned(),
            mount_path: format!("/{name}"),
            kind,
            source: source.map(str::to_owned),
        };
        let volumes = vec![
            volume("cache", VolumeKind::EmptyDir, None),
            volume("conf", VolumeKind::HostPath, Some("/srv/conf")),
            volume("data", VolumeKind::PersistentVolume, None),
        ];
        let body = container_body(&launch(), &container(volumes), "/h").unwrap();

        assert_eq!(body.volumes.unwrap(), ["/cache"]);
        assert_eq!(
            body.host_config.unwrap().binds.unwrap(),
            ["/srv/conf:/conf", "data:/data"]
        );
    }

    #[test]
    fn pull_reference_defaults_to_latest() {
        assert_eq!(
            pull_reference("busybox"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            pull_reference("localhost:5000/app:1.2"),
            ("localhost:5000/app".into(), "1.2".into())
        );
        assert_eq!(
            pull_reference("localhost:5000/app"),
            ("localhost:5000/app".into(), "latest".into())
        );
        assert_eq!(
            pull_reference("app@sha256:abc"),
            ("app".into(), "sha256:abc".into())
        );
    }
}
