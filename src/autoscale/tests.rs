//! Tests of the autoscaler against the semantics of the Kubernetes HPA
//! controller (autoscaling/v2: `replica_calculator.go` for the replica
//! counts, `horizontal.go` for the windows and rate policies). Every
//! expected count is worked out from those semantics, not from this
//! module's code. The clock is injected: each evaluation names its time.

use proptest::prelude::*;

use super::*;
use crate::manifest::{ScalingRule, ScalingRuleKind, SelectPolicy};

/// A realistic wall-clock start (June 2025), so that every window reaches
/// back before it.
const T0: u64 = 1_750_000_000_000;
const SECOND: u64 = 1000;
const MIB: u64 = 1024 * 1024;
const RPS: &str = "requests_per_second";

fn cpu(percent: u32) -> Target {
    Target::CpuUtilization { percent }
}

fn memory(percent: u32) -> Target {
    Target::MemoryUtilization { percent }
}

fn per_replica(value: f64) -> Target {
    Target::AverageValue {
        metric: RPS.to_owned(),
        value,
    }
}

fn pods(value: u32, period_seconds: u32) -> ScalingRule {
    ScalingRule {
        kind: ScalingRuleKind::Pods,
        value,
        period_seconds,
    }
}

fn percent(value: u32, period_seconds: u32) -> ScalingRule {
    ScalingRule {
        kind: ScalingRuleKind::Percent,
        value,
        period_seconds,
    }
}

/// Rules without a stabilization window, so that only the rate applies.
fn rate(select: SelectPolicy, rules: Vec<ScalingRule>) -> Behavior {
    Behavior {
        stabilization_window_seconds: 0,
        select,
        rules,
    }
}

fn window(seconds: u32) -> Behavior {
    Behavior {
        stabilization_window_seconds: seconds,
        select: SelectPolicy::Max,
        rules: vec![pods(100, 15)],
    }
}

fn policy(min: u32, max: u32, targets: Vec<Target>) -> Policy {
    Policy {
        min_replicas: min,
        max_replicas: max,
        targets,
        scale_up: Behavior::default_up(),
        scale_down: Behavior::default_down(),
        tolerance: TOLERANCE,
    }
}

/// `current` ready replicas without samples and a deployment-wide series
/// of `total`: with an `AverageValue` target of 1 per replica, the
/// recommendation is `total` whenever it differs from `current` by more
/// than the tolerance.
fn series_observation(current: u32, total: Option<f64>) -> Observation {
    Observation {
        current_replicas: current,
        replicas: (0..current)
            .map(|slot| ReplicaSample {
                slot,
                ready: true,
                cpu_cores: None,
                memory_bytes: None,
            })
            .collect(),
        series: total
            .map(|total| BTreeMap::from([(RPS.to_owned(), total)]))
            .unwrap_or_default(),
        ..Observation::default()
    }
}

// ---------------------------------------------------------------------
// Resource utilization: CPU and memory targets.
// ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Resource {
    Cpu,
    Memory,
}

/// One replica's usage in millicores (CPU) or MiB (memory), `None` before
/// its first sample.
#[derive(Debug, Clone, Copy)]
struct Sample {
    usage: Option<u64>,
    ready: bool,
}

const fn ready(usage: u64) -> Sample {
    Sample {
        usage: Some(usage),
        ready: true,
    }
}

const fn unready(usage: u64) -> Sample {
    Sample {
        usage: Some(usage),
        ready: false,
    }
}

/// A replica that is still starting: not ready and without a sample.
const MISSING: Sample = Sample {
    usage: None,
    ready: false,
};

struct UtilizationCase {
    name: &'static str,
    resource: Resource,
    target: u32,
    /// Millicores (CPU) or MiB (memory) per replica.
    request: Option<u64>,
    current: u32,
    replicas: Vec<Sample>,
    recommendation: Option<u32>,
    /// The reading's (ready, missing, unready) counts.
    counts: (u32, u32, u32),
}

fn utilization_observation(case: &UtilizationCase) -> Observation {
    let is_cpu = case.resource == Resource::Cpu;
    let replicas = case
        .replicas
        .iter()
        .zip(0..)
        .map(|(sample, slot)| ReplicaSample {
            slot,
            ready: sample.ready,
            cpu_cores: sample
                .usage
                .filter(|_| is_cpu)
                .map(|millicores| millicores as f64 / 1000.0),
            memory_bytes: sample.usage.filter(|_| !is_cpu).map(|mib| mib * MIB),
        });
    Observation {
        current_replicas: case.current,
        replicas: replicas.collect(),
        cpu_request_cores: case
            .request
            .filter(|_| is_cpu)
            .map(|millicores| millicores as f64 / 1000.0),
        memory_request_bytes: case.request.filter(|_| !is_cpu).map(|mib| mib * MIB),
        series: BTreeMap::new(),
    }
}

