//! A scripted stand-in for the deployment controller and the kubelet.
//!
//! For each Deployment it keeps `spec.replicas` pods of the current pod
//! template (labelled with `pod-template-hash`), deletes the pods of older
//! templates once the new ones are all ready (at once for `Recreate`), and
//! writes the Deployment's status and its `Available` and `Progressing`
//! conditions, including `ProgressDeadlineExceeded` after
//! `progressDeadlineSeconds`. Each pod behaves as its first container's
//! image is scripted: ready, running but unready, crash-looping, killed for
//! memory, or failing to pull its image. Pods belong to their Deployment
//! directly; the fake keeps no ReplicaSet objects.

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};

use super::logs::LogKey;
use super::resources::{self, ResourceType};
use super::store::{name_of, namespace_of};
use super::{now, State};

/// How the containers of a pod behave, scripted per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodBehavior {
    /// Starts and passes its readiness probe.
    #[default]
    Ready,
    /// Runs but never becomes ready.
    Unready,
    /// Exits with code 1 after each start; the kubelet backs off.
    CrashLoop,
    /// Is killed for exceeding its memory limit after each start.
    OomKilled,
    /// Never starts because its image cannot be pulled.
    ImagePullBackOff,
}

/// What the controller remembers between passes.
#[derive(Debug, Default)]
pub struct ControllerState {
    /// The status each HorizontalPodAutoscaler gets, by namespace and
    /// name, in place of an HPA controller.
    pub autoscaler_statuses: HashMap<(String, String), Value>,
    rollouts: HashMap<String, Rollout>,
    pods: HashMap<String, PodRun>,
    next_pod: u64,
    next_event: u64,
}

#[derive(Debug)]
struct Rollout {
    hash: String,
    started: Instant,
}

#[derive(Debug)]
struct PodRun {
    created: Instant,
    behavior: PodBehavior,
    started_at: Option<String>,
    restarts: u32,
    last_crash: Option<(Instant, String)>,
    ip: String,
}

fn resource(kind: &str) -> &'static ResourceType {
    resources::by_kind(kind).unwrap_or(&resources::RESOURCES[0])
}

/// Runs one pass over every Deployment.
pub fn reconcile(state: &mut State, clock: Instant) {
    let deployments: Vec<Value> = state
        .store
        .list(resource("Deployment"), None)
        .into_iter()
        .cloned()
        .collect();
    let live: Vec<String> = deployments.iter().map(uid_of).collect();
    state
        .controller
        .rollouts
        .retain(|uid, _| live.contains(uid));
    for deployment in deployments {
        reconcile_deployment(state, &deployment, clock);
    }
    write_autoscaler_statuses(state);
}

/// Writes each scripted autoscaler status into its object, as the HPA
/// controller writes what it measured and decided.
fn write_autoscaler_statuses(state: &mut State) {
    let autoscalers = resource("HorizontalPodAutoscaler");
    let mut changed = Vec::new();
    for ((namespace, name), status) in &state.controller.autoscaler_statuses {
        let Some(object) = state.store.get(autoscalers, namespace, name) else {
            continue;
        };
        if object.get("status") != Some(status) {
            let mut updated = object.clone();
            updated["status"] = status.clone();
            changed.push(updated);
        }
    }
    for updated in changed {
        state.store.update(autoscalers, updated);
    }
}

