//! Time for one evaluation round of shipdeck's autoscaler: 200 autoscaled
//! deployments, each with its own history of 10 minutes of evaluations
//! every 15 s, evaluated once against new observations. Results and the
//! command to rerun are in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use proptest::prelude::RngExt;
use proptest::test_runner::{RngAlgorithm, TestRng};
use shipdeck::autoscale::{Decision, History, Observation, Policy, ReplicaSample};
use shipdeck::manifest::{AutoScaling, AverageValueTarget};

const DEPLOYMENTS: u64 = 200;
const INTERVAL_MS: u64 = 15_000;
/// 10 minutes of evaluations every 15 s.
const HISTORY_ROUNDS: u64 = 40;
const START_MS: u64 = 1_750_000_000_000;
const CPU_REQUEST_CORES: f64 = 0.5;
const MEMORY_REQUEST_BYTES: u64 = 256 * 1024 * 1024;
const SERIES: &str = "requests_per_second";

/// A deployment with 1 to 10 replicas, a CPU, a memory and a
/// requests-per-second target, and the autoscaling/v2 default behavior.
#[derive(Clone)]
struct Deployment {
    index: u64,
    policy: Policy,
    history: History,
    current: u32,
}

/// Returns the load of deployment `index` at `round` as a multiple of its
/// targets. It is a slow wave between 0.3 and 1.9 with each deployment at
/// its own phase, plus noise, so that in any round some deployments scale
/// up, some scale down and most keep their count.
fn load(index: u64, round: u64, rng: &mut TestRng) -> f64 {
    let phase = (round + index * 7) % 40;
    let wave = if phase < 20 { phase } else { 40 - phase } as f64 / 20.0;
    0.3 + 1.6 * wave + rng.random_range(-0.1..0.1)
}

/// Builds what the collector would report for `current` replicas under
/// `load`, with about one replica in ten without a CPU sample yet and one
/// in eight not ready.
fn observation(index: u64, round: u64, current: u32, rng: &mut TestRng) -> Observation {
    let load = load(index, round, rng);
    let replicas = (0..current)
        .map(|slot| {
            let jitter = rng.random_range(0.8..1.2);
            ReplicaSample {
                slot,
                ready: !rng.random_ratio(1, 8),
                cpu_cores: (!rng.random_ratio(1, 10))
                    .then_some(CPU_REQUEST_CORES * 0.7 * load * jitter),
                memory_bytes: Some((MEMORY_REQUEST_BYTES as f64 * 0.5 * jitter) as u64),
            }
        })
        .collect();
    Observation {
        current_replicas: current,
        replicas,
        cpu_request_cores: Some(CPU_REQUEST_CORES),
        memory_request_bytes: Some(MEMORY_REQUEST_BYTES),
        series: BTreeMap::from([(SERIES.to_owned(), 40.0 * load * f64::from(current))]),
    }
}

fn deployment(index: u64, rng: &mut TestRng) -> Deployment {
    let scaling = AutoScaling {
        enabled: true,
        min_replicas: 1,
        max_replicas: 10,
        target_cpu_utilization: Some(70),
        target_memory_utilization: Some(80),
        metrics: vec![AverageValueTarget {
            name: SERIES.to_owned(),
            average_value: 40.0,
        }],
        interval: None,
        scale_up_policy: None,
        scale_down_policy: None,
    };
    Deployment {
        index,
        policy: Policy::of(&scaling),
        history: History::default(),
        current: rng.random_range(1..=10),
    }
}

/// Evaluates every deployment once at `round` and applies its decision.
fn evaluate_round(
    deployments: &mut [Deployment],
    observations: &[Observation],
    round: u64,
) -> Vec<Decision> {
    let now = START_MS + round * INTERVAL_MS;
    deployments
        .iter_mut()
        .zip(observations)
        .map(|(deployment, observation)| {
            let decision = deployment
                .history
                .evaluate(&deployment.policy, observation, now);
            if decision.scales() {
                deployment
                    .history
                    .record_scale(deployment.current, decision.desired, now);
                deployment.current = decision.desired;
            }
            decision
        })
        .collect()
}

fn observations(deployments: &[Deployment], round: u64, rng: &mut TestRng) -> Vec<Observation> {
    deployments
        .iter()
        .map(|deployment| observation(deployment.index, round, deployment.current, rng))
        .collect()
}

/// 200 deployments after 10 minutes of evaluations, and the observations
/// of the next round. The load comes from proptest's fixed ChaCha stream,
/// so every run measures the same rounds.
fn primed() -> (Vec<Deployment>, Vec<Observation>) {
    let mut rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut deployments: Vec<Deployment> = (0..DEPLOYMENTS)
        .map(|index| deployment(index, &mut rng))
        .collect();
    let mut scaled = 0;
    for round in 0..HISTORY_ROUNDS {
        let seen = observations(&deployments, round, &mut rng);
        scaled += evaluate_round(&mut deployments, &seen, round)
            .iter()
            .filter(|decision| decision.scales())
            .count();
    }
    eprintln!("autoscale bench: {scaled} scale changes while priming {DEPLOYMENTS} deployments");
    let next = observations(&deployments, HISTORY_ROUNDS, &mut rng);
    (deployments, next)
}

fn bench_round(c: &mut Criterion) {
    let (deployments, next) = primed();
    c.bench_function("autoscale round, 200 deployments", |b| {
        // Each timed round starts from a copy of the primed histories, made
        // and dropped outside the timing, so every round starts from the
        // same state.
        b.iter_batched_ref(
            || deployments.clone(),
            |fresh| black_box(evaluate_round(fresh, &next, HISTORY_ROUNDS)),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench_round);
criterion_main!(benches);