#[rustfmt::skip]
fn utilization_cases() -> Vec<UtilizationCase> {
    use Resource::{Cpu, Memory};
    vec![
        // Tolerance: 0.9 <= utilization / target <= 1.1 keeps the count.
        UtilizationCase { name: "cpu at 108% of target keeps the count",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(540); 3], recommendation: Some(3), counts: (3, 0, 0) },
        UtilizationCase { name: "cpu at exactly 110% of target keeps the count",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(550); 3], recommendation: Some(3), counts: (3, 0, 0) },
        UtilizationCase { name: "cpu at 112% of target scales up",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(560); 3], recommendation: Some(4), counts: (3, 0, 0) },
        // Near the lower bound ceil() lowers the count only for about ten
        // replicas or more: ceil(0.92 x 13) = 12, ceil(0.9 x 10) = 9.
        UtilizationCase { name: "cpu at 92% of target keeps the count",
            resource: Cpu, target: 50, request: Some(1000), current: 13,
            replicas: vec![ready(460); 13], recommendation: Some(13), counts: (13, 0, 0) },
        UtilizationCase { name: "cpu at exactly 90% of target keeps the count",
            resource: Cpu, target: 50, request: Some(1000), current: 10,
            replicas: vec![ready(450); 10], recommendation: Some(10), counts: (10, 0, 0) },
        UtilizationCase { name: "cpu at 88% of target scales down",
            resource: Cpu, target: 50, request: Some(1000), current: 9,
            replicas: vec![ready(440); 9], recommendation: Some(8), counts: (9, 0, 0) },
        UtilizationCase { name: "cpu well above target scales up",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(900); 3], recommendation: Some(6), counts: (3, 0, 0) },
        UtilizationCase { name: "cpu well below target scales down",
            resource: Cpu, target: 50, request: Some(1000), current: 4,
            replicas: vec![ready(100); 4], recommendation: Some(1), counts: (4, 0, 0) },
        // 301m of 900m is 33.4%, which the controller truncates to 33%:
        // ceil(0.66 x 3) = 2, where the exact ratio would give 3.
        UtilizationCase { name: "utilization truncates to a whole percent",
            resource: Cpu, target: 50, request: Some(300), current: 3,
            replicas: vec![ready(100), ready(100), ready(101)], recommendation: Some(2), counts: (3, 0, 0) },
        // Missing samples on a scale-down count as the full request:
        // (300 + 1000) / 4000 = 32%, ceil(0.64 x 4) = 3 rather than 1.
        UtilizationCase { name: "missing replica counts as its request when scaling down",
            resource: Cpu, target: 50, request: Some(1000), current: 4,
            replicas: vec![ready(100), ready(100), ready(100), MISSING], recommendation: Some(3), counts: (3, 1, 0) },
        // With a target of 200% they count at the target: (400 + 4000) /
        // 4000 = 110%, ceil(0.55 x 4) = 3 (at 100% it would be 2).
        UtilizationCase { name: "missing replica counts at a target above 100%",
            resource: Cpu, target: 200, request: Some(1000), current: 4,
            replicas: vec![ready(200), ready(200), MISSING, MISSING], recommendation: Some(3), counts: (2, 2, 0) },
        // On a scale-up they count as zero: 1600 / 3000 = 53% is within
        // the tolerance of the 50% target, where the ready ones alone
        // ask for 4.
        UtilizationCase { name: "missing replica counts as zero when scaling up",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(800), ready(800), MISSING], recommendation: Some(3), counts: (2, 1, 0) },
        UtilizationCase { name: "missing replica still allows a large scale-up",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(1500), ready(1500), MISSING], recommendation: Some(6), counts: (2, 1, 0) },
        // (200 + 1000) / 2000 = 60% > 50%: the direction flips, so hold.
        UtilizationCase { name: "missing replica that flips the direction keeps the count",
            resource: Cpu, target: 50, request: Some(1000), current: 2,
            replicas: vec![ready(200), MISSING], recommendation: Some(2), counts: (1, 1, 0) },
        // Four replicas exist for a count of 2 while two of them stop:
        // (600 + 1000) / 4000 = 40%, ceil(0.8 x 4) = 4 > 2, so hold.
        UtilizationCase { name: "scale-down that would raise the count keeps it",
            resource: Cpu, target: 50, request: Some(1000), current: 2,
            replicas: vec![ready(200), ready(200), ready(200), MISSING], recommendation: Some(2), counts: (3, 1, 0) },
        // Unready CPU samples are left out: ceil(0.2 x 2) = 1.
        UtilizationCase { name: "unready cpu replica is ignored when scaling down",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(100), ready(100), unready(900)], recommendation: Some(1), counts: (2, 0, 1) },
        // On a scale-up they count as zero: 1600 / 3000 = 53%, within.
        UtilizationCase { name: "unready cpu replica counts as zero when scaling up",
            resource: Cpu, target: 50, request: Some(1000), current: 3,
            replicas: vec![ready(800), ready(800), unready(900)], recommendation: Some(3), counts: (2, 0, 1) },
        UtilizationCase { name: "unready and missing cpu replicas both count as zero",
            resource: Cpu, target: 50, request: Some(1000), current: 4,
            replicas: vec![ready(1000), ready(1000), unready(900), MISSING], recommendation: Some(4), counts: (2, 1, 1) },
        // Memory keeps unready samples: 240 / 300 = 80%, ceil(1.6 x 3) = 5.
        UtilizationCase { name: "unready memory replica counts like a ready one",
            resource: Memory, target: 50, request: Some(100), current: 3,
            replicas: vec![ready(80), ready(80), unready(80)], recommendation: Some(5), counts: (3, 0, 0) },
        // 470 MiB of 512 MiB is 91.8%, truncated to 91, and 91 / 70 =
        // 1.3, so ceil(2.6) = 3.
        UtilizationCase { name: "memory above target scales up",
            resource: Memory, target: 70, request: Some(256), current: 2,
            replicas: vec![ready(230), ready(240)], recommendation: Some(3), counts: (2, 0, 0) },
        UtilizationCase { name: "memory within tolerance keeps the count",
            resource: Memory, target: 70, request: Some(256), current: 2,
            replicas: vec![ready(180), ready(190)], recommendation: Some(2), counts: (2, 0, 0) },
        UtilizationCase { name: "memory below target scales down",
            resource: Memory, target: 70, request: Some(256), current: 4,
            replicas: vec![ready(40); 4], recommendation: Some(1), counts: (4, 0, 0) },
        UtilizationCase { name: "missing memory sample counts as its request when scaling down",
            resource: Memory, target: 50, request: Some(100), current: 4,
            replicas: vec![ready(10), ready(10), ready(10), MISSING], recommendation: Some(3), counts: (3, 1, 0) },
    ]
}

#[test]
fn utilization_targets_follow_the_controller() {
    for case in utilization_cases() {
        let target = match case.resource {
            Resource::Cpu => cpu(case.target),
            Resource::Memory => memory(case.target),
        };
        let mut history = History::default();
        let decision = history.evaluate(
            &policy(1, 20, vec![target]),
            &utilization_observation(&case),
            T0,
        );
        let reading = &decision.metrics[0];
        assert_eq!(reading.problem, None, "{}: problem", case.name);
        assert_eq!(
            reading.recommendation, case.recommendation,
            "{}: recommendation",
            case.name
        );
        assert_eq!(
            (reading.ready, reading.missing, reading.unready),
            case.counts,
            "{}: (ready, missing, unready)",
            case.name
        );
        assert_eq!(
            decision.recommendation, case.recommendation,
            "{}: decision's recommendation",
            case.name
        );
    }
}

#[test]
fn utilization_reading_reports_whole_percent() {
    let cases = utilization_cases();
    let case = cases
        .iter()
        .find(|case| case.name == "utilization truncates to a whole percent")
        .expect("the truncation case is in the table");
    let decision = History::default().evaluate(
        &policy(1, 20, vec![cpu(case.target)]),
        &utilization_observation(case),
        T0,
    );
    assert_eq!(decision.metrics[0].current, Some(33.0), "{}", case.name);
}

#[test]
fn steady_reason_names_tolerance_only_when_it_applies() {
    let expected = [
        (
            "cpu at 108% of target keeps the count",
            "every target is within 10% of its value",
        ),
        (
            "memory within tolerance keeps the count",
            "every target is within 10% of its value",
        ),
        (
            "missing replica that flips the direction keeps the count",
            "no target asks for more than 2",
        ),
        (
            "scale-down that would raise the count keeps it",
            "no target asks for more than 2",
        ),
    ];
    let cases = utilization_cases();
    for (name, reason) in expected {
        let case = cases
            .iter()
            .find(|case| case.name == name)
            .expect("the case is in the table");
        let target = match case.resource {
            Resource::Cpu => cpu(case.target),
            Resource::Memory => memory(case.target),
        };
        let decision = History::default().evaluate(
            &policy(1, 20, vec![target]),
            &utilization_observation(case),
            T0,
        );
        assert_eq!(decision.desired, case.current, "{name}: desired");
        assert!(
            decision.reason.ends_with(reason),
            "{name}: reason is {:?}",
            decision.reason
        );
    }
}