fn uid_of(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A short stable hash of the pod template, standing in for the
/// controller's `pod-template-hash`.
fn template_hash(template: &Value) -> String {
    // FNV-1a: stable across runs, unlike std's randomly seeded hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in template.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

fn reconcile_deployment(state: &mut State, deployment: &Value, clock: Instant) {
    let uid = uid_of(deployment);
    let name = name_of(deployment);
    let namespace = namespace_of(deployment);
    let spec = &deployment["spec"];
    let hash = template_hash(&spec["template"]);
    let desired = spec["replicas"].as_u64().unwrap_or(1) as usize;

    let rollout = state
        .controller
        .rollouts
        .entry(uid.clone())
        .or_insert_with(|| Rollout {
            hash: String::new(),
            started: clock,
        });
    if rollout.hash != hash {
        rollout.hash = hash.clone();
        rollout.started = clock;
        let message = format!("Scaled up replica set {name}-{hash} to {desired}");
        emit_event(
            state,
            deployment,
            "Normal",
            "ScalingReplicaSet",
            &message,
            "deployment-controller",
        );
    }
    let started = state
        .controller
        .rollouts
        .get(&uid)
        .map_or(clock, |r| r.started);

    let owned = owned_pods(state, &namespace, &uid);
    let (mut new, old): (Vec<Value>, Vec<Value>) = owned
        .into_iter()
        .partition(|pod| pod["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
    let mut old_names: Vec<String> = old.iter().map(name_of).collect();
    if spec["strategy"]["type"] == "Recreate" {
        for pod in &old_names {
            state.delete_cascading(resource("Pod"), &namespace, pod);
        }
        old_names.clear();
    }
    while new.len() < desired {
        new.push(create_pod(state, deployment, &hash));
    }
    while new.len() > desired {
        if let Some(extra) = new.pop() {
            state.delete_cascading(resource("Pod"), &namespace, &name_of(&extra));
        }
    }

    let mut ready = 0;
    for pod in &new {
        if advance_pod(state, pod, clock) {
            ready += 1;
        }
    }
    let complete = ready == desired;
    if complete {
        for pod in &old_names {
            state.delete_cascading(resource("Pod"), &namespace, pod);
        }
        old_names.clear();
    }
    let counts = Counts {
        desired,
        total: new.len() + old_names.len(),
        updated: new.len(),
        ready,
        complete: complete && old_names.is_empty(),
    };
    write_deployment_status(
        state,
        deployment,
        &hash,
        &counts,
        clock.duration_since(started).as_secs(),
    );
}

fn owned_pods(state: &State, namespace: &str, uid: &str) -> Vec<Value> {
    state
        .store
        .list(resource("Pod"), Some(namespace))
        .into_iter()
        .filter(|pod| pod["metadata"]["ownerReferences"][0]["uid"] == uid)
        .cloned()
        .collect()
}

fn create_pod(state: &mut State, deployment: &Value, hash: &str) -> Value {
    state.controller.next_pod += 1;
    let suffix = format!("{:05x}", state.controller.next_pod);
    let name = format!("{}-{hash}-{suffix}", name_of(deployment));
    let template = &deployment["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["pod-template-hash"] = json!(hash);
    let mut spec = template["spec"].clone();
    spec["nodeName"] = json!("fake-node");
    let containers: Vec<Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "ready": false, "restartCount": 0,
            "started": false, "state": {"waiting": {"reason": "ContainerCreating"}}})
        })
        .collect();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace_of(deployment),
            "labels": labels,
            "annotations": template["metadata"]["annotations"],
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(deployment),
                "uid": uid_of(deployment), "controller": true, "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
        "status": {"phase": "Pending", "containerStatuses": containers,
            "conditions": [{"type": "PodScheduled", "status": "True"}]},
    });
    let created = state.store.create(resource("Pod"), pod, &now());
    let image = created["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let behavior = state.behaviors.get(&image).copied().unwrap_or_default();
    let ip = format!("10.244.0.{}", state.controller.next_pod % 250 + 2);
    state.controller.pods.insert(
        uid_of(&created),
        PodRun {
            created: Instant::now(),
            behavior,
            started_at: None,
            restarts: 0,
            last_crash: None,
            ip,
        },
    );
    created
}

/// Moves a pod along its script and returns whether it is ready.
fn advance_pod(state: &mut State, pod: &Value, clock: Instant) -> bool {
    let uid = uid_of(pod);
    let Some(run) = state.controller.pods.get(&uid) else {
        return false;
    };
    if clock.duration_since(run.created) < state.options.pod_start_delay {
        return false;
    }
    let behavior = run.behavior;
    let first_start = run.started_at.is_none();
    let crash_due = run
        .last_crash
        .as_ref()
        .is_none_or(|(at, _)| clock.duration_since(*at) >= state.options.crash_interval);
    let image = pod["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    if first_start {
        if let Some(run) = state.controller.pods.get_mut(&uid) {
            run.started_at = Some(now());
        }
        match behavior {
            PodBehavior::Ready | PodBehavior::Unready => {
                start_containers(state, pod, &image, false)
            }
            PodBehavior::ImagePullBackOff => {
                let message = format!("Failed to pull image \"{image}\": not found");
                emit_event(state, pod, "Warning", "Failed", &message, "kubelet");
            }
            PodBehavior::CrashLoop | PodBehavior::OomKilled => {}
        }
    }
    if matches!(behavior, PodBehavior::CrashLoop | PodBehavior::OomKilled) && crash_due {
        start_containers(state, pod, &image, true);
        if let Some(run) = state.controller.pods.get_mut(&uid) {
            run.restarts += 1;
            run.last_crash = Some((clock, now()));
        }
        let container = pod["spec"]["containers"][0]["name"]
            .as_str()
            .unwrap_or_default();
        let message = format!(
            "Back-off restarting failed container {container} in pod {}",
            name_of(pod)
        );
        emit_event(state, pod, "Warning", "BackOff", &message, "kubelet");
    }

    let Some(run) = state.controller.pods.get(&uid) else {
        return false;
    };
    let status = pod_status(pod, run, &image);
    let ready = status["conditions"][1]["status"] == "True";
    let mut updated = pod.clone();
    updated["status"] = status;
    state.store.update(resource("Pod"), updated);
    ready
}

