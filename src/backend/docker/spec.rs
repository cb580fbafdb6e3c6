//! Translation of a replica launch into the engine's container settings:
//! name, labels, command, environment, limits, published ports, volumes.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, VolumeCreateRequest};

use crate::backend::process::expand_command;
use crate::backend::{BackendError, ContainerLaunch, ReplicaLaunch};
use crate::manifest::{Manifest, StopSignal, Volume, VolumeKind};
use crate::model::DeploymentKey;

pub const LABEL_DEPLOYMENT: &str = "shipdeck.deployment";
pub const LABEL_ENVIRONMENT: &str = "shipdeck.environment";
pub const LABEL_REVISION: &str = "shipdeck.revision";
pub const LABEL_REPLICA: &str = "shipdeck.replica";
pub const LABEL_DEPLOYMENT_ID: &str = "shipdeck.deployment-id";
/// The agent home that created the container, so that agents of two homes
/// on one engine never touch each other's containers.
pub const LABEL_HOME: &str = "shipdeck.home";
/// On a named volume: the manifest's name of the volume.
pub const LABEL_VOLUME: &str = "shipdeck.volume";

/// Returns the readable container name, `shipdeck-NAME-ENV-rREV-IDX`.
pub fn container_name(launch: &ReplicaLaunch) -> String {
    engine_name(&format!(
        "shipdeck-{}-{}-r{}-{}",
        launch.key.name, launch.key.environment, launch.revision, launch.index
    ))
}

/// Replaces what the engine rejects in container and volume names: it
/// accepts [a-zA-Z0-9][a-zA-Z0-9_.-]*, and custom environment names may
/// contain other characters.
fn engine_name(raw: &str) -> String {
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

/// Returns the tag of the image built for a revision from its source,
/// `shipdeck/NAME-ENV:rev-N`. Image names are lower case, so the name and
/// environment are lowered and anything else the engine rejects is `-`.
pub fn image_tag(key: &DeploymentKey, revision: u64) -> String {
    let repository: String = format!("{}-{}", key.name, key.environment)
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("shipdeck/{repository}:rev-{revision}")
}

/// Returns the engine's name of a `persistentVolume`: its `source` as given,
/// or `shipdeck-NAME-ENV-VOLUME`, so that two deployments with a volume of
/// the same name never share its data by accident.
pub fn volume_name(key: &DeploymentKey, volume: &Volume) -> String {
    match volume.source.as_deref().filter(|source| !source.is_empty()) {
        Some(source) => source.to_owned(),
        None => engine_name(&format!(
            "shipdeck-{}-{}-{}",
            key.name, key.environment, volume.name
        )),
    }
}

/// Lists the named volumes of `spec` that an undeploy keeps: every
/// `persistentVolume`, because its data must outlive a deployment.
pub fn kept_volumes(key: &DeploymentKey, spec: &Manifest) -> Vec<String> {
    spec.volumes
        .iter()
        .filter(|volume| volume.kind == VolumeKind::PersistentVolume)
        .map(|volume| volume_name(key, volume))
        .collect()
}

/// Returns the requests that create the named volumes shipdeck names for a
/// replica, labelled with the home and deployment. A volume that `source`
/// names belongs to the user, and is used as it is.
pub fn volumes_to_create(
    launch: &ReplicaLaunch,
    container: &ContainerLaunch,
    home: &str,
) -> Vec<VolumeCreateRequest> {
    container
        .volumes
        .iter()
        .filter(|volume| volume.kind == VolumeKind::PersistentVolume)
        .filter(|volume| volume.source.as_deref().is_none_or(str::is_empty))
        .map(|volume| VolumeCreateRequest {
            name: Some(volume_name(&launch.key, volume)),
            labels: Some(HashMap::from([
                (LABEL_DEPLOYMENT.to_owned(), launch.key.name.clone()),
                (LABEL_ENVIRONMENT.to_owned(), launch.key.environment.clone()),
                (LABEL_DEPLOYMENT_ID.to_owned(), launch.deployment_id.clone()),
                (LABEL_HOME.to_owned(), home.to_owned()),
                (LABEL_VOLUME.to_owned(), volume.name.clone()),
            ])),
            ..Default::default()
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
    let (binds, anonymous) = volumes(&launch.key, container);
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
fn volumes(key: &DeploymentKey, container: &ContainerLaunch) -> (Vec<String>, Vec<String>) {
    let mut binds = Vec::new();
    let mut anonymous = Vec::new();
    for volume in &container.volumes {
        match volume.kind {
            VolumeKind::EmptyDir => anonymous.push(volume.mount_path.clone()),
            VolumeKind::HostPath => {
                let source = volume.source.as_deref().unwrap_or(&volume.name);
                binds.push(format!("{source}:{}", volume.mount_path));
            }
            VolumeKind::PersistentVolume => {
                let name = volume_name(key, volume);
                binds.push(format!("{name}:{}", volume.mount_path));
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
            stats: true,
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
            ["/srv/conf:/conf", "shipdeck-web-staging-data:/data"]
        );
    }

    #[test]
    fn persistent_volume_named_and_labelled() {
        let mut data = Volume {
            name: "data".to_owned(),
            mount_path: "/data".to_owned(),
            kind: VolumeKind::PersistentVolume,
            source: None,
        };
        let launch = launch();
        let requests = volumes_to_create(&launch, &container(vec![data.clone()]), "/h");

        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].name.as_deref(),
            Some("shipdeck-web-staging-data")
        );
        let labels = requests[0].labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_HOME], "/h");
        assert_eq!(labels[LABEL_VOLUME], "data");

        data.source = Some("team-data".to_owned());
        assert!(volumes_to_create(&launch, &container(vec![data.clone()]), "/h").is_empty());
        assert_eq!(volume_name(&launch.key, &data), "team-data");
    }

    #[test]
    fn image_tag_is_lower_case_per_revision() {
        let key = DeploymentKey::new("web", "QA/eu");
        assert_eq!(image_tag(&key, 7), "shipdeck/web-qa-eu:rev-7");
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