/// (case, resource, request, replicas, expected problem text)
type ProblemCase = (
    &'static str,
    Resource,
    Option<u64>,
    Vec<Sample>,
    &'static str,
);

#[rustfmt::skip]
fn problem_cases() -> Vec<ProblemCase> {
    use Resource::{Cpu, Memory};
    let no_cpu_request = "cannot compute CPU utilization: no cpu request";
    vec![
        ("cpu without a request", Cpu, None, vec![ready(500); 2], no_cpu_request),
        ("cpu with a zero request", Cpu, Some(0), vec![ready(500); 2], no_cpu_request),
        ("memory without a request", Memory, None, vec![ready(50); 2],
            "cannot compute memory utilization: no memory request"),
        ("no replica has a sample yet", Cpu, Some(1000), vec![MISSING; 2], "no cpu samples"),
        ("only unready cpu samples", Cpu, Some(1000), vec![unready(900); 2], "no cpu samples"),
    ]
}

#[test]
fn utilization_without_request_or_samples_fails() {
    for (name, resource, request, replicas, problem) in problem_cases() {
        let case = UtilizationCase {
            name,
            resource,
            target: 50,
            request,
            current: 2,
            replicas,
            recommendation: None,
            counts: (0, 0, 0),
        };
        let target = match resource {
            Resource::Cpu => cpu(50),
            Resource::Memory => memory(50),
        };
        let decision = History::default().evaluate(
            &policy(1, 20, vec![target]),
            &utilization_observation(&case),
            T0,
        );
        let reading = &decision.metrics[0];
        assert_eq!(reading.recommendation, None, "{name}: recommendation");
        let text = reading.problem.clone().unwrap_or_default();
        assert!(text.contains(problem), "{name}: problem is {text:?}");
        assert_eq!(decision.recommendation, None, "{name}: decision");
        assert_eq!(decision.desired, 2, "{name}: desired");
        assert!(decision.reason.contains(problem), "{name}: reason");
    }
}

// ---------------------------------------------------------------------
// AverageValue targets on a deployment-wide series.
// ---------------------------------------------------------------------

struct AverageCase {
    name: &'static str,
    value: f64,
    current: u32,
    /// Replicas that exist and how many of them are ready.
    running: u32,
    ready: u32,
    total: Option<f64>,
    recommendation: Option<u32>,
}

#[rustfmt::skip]
fn average_cases() -> Vec<AverageCase> {
    vec![
        AverageCase { name: "twice the value per replica scales up", value: 100.0,
            current: 3, running: 3, ready: 3, total: Some(600.0), recommendation: Some(6) },
        AverageCase { name: "within tolerance keeps the count", value: 100.0,
            current: 3, running: 3, ready: 3, total: Some(320.0), recommendation: Some(3) },
        AverageCase { name: "exactly 110% keeps the count", value: 100.0,
            current: 3, running: 3, ready: 3, total: Some(330.0), recommendation: Some(3) },
        AverageCase { name: "exactly 90% keeps the count", value: 100.0,
            current: 3, running: 3, ready: 3, total: Some(270.0), recommendation: Some(3) },
        AverageCase { name: "a quarter of the value scales down", value: 100.0,
            current: 4, running: 4, ready: 4, total: Some(100.0), recommendation: Some(1) },
        AverageCase { name: "a fractional count rounds up", value: 100.0,
            current: 1, running: 1, ready: 1, total: Some(250.5), recommendation: Some(3) },
        // 420 / (100 x 4 running) = 1.05 is within the tolerance. Over
        // the two ready replicas alone it would be 2.1.
        AverageCase { name: "unready replicas count as running", value: 100.0,
            current: 4, running: 4, ready: 2, total: Some(420.0), recommendation: Some(4) },
        // Two of four replicas are still starting: 300 / (100 x 2) = 1.5.
        AverageCase { name: "ratio is over running replicas, not the count", value: 100.0,
            current: 4, running: 2, ready: 2, total: Some(300.0), recommendation: Some(3) },
        AverageCase { name: "zero total scales to zero before min applies", value: 100.0,
            current: 3, running: 3, ready: 3, total: Some(0.0), recommendation: Some(0) },
        AverageCase { name: "missing series gives no recommendation", value: 100.0,
            current: 3, running: 3, ready: 3, total: None, recommendation: None },
    ]
}

#[test]
fn average_value_targets_follow_the_controller() {
    for case in average_cases() {
        let mut observation = series_observation(case.running, case.total);
        observation.current_replicas = case.current;
        for replica in observation.replicas.iter_mut().skip(case.ready as usize) {
            replica.ready = false;
        }
        let decision = History::default().evaluate(
            &policy(1, 20, vec![per_replica(case.value)]),
            &observation,
            T0,
        );
        let reading = &decision.metrics[0];
        assert_eq!(
            reading.recommendation, case.recommendation,
            "{}: recommendation",
            case.name
        );
        match case.total {
            Some(_) => assert_eq!(reading.problem, None, "{}: problem", case.name),
            None => {
                let text = reading.problem.clone().unwrap_or_default();
                assert!(text.contains(RPS), "{}: problem is {text:?}", case.name);
                assert_eq!(decision.desired, case.current, "{}: desired", case.name);
            }
        }
    }
}

// ---------------------------------------------------------------------
// Several targets, and targets that fail.
// ---------------------------------------------------------------------

/// `current` replicas using `cpu_millicores` of a 1000m request and
/// `memory_mib` of a 100 MiB request each, and the series when given.
fn mixed_observation(
    current: u32,
    cpu_millicores: u64,
    memory_mib: u64,
    rps: Option<f64>,
) -> Observation {
    let mut observation = series_observation(current, rps);
    for replica in &mut observation.replicas {
        replica.cpu_cores = Some(cpu_millicores as f64 / 1000.0);
        replica.memory_bytes = Some(memory_mib * MIB);
    }
    observation.cpu_request_cores = Some(1.0);
    observation.memory_request_bytes = Some(100 * MIB);
    observation
}

fn without_cpu_request(mut observation: Observation) -> Observation {
    observation.cpu_request_cores = None;
    observation
}

fn without_requests(mut observation: Observation) -> Observation {
    observation.cpu_request_cores = None;
    observation.memory_request_bytes = None;
    observation
}

struct TargetsCase {
    name: &'static str,
    observation: Observation,
    /// Each target's recommendation, in the order cpu(50), memory(50),
    /// 10 per replica.
    readings: [Option<u32>; 3],
    recommendation: Option<u32>,
    desired: u32,
    scaling_active: bool,
}