/// Starts a new instance of each container, which prints its scripted
/// lines and, for a crashing script, ends at once.
fn start_containers(state: &mut State, pod: &Value, image: &str, crashes: bool) {
    let lines = state
        .log_scripts
        .get(image)
        .cloned()
        .unwrap_or_else(|| vec![format!("{image} started in pod {}", name_of(pod))]);
    for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
        let key: LogKey = (
            namespace_of(pod),
            name_of(pod),
            container["name"].as_str().unwrap_or_default().to_owned(),
        );
        let events = state.log_events.clone();
        state.logs.start(&key, &lines, &events);
        if crashes {
            state.logs.write(&key, "fatal: exiting", &events);
            state.logs.end(&key, &events);
        }
    }
}

fn pod_status(pod: &Value, run: &PodRun, image: &str) -> Value {
    let started_at = run.started_at.clone().unwrap_or_default();
    let ready = run.behavior == PodBehavior::Ready;
    let container_names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    let mut statuses = Vec::new();
    for name in &container_names {
        let (state, last_state) = match run.behavior {
            PodBehavior::Ready | PodBehavior::Unready => {
                (json!({"running": {"startedAt": started_at}}), json!({}))
            }
            PodBehavior::ImagePullBackOff => (
                json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{image}\"")}}),
                json!({}),
            ),
            PodBehavior::CrashLoop | PodBehavior::OomKilled => {
                let (reason, code) = if run.behavior == PodBehavior::OomKilled {
                    ("OOMKilled", 137)
                } else {
                    ("Error", 1)
                };
                let finished = run
                    .last_crash
                    .as_ref()
                    .map(|(_, at)| at.clone())
                    .unwrap_or_default();
                (
                    json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!(
                        "back-off 10s restarting failed container={name} pod={}_{}({})",
                        name_of(pod), namespace_of(pod), uid_of(pod))}}),
                    json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": finished, "finishedAt": finished}}),
                )
            }
        };
        statuses.push(json!({
            "name": name,
            "image": image,
            "imageID": if run.behavior == PodBehavior::ImagePullBackOff { json!("") } else { json!(format!("docker.io/library/{image}@sha256:fake")) },
            "ready": ready,
            "started": matches!(run.behavior, PodBehavior::Ready | PodBehavior::Unready),
            "restartCount": run.restarts,
            "state": state,
            "lastState": last_state,
        }));
    }
    let ready_text = if ready { "True" } else { "False" };
    let mut ready_condition = json!({"type": "Ready", "status": ready_text});
    if !ready {
        ready_condition["reason"] = json!("ContainersNotReady");
        ready_condition["message"] = json!(format!(
            "containers with unready status: [{}]",
            container_names.join(" ")
        ));
    }
    let phase = if run.behavior == PodBehavior::ImagePullBackOff {
        "Pending"
    } else {
        "Running"
    };
    json!({
        "phase": phase,
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            ready_condition,
            {"type": "ContainersReady", "status": ready_text},
            {"type": "Initialized", "status": "True"},
        ],
        "hostIP": "10.0.0.1",
        "podIP": run.ip,
        "startTime": started_at,
        "containerStatuses": statuses,
    })
}

struct Counts {
    desired: usize,
    total: usize,
    updated: usize,
    ready: usize,
    complete: bool,
}