#[rustfmt::skip]
fn targets_cases() -> Vec<TargetsCase> {
    vec![
        // cpu 10% -> 1, memory 80% -> 7, 50 / (10 x 4) = 1.25 -> 5.
        TargetsCase { name: "largest recommendation wins",
            observation: mixed_observation(4, 100, 80, Some(50.0)),
            readings: [Some(1), Some(7), Some(5)], recommendation: Some(7), desired: 7, scaling_active: true },
        TargetsCase { name: "all targets below scale down to the largest",
            observation: mixed_observation(4, 100, 10, Some(20.0)),
            readings: [Some(1), Some(1), Some(2)], recommendation: Some(2), desired: 2, scaling_active: true },
        TargetsCase { name: "failed target while the rest scale down holds",
            observation: without_cpu_request(mixed_observation(4, 100, 10, Some(20.0))),
            readings: [None, Some(1), Some(2)], recommendation: Some(2), desired: 4, scaling_active: false },
        TargetsCase { name: "failed target while the rest scale up scales up",
            observation: without_cpu_request(mixed_observation(4, 100, 80, Some(20.0))),
            readings: [None, Some(7), Some(2)], recommendation: Some(7), desired: 7, scaling_active: true },
        // memory 52% and 42 / 40 are within the tolerance: both keep 4.
        TargetsCase { name: "failed target while the rest keep the count proceeds",
            observation: without_cpu_request(mixed_observation(4, 100, 52, Some(42.0))),
            readings: [None, Some(4), Some(4)], recommendation: Some(4), desired: 4, scaling_active: true },
        TargetsCase { name: "missing series while the rest scale up scales up",
            observation: mixed_observation(4, 100, 80, None),
            readings: [Some(1), Some(7), None], recommendation: Some(7), desired: 7, scaling_active: true },
        TargetsCase { name: "missing series while the rest scale down holds",
            observation: mixed_observation(4, 100, 10, None),
            readings: [Some(1), Some(1), None], recommendation: Some(1), desired: 4, scaling_active: false },
        TargetsCase { name: "every target failing holds",
            observation: without_requests(mixed_observation(4, 100, 10, None)),
            readings: [None, None, None], recommendation: None, desired: 4, scaling_active: false },
    ]
}

#[test]
fn several_targets_take_the_largest_or_hold() {
    let mut policy = policy(1, 10, vec![cpu(50), memory(50), per_replica(10.0)]);
    policy.scale_down = rate(SelectPolicy::Max, vec![percent(100, 15)]);
    for case in targets_cases() {
        let decision = History::default().evaluate(&policy, &case.observation, T0);
        let readings: Vec<Option<u32>> = decision
            .metrics
            .iter()
            .map(|reading| reading.recommendation)
            .collect();
        assert_eq!(readings, case.readings, "{}: readings", case.name);
        assert_eq!(
            decision.recommendation, case.recommendation,
            "{}: recommendation",
            case.name
        );
        assert_eq!(decision.desired, case.desired, "{}: desired", case.name);
        let active = decision
            .conditions
            .iter()
            .find(|condition| condition.kind == "ScalingActive")
            .map(|condition| condition.status);
        assert_eq!(
            active,
            Some(case.scaling_active),
            "{}: ScalingActive",
            case.name
        );
    }
}

#[test]
fn every_target_failing_names_the_problem() {
    let policy = policy(1, 10, vec![cpu(50), per_replica(10.0)]);
    let observation = without_cpu_request(mixed_observation(4, 100, 10, None));
    let decision = History::default().evaluate(&policy, &observation, T0);
    assert_eq!(decision.recommendation, None, "recommendation");
    assert_eq!(decision.desired, 4, "desired");
    assert!(
        decision.reason.contains("no cpu request"),
        "reason: {}",
        decision.reason
    );
}

#[test]
fn partial_failure_condition_names_problem() {
    let policy = policy(1, 10, vec![cpu(50), memory(50)]);
    let observation = without_cpu_request(mixed_observation(4, 100, 80, None));
    let decision = History::default().evaluate(&policy, &observation, T0);
    let active = decision
        .conditions
        .iter()
        .find(|condition| condition.kind == "ScalingActive")
        .map(|condition| condition.message.clone())
        .unwrap_or_default();
    assert!(!active.contains("every target"), "message: {active}");
    assert!(active.contains("no cpu request"), "message: {active}");
}

// ---------------------------------------------------------------------
// min, max and a count of zero.
// ---------------------------------------------------------------------

struct RangeCase {
    name: &'static str,
    min: u32,
    max: u32,
    current: u32,
    /// The series total, which is the recommendation at 1 per replica.
    total: Option<f64>,
    desired: u32,
    limit: LimitReason,
    reads_metrics: bool,
}

#[rustfmt::skip]
fn range_cases() -> Vec<RangeCase> {
    use LimitReason::*;
    vec![
        RangeCase { name: "zero replicas disable scaling", min: 1, max: 10, current: 0,
            total: Some(8.0), desired: 0, limit: ScalingDisabled, reads_metrics: false },
        RangeCase { name: "count above max moves to max without metrics", min: 1, max: 10, current: 12,
            total: None, desired: 10, limit: TooManyReplicas, reads_metrics: false },
        RangeCase { name: "count below min moves to min without metrics", min: 3, max: 10, current: 1,
            total: None, desired: 3, limit: TooFewReplicas, reads_metrics: false },
        RangeCase { name: "recommendation above max stops at max", min: 1, max: 10, current: 8,
            total: Some(20.0), desired: 10, limit: TooManyReplicas, reads_metrics: true },
        RangeCase { name: "recommendation below min stops at min", min: 2, max: 10, current: 4,
            total: Some(1.0), desired: 2, limit: TooFewReplicas, reads_metrics: true },
        RangeCase { name: "recommendation of zero stops at min", min: 1, max: 10, current: 4,
            total: Some(0.0), desired: 1, limit: TooFewReplicas, reads_metrics: true },
        RangeCase { name: "count at max stays there", min: 1, max: 10, current: 10,
            total: Some(30.0), desired: 10, limit: TooManyReplicas, reads_metrics: true },
        RangeCase { name: "recommendation within range is taken", min: 1, max: 10, current: 4,
            total: Some(6.0), desired: 6, limit: DesiredWithinRange, reads_metrics: true },
    ]
}

#[test]
fn min_max_and_zero_bound_the_count() {
    for case in range_cases() {
        let mut policy = policy(case.min, case.max, vec![per_replica(1.0)]);
        policy.scale_down = rate(SelectPolicy::Max, vec![percent(100, 15)]);
        let observation = series_observation(case.current, case.total);
        let decision = History::default().evaluate(&policy, &observation, T0);
        assert_eq!(decision.desired, case.desired, "{}: desired", case.name);
        assert_eq!(decision.limit, case.limit, "{}: limit", case.name);
        assert_eq!(
            !decision.metrics.is_empty(),
            case.reads_metrics,
            "{}: metrics read",
            case.name
        );
        assert_eq!(decision.limiting_rule, None, "{}: rule", case.name);
    }
}

#[test]
fn zero_replicas_report_scaling_disabled() {
    let decision = History::default().evaluate(
        &policy(1, 10, vec![per_replica(1.0)]),
        &series_observation(0, Some(5.0)),
        T0,
    );
    let condition = &decision.conditions[0];
    assert_eq!(condition.kind, "ScalingActive", "condition type");
    assert!(!condition.status, "condition status");
    assert_eq!(condition.reason, "ScalingDisabled", "condition reason");
}

// ---------------------------------------------------------------------
// Stabilization windows, over sequences of evaluations.
// ---------------------------------------------------------------------

struct WindowCase {
    name: &'static str,
    start_ms: u64,
    up_window: u32,
    down_window: u32,
    initial: u32,
    /// (seconds since the start, recommendation, expected count)
    steps: Vec<(u64, u32, u32)>,
}

#[rustfmt::skip]
fn window_cases() -> Vec<WindowCase> {
    vec![
        // The first evaluation seeds the window with 5, so nothing goes
        // below 5 until 60 s have passed. Then the highest of the last
        // 60 s (3) keeps the count until it too ages out.
        WindowCase { name: "down window holds the highest recommendation", start_ms: T0,
            up_window: 0, down_window: 60, initial: 5,
            steps: vec![(0, 5, 5), (15, 2, 5), (30, 3, 5), (60, 2, 3), (75, 2, 3), (90, 2, 2)] },
        // The same with a clock that starts at 0.
        WindowCase { name: "down window counts samples from time zero", start_ms: 0,
            up_window: 0, down_window: 60, initial: 5,
            steps: vec![(0, 5, 5), (15, 2, 5), (30, 3, 5), (60, 2, 3), (75, 2, 3), (90, 2, 2)] },
        WindowCase { name: "up window holds the lowest recommendation", start_ms: T0,
            up_window: 60, down_window: 0, initial: 2,
            steps: vec![(0, 6, 2), (15, 6, 2), (45, 4, 2), (61, 6, 4), (76, 6, 4), (106, 6, 6)] },
        WindowCase { name: "up window counts samples from time zero", start_ms: 0,
            up_window: 60, down_window: 0, initial: 2,
            steps: vec![(0, 6, 2), (15, 6, 2), (45, 4, 2), (61, 6, 4), (76, 6, 4), (106, 6, 6)] },
        WindowCase { name: "no windows follow every recommendation", start_ms: T0,
            up_window: 0, down_window: 0, initial: 4,
            steps: vec![(0, 1, 1), (15, 6, 6), (30, 2, 2)] },
        // A spike inside the down window keeps the count up after it.
        WindowCase { name: "down window keeps a spike for its length", start_ms: T0,
            up_window: 0, down_window: 120, initial: 2,
            steps: vec![(0, 2, 2), (15, 8, 8), (30, 1, 8), (120, 1, 8), (136, 1, 1)] },
        // Both windows at once: the count stays between the lowest of
        // the last 30 s and the highest of the last 60 s.
        WindowCase { name: "both windows hold the count between them", start_ms: T0,
            up_window: 30, down_window: 60, initial: 4,
            steps: vec![(0, 4, 4), (15, 8, 4), (31, 8, 8), (46, 2, 8), (92, 2, 2)] },
    ]
}

#[test]
fn stabilization_windows_hold_recommendations() {
    for case in window_cases() {
        let mut policy = policy(1, 20, vec![per_replica(1.0)]);
        policy.scale_up = window(case.up_window);
        policy.scale_down = window(case.down_window);
        run_steps(case.name, &policy, case.start_ms, case.initial, &case.steps);
    }
}

/// Evaluates each step and applies its decision as the engine does.
fn run_steps(name: &str, policy: &Policy, start_ms: u64, initial: u32, steps: &[(u64, u32, u32)]) {
    let mut history = History::default();
    let mut current = initial;
    for (index, &(seconds, recommendation, expected)) in steps.iter().enumerate() {
        let now = start_ms + seconds * SECOND;
        let observation = series_observation(current, Some(f64::from(recommendation)));
        let decision = history.evaluate(policy, &observation, now);
        assert_eq!(
            decision.recommendation,
            Some(recommendation),
            "{name}, step {index} at {seconds}s: recommendation"
        );
        assert_eq!(
            decision.desired, expected,
            "{name}, step {index} at {seconds}s: desired (stabilized {})",
            decision.stabilized
        );
        if decision.desired != current {
            history.record_scale(current, decision.desired, now);
            assert_eq!(
                history.last_scale_ms(),
                Some(now),
                "{name}, step {index}: last scale"
            );
            current = decision.desired;
        }
    }
}

#[test]
fn default_down_window_blocks_scale_down_after_start() {
    let policy = policy(1, 20, vec![per_replica(1.0)]);
    let steps = [(0, 1, 5), (150, 1, 5), (299, 1, 5), (301, 1, 1)];
    run_steps("default 300s window after a start", &policy, T0, 5, &steps);
}

#[test]
fn stabilized_decision_names_the_window() {
    let mut policy = policy(1, 20, vec![per_replica(1.0)]);
    policy.scale_down = window(60);
    let decision = History::default().evaluate(&policy, &series_observation(5, Some(2.0)), T0);
    assert_eq!(decision.recommendation, Some(2), "recommendation");
    assert_eq!(decision.stabilized, 5, "stabilized");
    assert_eq!(decision.desired, 5, "desired");
    let able = &decision.conditions[0];
    assert_eq!(able.kind, "AbleToScale", "condition type");
    assert_eq!(able.reason, "ScaleDownStabilized", "condition reason");
    assert!(
        decision.reason.contains("60s"),
        "reason: {}",
        decision.reason
    );
}

// ---------------------------------------------------------------------
// Rate policies.
// ---------------------------------------------------------------------

struct RateCase {
    name: &'static str,
    up: Behavior,
    down: Behavior,
    /// Scale changes made before the evaluation: (seconds before it, from, to).
    past: Vec<(u64, u32, u32)>,
    current: u32,
    recommendation: u32,
    desired: u32,
    limit: LimitReason,
    rule: Option<&'static str>,
}