/// `maxUnavailable` as a pod count, rounding a percentage down as the
/// deployment controller does.
fn max_unavailable(deployment: &Value, desired: usize) -> usize {
    let value = &deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"];
    if let Some(count) = value.as_u64() {
        return count as usize;
    }
    let percent = value
        .as_str()
        .and_then(|text| text.strip_suffix('%'))
        .and_then(|number| number.parse::<usize>().ok())
        .unwrap_or(25);
    desired * percent / 100
}

fn write_deployment_status(
    state: &mut State,
    deployment: &Value,
    hash: &str,
    counts: &Counts,
    elapsed: u64,
) {
    let name = name_of(deployment);
    let deadline = deployment["spec"]["progressDeadlineSeconds"]
        .as_u64()
        .unwrap_or(600);
    let old_conditions = deployment["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let was_exceeded = old_conditions.iter().any(|c| {
        c["type"] == "Progressing"
            && c["reason"] == "ProgressDeadlineExceeded"
            && c["message"].as_str().is_some_and(|m| m.contains(hash))
    });
    let replica_set = format!("{name}-{hash}");
    let progressing = if counts.complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{replica_set}\" has successfully progressed."),
        )
    } else if was_exceeded || elapsed >= deadline {
        (
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{replica_set}\" has timed out progressing."),
        )
    } else {
        (
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{replica_set}\" is progressing."),
        )
    };
    let available_enough =
        counts.ready + max_unavailable(deployment, counts.desired) >= counts.desired;
    let available = if available_enough {
        (
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".to_owned(),
        )
    } else {
        (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".to_owned(),
        )
    };
    let conditions = vec![
        condition(&old_conditions, "Available", available),
        condition(&old_conditions, "Progressing", progressing),
    ];
    let mut status = json!({
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": counts.total,
        "updatedReplicas": counts.updated,
        "readyReplicas": counts.ready,
        "availableReplicas": counts.ready,
        "conditions": conditions,
    });
    let unavailable = counts.desired.saturating_sub(counts.ready);
    if unavailable > 0 {
        status["unavailableReplicas"] = json!(unavailable);
    }
    if deployment.get("status") == Some(&status) {
        return;
    }
    let mut updated = deployment.clone();
    updated["status"] = status;
    state.store.update(resource("Deployment"), updated);
}

/// A condition that keeps its old timestamps while its status and reason stay.
fn condition(old: &[Value], kind: &str, (status, reason, message): (&str, &str, String)) -> Value {
    let previous = old.iter().find(|c| c["type"] == kind);
    let same = previous.is_some_and(|c| {
        c["status"] == status && c["reason"] == reason && c["message"] == message.as_str()
    });
    let (updated, transitioned) = match previous {
        Some(c) if same => (c["lastUpdateTime"].clone(), c["lastTransitionTime"].clone()),
        Some(c) if c["status"] == status => (json!(now()), c["lastTransitionTime"].clone()),
        _ => (json!(now()), json!(now())),
    };
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": updated,
        "lastTransitionTime": transitioned,
    })
}

/// Records a core/v1 Event about `object`, counting repeats of the same
/// reason and message in one Event as the kubelet does.
pub fn emit_event(
    state: &mut State,
    object: &Value,
    kind: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let namespace = namespace_of(object);
    let events = resource("Event");
    let time = now();
    let existing = state
        .store
        .list(events, Some(&namespace))
        .into_iter()
        .find(|e| {
            e["involvedObject"]["uid"] == object["metadata"]["uid"]
                && e["reason"] == reason
                && e["message"] == message
        })
        .cloned();
    if let Some(mut event) = existing {
        let count = event["count"].as_u64().unwrap_or(1);
        event["count"] = json!(count + 1);
        event["lastTimestamp"] = json!(time);
        state.store.update(events, event);
        return;
    }
    state.controller.next_event += 1;
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{}.{:016x}", name_of(object), state.controller.next_event), "namespace": namespace},
        "involvedObject": {
            "apiVersion": object["apiVersion"], "kind": object["kind"], "name": name_of(object),
            "namespace": namespace, "uid": object["metadata"]["uid"],
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "count": 1,
        "firstTimestamp": time,
        "lastTimestamp": time,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": "",
    });
    state.store.create(events, event, &time);
}

/// Forgets what the controller kept about a deleted pod.
pub fn forget_pod(state: &mut State, uid: &str) {
    state.controller.pods.remove(uid);
}