#[rustfmt::skip]
fn rate_cases() -> Vec<RateCase> {
    use LimitReason::*;
    use SelectPolicy::{Disabled, Max, Min};
    let up_default = || rate(Max, vec![pods(4, 15), percent(100, 15)]);
    let down_default = || rate(Max, vec![percent(100, 15)]);
    vec![
        // Default up: max(1 + 4, ceil(1 x 2)) = 5.
        RateCase { name: "default up adds 4 to a small count", up: up_default(), down: down_default(),
            past: vec![], current: 1, recommendation: 10, desired: 5, limit: ScaleUpLimit, rule: Some("Pods 4 per 15s") },
        // max(6 + 4, 6 x 2) = 12.
        RateCase { name: "default up doubles a larger count", up: up_default(), down: down_default(),
            past: vec![], current: 6, recommendation: 19, desired: 12, limit: ScaleUpLimit, rule: Some("Percent 100 per 15s") },
        RateCase { name: "select Min up takes the smaller change", up: rate(Min, vec![pods(4, 15), percent(100, 15)]), down: down_default(),
            past: vec![], current: 6, recommendation: 19, desired: 10, limit: ScaleUpLimit, rule: Some("Pods 4 per 15s") },
        RateCase { name: "recommendation within the up rate is taken", up: up_default(), down: down_default(),
            past: vec![], current: 6, recommendation: 9, desired: 9, limit: DesiredWithinRange, rule: None },
        // ceil(3 x 1.5) = ceil(4.5) = 5.
        RateCase { name: "Percent up rounds up", up: rate(Max, vec![percent(50, 60)]), down: down_default(),
            past: vec![], current: 3, recommendation: 10, desired: 5, limit: ScaleUpLimit, rule: Some("Percent 50 per 60s") },
        // ceil(1 x 1.1) = 2, so a small percentage still moves.
        RateCase { name: "small Percent up still adds one", up: rate(Max, vec![percent(10, 60)]), down: down_default(),
            past: vec![], current: 1, recommendation: 5, desired: 2, limit: ScaleUpLimit, rule: Some("Percent 10 per 60s") },
        RateCase { name: "Pods down removes at most its value", up: up_default(), down: rate(Max, vec![pods(2, 60)]),
            past: vec![], current: 7, recommendation: 1, desired: 5, limit: ScaleDownLimit, rule: Some("Pods 2 per 60s") },
        // 5 x 0.5 = 2.5, truncated to 2.
        RateCase { name: "Percent down truncates", up: up_default(), down: rate(Max, vec![percent(50, 60)]),
            past: vec![], current: 5, recommendation: 1, desired: 2, limit: ScaleDownLimit, rule: Some("Percent 50 per 60s") },
        // 20 x (1 - 0.8) is 3.999999999999999 in f64, as in the
        // controller, so the limit is 3 where exact arithmetic gives 4.
        RateCase { name: "Percent down rounds in f64 like the controller", up: up_default(), down: rate(Max, vec![percent(80, 60)]),
            past: vec![], current: 20, recommendation: 1, desired: 3, limit: ScaleDownLimit, rule: Some("Percent 80 per 60s") },
        // ceil(25 x 1.12) is ceil(28.000000000000004) = 29 likewise.
        RateCase { name: "Percent up rounds in f64 like the controller", up: rate(Max, vec![percent(12, 60)]), down: down_default(),
            past: vec![], current: 25, recommendation: 40, desired: 29, limit: ScaleUpLimit, rule: Some("Percent 12 per 60s") },
        // min(6 - 1, 6 x 0.5) = 3.
        RateCase { name: "select Max down takes the larger change", up: up_default(), down: rate(Max, vec![pods(1, 60), percent(50, 60)]),
            past: vec![], current: 6, recommendation: 1, desired: 3, limit: ScaleDownLimit, rule: Some("Percent 50 per 60s") },
        RateCase { name: "select Min down takes the smaller change", up: up_default(), down: rate(Min, vec![pods(1, 60), percent(50, 60)]),
            past: vec![], current: 6, recommendation: 1, desired: 5, limit: ScaleDownLimit, rule: Some("Pods 1 per 60s") },
        RateCase { name: "Disabled up keeps the count", up: rate(Disabled, vec![pods(4, 15)]), down: down_default(),
            past: vec![], current: 3, recommendation: 6, desired: 3, limit: ScalingDisabled, rule: None },
        RateCase { name: "Disabled up still scales down", up: rate(Disabled, vec![pods(4, 15)]), down: down_default(),
            past: vec![], current: 5, recommendation: 2, desired: 2, limit: DesiredWithinRange, rule: None },
        RateCase { name: "Disabled down keeps the count", up: up_default(), down: rate(Disabled, vec![percent(100, 15)]),
            past: vec![], current: 5, recommendation: 2, desired: 5, limit: ScalingDisabled, rule: None },
        RateCase { name: "Disabled down still scales up", up: up_default(), down: rate(Disabled, vec![percent(100, 15)]),
            past: vec![], current: 3, recommendation: 6, desired: 6, limit: DesiredWithinRange, rule: None },
        // 2 added 30 s ago: the period started at 3, and 3 + 2 = 5.
        RateCase { name: "recent scale-up uses up the period", up: rate(Max, vec![pods(2, 60)]), down: down_default(),
            past: vec![(30, 3, 5)], current: 5, recommendation: 10, desired: 5, limit: ScaleUpLimit, rule: Some("Pods 2 per 60s") },
        RateCase { name: "two recent scale-ups add up", up: rate(Max, vec![pods(3, 60)]), down: down_default(),
            past: vec![(50, 2, 3), (20, 3, 4)], current: 4, recommendation: 10, desired: 5, limit: ScaleUpLimit, rule: Some("Pods 3 per 60s") },
        RateCase { name: "scale-up exactly one period ago no longer counts", up: rate(Max, vec![pods(2, 60)]), down: down_default(),
            past: vec![(60, 3, 5)], current: 5, recommendation: 10, desired: 7, limit: ScaleUpLimit, rule: Some("Pods 2 per 60s") },
        // 4 removed 30 s ago: the period started at 8, and ceil(8 x 2) = 16.
        RateCase { name: "recent scale-down raises the start for scaling up", up: rate(Max, vec![percent(100, 60)]), down: down_default(),
            past: vec![(30, 8, 4)], current: 4, recommendation: 19, desired: 16, limit: ScaleUpLimit, rule: Some("Percent 100 per 60s") },
        // 2 removed 30 s ago: the period started at 6, and 6 - 2 = 4.
        RateCase { name: "recent scale-down uses up the period", up: up_default(), down: rate(Max, vec![pods(2, 60)]),
            past: vec![(30, 6, 4)], current: 4, recommendation: 1, desired: 4, limit: ScaleDownLimit, rule: Some("Pods 2 per 60s") },
        RateCase { name: "scale-down after its period frees the rate", up: up_default(), down: rate(Max, vec![pods(2, 60)]),
            past: vec![(61, 6, 4)], current: 4, recommendation: 1, desired: 2, limit: ScaleDownLimit, rule: Some("Pods 2 per 60s") },
        // 2 added 30 s ago counts in the 120 s rule only: Pods 2 per
        // 15 s allows 6 + 2 = 8, Pods 3 per 120 s allows 4 + 3 = 7.
        RateCase { name: "each rule counts changes in its own period", up: rate(Min, vec![pods(2, 15), pods(3, 120)]), down: down_default(),
            past: vec![(30, 4, 6)], current: 6, recommendation: 19, desired: 7, limit: ScaleUpLimit, rule: Some("Pods 3 per 120s") },
        // The rate allows max(24 + 4, 24 x 2) = 48, max is 40.
        RateCase { name: "max binds before the rate", up: up_default(), down: down_default(),
            past: vec![], current: 24, recommendation: 60, desired: 40, limit: TooManyReplicas, rule: None },
    ]
}

#[test]
fn rate_policies_limit_each_period() {
    for case in rate_cases() {
        let mut policy = policy(1, 40, vec![per_replica(1.0)]);
        policy.scale_up = case.up;
        policy.scale_down = case.down;
        let mut history = History::default();
        for &(seconds_before, from, to) in &case.past {
            history.record_scale(from, to, T0 - seconds_before * SECOND);
        }
        let observation = series_observation(case.current, Some(f64::from(case.recommendation)));
        let decision = history.evaluate(&policy, &observation, T0);
        assert_eq!(
            decision.recommendation,
            Some(case.recommendation),
            "{}: recommendation",
            case.name
        );
        assert_eq!(decision.desired, case.desired, "{}: desired", case.name);
        assert_eq!(decision.limit, case.limit, "{}: limit", case.name);
        assert_eq!(
            decision.limiting_rule.as_deref(),
            case.rule,
            "{}: limiting rule",
            case.name
        );
        let limited = decision
            .conditions
            .iter()
            .find(|condition| condition.kind == "ScalingLimited")
            .map(|condition| condition.status);
        assert_eq!(
            limited,
            Some(case.desired != decision.stabilized),
            "{}: ScalingLimited",
            case.name
        );
    }
}

#[test]
fn rate_frees_up_after_the_period() {
    // Pods 2 per 60 s from 3 toward 9, applied as the engine applies it.
    // The count goes to 5 at once and stays there while the period is
    // used up, to 7 once the first scale-up is older than 60 s, and to 9
    // one period after that.
    let mut policy = policy(1, 10, vec![per_replica(1.0)]);
    policy.scale_up = rate(SelectPolicy::Max, vec![pods(2, 60)]);
    let steps = [
        (0, 9, 5),
        (30, 9, 5),
        (59, 9, 5),
        (61, 9, 7),
        (90, 9, 7),
        (122, 9, 9),
    ];
    run_steps("Pods 2 per 60s toward 9", &policy, T0, 3, &steps);
}

#[test]
fn old_scale_events_are_forgotten() {
    let mut history = History::default();
    history.record_scale(2, 6, T0);
    history.record_scale(6, 4, T0 + 10 * SECOND);
    assert_eq!(
        history.last_scale_ms(),
        Some(T0 + 10 * SECOND),
        "newest change"
    );
    history.record_scale(4, 4, T0 + 2000 * SECOND);
    assert_eq!(history.last_scale_ms(), None, "after the longest period");
}

// ---------------------------------------------------------------------
// What a decision records.
// ---------------------------------------------------------------------

#[test]
fn decision_records_its_inputs() {
    // CPU at 1800m of 1000m on two ready replicas is 180%. With one
    // unready and one missing replica counted as zero it is 3600 / 4000
    // = 90%, 1.8 times the 50% target, so ceil(1.8 x 4) = 8, which the
    // default up rate allows (4 + 4) and max cuts to 6.
    let observation = Observation {
        current_replicas: 4,
        replicas: vec![
            ReplicaSample {
                slot: 0,
                ready: true,
                cpu_cores: Some(1.8),
                memory_bytes: None,
            },
            ReplicaSample {
                slot: 1,
                ready: true,
                cpu_cores: Some(1.8),
                memory_bytes: None,
            },
            ReplicaSample {
                slot: 2,
                ready: false,
                cpu_cores: Some(0.9),
                memory_bytes: None,
            },
            ReplicaSample {
                slot: 3,
                ready: false,
                cpu_cores: None,
                memory_bytes: None,
            },
        ],
        cpu_request_cores: Some(1.0),
        ..Observation::default()
    };
    let decision = History::default().evaluate(&policy(2, 6, vec![cpu(50)]), &observation, T0);
    let reading = &decision.metrics[0];
    assert_eq!(reading.target, cpu(50), "target");
    assert_eq!(
        reading.current,
        Some(180.0),
        "utilization of the ready replicas"
    );
    assert_eq!(
        (reading.ready, reading.missing, reading.unready),
        (2, 1, 1),
        "counts"
    );
    assert_eq!(reading.recommendation, Some(8), "reading's recommendation");
    assert_eq!(decision.at_ms, T0, "time");
    assert_eq!(decision.current_replicas, 4, "current");
    assert_eq!(
        (decision.min_replicas, decision.max_replicas),
        (2, 6),
        "range"
    );
    assert_eq!(decision.recommendation, Some(8), "recommendation");
    assert_eq!(decision.stabilized, 8, "stabilized");
    assert_eq!(decision.limit, LimitReason::TooManyReplicas, "limit");
    assert_eq!(decision.desired, 6, "desired");
    assert!(decision.scales(), "scales");
    assert!(
        decision.reason.contains("from 4 to 6"),
        "reason: {}",
        decision.reason
    );
    assert!(
        decision.reason.contains("CPU at 180%"),
        "reason: {}",
        decision.reason
    );
    let kinds: Vec<&str> = decision
        .conditions
        .iter()
        .map(|c| c.kind.as_str())
        .collect();
    assert_eq!(
        kinds,
        ["AbleToScale", "ScalingActive", "ScalingLimited"],
        "conditions"
    );

    let json = serde_json::to_string(&decision).expect("a decision serializes");
    let back: Decision = serde_json::from_str(&json).expect("a decision deserializes");
    assert_eq!(back, decision, "JSON round trip");
}

#[test]
fn rate_limited_decision_names_the_rule() {
    let decision = History::default().evaluate(
        &policy(1, 20, vec![per_replica(1.0)]),
        &series_observation(2, Some(15.0)),
        T0,
    );
    assert_eq!(decision.desired, 6, "desired");
    assert_eq!(decision.limit, LimitReason::ScaleUpLimit, "limit");
    assert!(
        decision.reason.contains("the targets ask for 15")
            && decision.reason.contains("as far as Pods 4 per 15s allows"),
        "reason: {}",
        decision.reason
    );
}

// ---------------------------------------------------------------------
// The policy from a manifest, and changes of autoScaling alone.
// ---------------------------------------------------------------------

/// A port where requests are counted, so that request series can be targets.
const HTTP_PORT: &str = "ports:\n  - { name: http, containerPort: 8080, appProtocol: http }\n";

fn manifest_with(auto_scaling: &str, extra: &str) -> crate::manifest::Manifest {
    let text = format!(
        "name: web\nrun:\n  command: [\"sleep\", \"60\"]\n{HTTP_PORT}{extra}autoScaling:\n{auto_scaling}"
    );
    crate::manifest::parse(&text, "test.yaml", &[]).expect("a valid test manifest")
}

fn policy_of(auto_scaling: &str) -> Policy {
    let manifest = manifest_with(auto_scaling, "");
    Policy::of(manifest.auto_scaling.as_ref().expect("autoScaling is set"))
}

#[test]
fn policy_of_fills_autoscaling_v2_defaults() {
    let cases: Vec<(&str, &str, Policy)> = vec![
        (
            "no targets hold CPU at 80%",
            "  minReplicas: 1\n  maxReplicas: 4\n",
            policy(1, 4, vec![cpu(DEFAULT_CPU_UTILIZATION)]),
        ),
        (
            "targets keep the manifest's order",
            "  minReplicas: 2\n  maxReplicas: 8\n  targetCPUUtilization: 70\n  \
             targetMemoryUtilization: 60\n  metrics: [{name: requests_per_second, averageValue: 50}]\n",
            policy(2, 8, vec![cpu(70), memory(60), per_replica(50.0)]),
        ),
        (
            "a window alone keeps the default rules",
            "  minReplicas: 1\n  maxReplicas: 4\n  scaleDownPolicy: {stabilizationWindowSeconds: 60}\n",
            Policy {
                scale_down: Behavior {
                    stabilization_window_seconds: 60,
                    ..Behavior::default_down()
                },
                ..policy(1, 4, vec![cpu(80)])
            },
        ),
        (
            "given rules replace the defaults",
            "  minReplicas: 1\n  maxReplicas: 4\n  scaleUpPolicy:\n    selectPolicy: Min\n    \
             policies: [{type: Pods, value: 1, periodSeconds: 60}]\n",
            Policy {
                scale_up: Behavior {
                    stabilization_window_seconds: 0,
                    select: SelectPolicy::Min,
                    rules: vec![pods(1, 60)],
                },
                ..policy(1, 4, vec![cpu(80)])
            },
        ),
        (
            "Disabled keeps the default rules",
            "  minReplicas: 1\n  maxReplicas: 4\n  scaleDownPolicy: {selectPolicy: Disabled}\n",
            Policy {
                scale_down: Behavior {
                    select: SelectPolicy::Disabled,
                    ..Behavior::default_down()
                },
                ..policy(1, 4, vec![cpu(80)])
            },
        ),
    ];
    for (name, yaml, expected) in cases {
        assert_eq!(policy_of(yaml), expected, "{name}");
    }
}

#[test]
fn default_behaviors_match_autoscaling_v2() {
    let up = Behavior::default_up();
    assert_eq!(up.stabilization_window_seconds, 0, "up window");
    assert_eq!(up.select, SelectPolicy::Max, "up select");
    assert_eq!(up.rules, vec![pods(4, 15), percent(100, 15)], "up rules");
    let down = Behavior::default_down();
    assert_eq!(down.stabilization_window_seconds, 300, "down window");
    assert_eq!(down.select, SelectPolicy::Max, "down select");
    assert_eq!(down.rules, vec![percent(100, 15)], "down rules");
}

#[test]
fn differs_only_in_autoscaling_compares_the_rest() {
    let scaling = "  minReplicas: 1\n  maxReplicas: 4\n";
    let base = manifest_with(scaling, "");
    let without = crate::manifest::parse(
        &format!("name: web\nrun:\n  command: [\"sleep\", \"60\"]\n{HTTP_PORT}"),
        "test.yaml",
        &[],
    )
    .expect("a valid test manifest");
    let cases = [
        ("same spec", manifest_with(scaling, ""), false),
        (
            "maxReplicas changed",
            manifest_with("  minReplicas: 1\n  maxReplicas: 6\n", ""),
            true,
        ),
        (
            "a target added",
            manifest_with(
                "  minReplicas: 1\n  maxReplicas: 4\n  targetCPUUtilization: 60\n",
                "",
            ),
            true,
        ),
        ("autoScaling removed", without, true),
        (
            "only env changed",
            manifest_with(scaling, "env: {GREETING: hi}\n"),
            false,
        ),
        (
            "autoScaling and env changed",
            manifest_with(
                "  minReplicas: 1\n  maxReplicas: 6\n",
                "env: {GREETING: hi}\n",
            ),
            false,
        ),
    ];
    for (name, new, expected) in cases {
        assert_eq!(differs_only_in_autoscaling(&base, &new), expected, "{name}");
    }
}

// ---------------------------------------------------------------------
// Properties over random policies and load.
// ---------------------------------------------------------------------

fn select_strategy() -> impl Strategy<Value = SelectPolicy> {
    prop_oneof![
        Just(SelectPolicy::Max),
        Just(SelectPolicy::Min),
        Just(SelectPolicy::Disabled)
    ]
}

fn rule_strategy() -> impl Strategy<Value = ScalingRule> {
    (any::<bool>(), 1u32..200, 1u32..120).prop_map(|(is_pods, value, period)| {
        if is_pods {
            pods(value, period)
        } else {
            percent(value, period)
        }
    })
}

fn behavior_strategy() -> impl Strategy<Value = Behavior> {
    (
        0u32..120,
        select_strategy(),
        prop::collection::vec(rule_strategy(), 1..3),
    )
        .prop_map(|(seconds, select, rules)| Behavior {
            stabilization_window_seconds: seconds,
            select,
            rules,
        })
}

/// (seconds since the previous step, series total, CPU millicores per
/// replica, replicas without a sample)
type Step = (u64, f64, u64, u32);

fn steps_strategy() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0u64..60, 0.0f64..300.0, 0u64..3000, 0u32..3), 1..25)
}

fn random_observation(current: u32, &(_, total, millicores, missing): &Step) -> Observation {
    let mut observation = series_observation(current, Some(total));
    for replica in &mut observation.replicas {
        if replica.slot >= missing {
            replica.cpu_cores = Some(millicores as f64 / 1000.0);
        }
    }
    observation.cpu_request_cores = Some(1.0);
    observation
}

proptest! {
    #[test]
    fn desired_stays_within_min_and_max(
        min in 1u32..6,
        span in 0u32..12,
        start in 0u32..12,
        up in behavior_strategy(),
        down in behavior_strategy(),
        steps in steps_strategy(),
    ) {
        let max = min + span;
        let mut policy = policy(min, max, vec![cpu(60), per_replica(10.0)]);
        policy.scale_up = up;
        policy.scale_down = down;
        let mut history = History::default();
        let mut current = min + start % (span + 1);
        let mut now = T0;
        for step in &steps {
            now += step.0 * SECOND;
            let decision = history.evaluate(&policy, &random_observation(current, step), now);
            prop_assert!(
                (min..=max).contains(&decision.desired),
                "desired {} outside {min}..={max} from {current}", decision.desired
            );
            if policy.scale_up.select == SelectPolicy::Disabled {
                prop_assert!(decision.desired <= current, "scaled up from {current} to {} with up Disabled", decision.desired);
            }
            if policy.scale_down.select == SelectPolicy::Disabled {
                prop_assert!(decision.desired >= current, "scaled down from {current} to {} with down Disabled", decision.desired);
            }
            if decision.desired != current {
                history.record_scale(current, decision.desired, now);
                current = decision.desired;
            }
        }
    }
}
