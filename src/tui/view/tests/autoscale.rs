//! Snapshots of the autoscale tab: shipdeck's autoscaler with decisions,
//! a target that cannot compute (no CPU request), autoscaling off, and a
//! cluster's HorizontalPodAutoscaler, which keeps no decisions. Metric
//! names and reasons carry escape sequences and CJK.

use crate::autoscale::{
    AutoscaleSource, AutoscaleView, Condition, Decision, LimitReason, MetricReading, Target,
};
use crate::model::ReplicaRange;

use super::*;

/// Opens the detail view of the CJK deployment with autoscaling on
/// between 1 and 5, on the autoscale tab.
fn autoscaled(width: u16, height: u16) -> App {
    let mut app = opened(width, height);
    let mut listed = fleet();
    for view in &mut listed {
        if view.name == CJK {
            view.autoscaling = Some(ReplicaRange { min: 1, max: 5 });
        }
    }
    app.apply(Action::Deployments(listed));
    press(&mut app, "7");
    app
}

fn at_ms(seconds_ago: i64) -> u64 {
    let time = NOW - time::Duration::seconds(seconds_ago);
    u64::try_from(time.unix_timestamp() * 1000).unwrap()
}

fn cpu(percent: u32) -> Target {
    Target::CpuUtilization { percent }
}

fn requests(value: f64) -> Target {
    Target::AverageValue {
        metric: "requests_per_second".to_owned(),
        value,
    }
}

fn reading(target: Target, current: Option<f64>, asks: Option<u32>) -> MetricReading {
    MetricReading {
        target,
        current,
        ready: 2,
        missing: 0,
        unready: 1,
        recommendation: asks,
        problem: None,
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        kind: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

fn conditions() -> Vec<Condition> {
    vec![
        condition(
            "AbleToScale",
            true,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        ),
        condition(
            "ScalingActive",
            true,
            "ValidMetricFound",
            "the HPA was able to compute the replica count from cpu resource utilization",
        ),
        condition(
            "ScalingLimited",
            false,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        ),
    ]
}

struct Step {
    seconds_ago: i64,
    from: u32,
    asked: Option<u32>,
    stabilized: u32,
    limit: LimitReason,
    rule: Option<&'static str>,
    to: u32,
    reason: &'static str,
}

fn decision(step: Step) -> Decision {
    Decision {
        at_ms: at_ms(step.seconds_ago),
        current_replicas: step.from,
        min_replicas: 1,
        max_replicas: 5,
        metrics: Vec::new(),
        recommendation: step.asked,
        stabilized: step.stabilized,
        limit: step.limit,
        limiting_rule: step.rule.map(str::to_owned),
        desired: step.to,
        reason: step.reason.to_owned(),
        conditions: Vec::new(),
    }
}

/// Twelve decisions, newest first: a limited scale up, steady ones, a
/// held scale down and one with an escape sequence in its reason.
fn decisions() -> Vec<Decision> {
    let mut list = vec![
        decision(Step {
            seconds_ago: 15,
            from: 2,
            asked: Some(8),
            stabilized: 8,
            limit: LimitReason::ScaleUpLimit,
            rule: Some("Pods 2 per 15s"),
            to: 4,
            reason: "scaling from 2 to 4: CPU at 160% of its request, above the target of 80%, as far as Pods 2 per 15s allows",
        }),
        decision(Step {
            seconds_ago: 30,
            from: 2,
            asked: Some(2),
            stabilized: 2,
            limit: LimitReason::DesiredWithinRange,
            rule: None,
            to: 2,
            reason: "keeping 2 replicas: every target is within 10% of its value",
        }),
        decision(Step {
            seconds_ago: 45,
            from: 2,
            asked: Some(1),
            stabilized: 2,
            limit: LimitReason::DesiredWithinRange,
            rule: None,
            to: 2,
            reason: "keeping 2 replicas: recent recommendations within the 300s window hold the count at 2",
        }),
        decision(Step {
            seconds_ago: 60,
            from: 2,
            asked: None,
            stabilized: 2,
            limit: LimitReason::DesiredWithinRange,
            rule: None,
            to: 2,
            reason: "keeping 2 replicas: no sample of キュー\u{1b}[31m_depth yet\u{1b}[0m",
        }),
    ];
    for index in 0..8 {
        list.push(decision(Step {
            seconds_ago: 75 + 15 * index,
            from: 1,
            asked: Some(6),
            stabilized: 6,
            limit: LimitReason::TooManyReplicas,
            rule: None,
            to: 2,
            reason: "scaling from 1 to 2: CPU at 190% of its request, above the target of 80%",
        }));
    }
    list
}

fn shipdeck_view() -> AutoscaleView {
    AutoscaleView {
        source: AutoscaleSource::Shipdeck,
        min_replicas: 1,
        max_replicas: 5,
        targets: vec![cpu(80), requests(50.0)],
        current_replicas: 2,
        desired_replicas: 4,
        metrics: vec![
            reading(cpu(80), Some(160.4), Some(4)),
            reading(requests(50.0), Some(12.5), Some(1)),
        ],
        conditions: conditions(),
        last_scale_ms: Some(at_ms(15)),
        decisions: decisions(),
    }
}

/// Builds a view with a CPU target without a CPU request, and a metric
/// target whose series name carries an escape sequence.
fn problem_view() -> AutoscaleView {
    let depth = Target::AverageValue {
        metric: "queue\u{1b}[2J_depth".to_owned(),
        value: 30.0,
    };
    let mut cpu_reading = reading(cpu(70), None, None);
    cpu_reading.problem = Some(
        "cannot compute CPU utilization: no cpu request; set resources.requests.cpu".to_owned(),
    );
    AutoscaleView {
        source: AutoscaleSource::Shipdeck,
        min_replicas: 1,
        max_replicas: 5,
        targets: vec![cpu(70), depth.clone()],
        current_replicas: 1,
        desired_replicas: 1,
        metrics: vec![cpu_reading, reading(depth, Some(12.0), Some(1))],
        conditions: vec![condition(
            "ScalingActive",
            false,
            "FailedGetResourceMetric",
            "cannot compute CPU utilization: no cpu request",
        )],
        last_scale_ms: None,
        decisions: vec![decision(Step {
            seconds_ago: 5,
            from: 1,
            asked: Some(1),
            stabilized: 1,
            limit: LimitReason::DesiredWithinRange,
            rule: None,
            to: 1,
            reason: "keeping 1 replica: cannot compute CPU utilization: no cpu request; set resources.requests.cpu",
        })],
    }
}

fn cluster_view() -> AutoscaleView {
    AutoscaleView {
        source: AutoscaleSource::Cluster,
        min_replicas: 2,
        max_replicas: 10,
        targets: vec![cpu(75), Target::MemoryUtilization { percent: 60 }],
        current_replicas: 3,
        desired_replicas: 3,
        metrics: vec![
            reading(cpu(75), Some(71.0), Some(3)),
            reading(Target::MemoryUtilization { percent: 60 }, Some(40.0), Some(2)),
        ],
        conditions: vec![
            condition(
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            ),
            condition(
                "ScalingActive",
                true,
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
            ),
        ],
        last_scale_ms: Some(at_ms(3600)),
        decisions: Vec::new(),
    }
}

fn send_view(app: &mut App, view: AutoscaleView) {
    send(app, DetailData::Autoscale(Box::new(view)));
}

#[test]
fn detail_autoscale() {
    for (width, height) in SIZES {
        let mut app = autoscaled(width, height);
        send_view(&mut app, shipdeck_view());
        snapshot("detail_autoscale", &app, width, height);
    }
}

#[test]
fn detail_autoscale_scrolled() {
    for (width, height) in SIZES {
        let mut app = autoscaled(width, height);
        send_view(&mut app, shipdeck_view());
        press(&mut app, "G");
        snapshot("detail_autoscale_scrolled", &app, width, height);
    }
}

#[test]
fn detail_autoscale_problem() {
    for (width, height) in SIZES {
        let mut app = autoscaled(width, height);
        send_view(&mut app, problem_view());
        snapshot("detail_autoscale_problem", &app, width, height);
    }
}

#[test]
fn detail_autoscale_off() {
    for (width, height) in SIZES {
        let mut app = opened(width, height);
        press(&mut app, "7");
        snapshot("detail_autoscale_off", &app, width, height);
    }
}

#[test]
fn detail_autoscale_off_read_only() {
    let mut app = opened(80, 24);
    app.read_only = true;
    press(&mut app, "7");
    let screen = render(&app, 80, 24).backend().to_string();
    assert!(screen.contains("runs with --read-only"), "{screen}");
    assert!(
        screen.contains("shipdeck autoscale ウェブショップ --min 1 --max 5 --cpu 70"),
        "{screen}"
    );
    assert!(!screen.contains("press u"), "{screen}");
}

#[test]
fn detail_autoscale_cluster() {
    for (width, height) in SIZES {
        let mut app = autoscaled(width, height);
        send_view(&mut app, cluster_view());
        snapshot("detail_autoscale_cluster", &app, width, height);
    }
}

#[test]
fn detail_autoscale_loading() {
    let app = autoscaled(80, 24);
    let screen = render(&app, 80, 24).backend().to_string();
    assert!(screen.contains("loading the autoscaling…"), "{screen}");
}

#[test]
fn autoscale_escapes_never_reach_the_buffer() {
    for view in [shipdeck_view(), problem_view()] {
        let mut app = autoscaled(200, 50);
        send_view(&mut app, view);
        let terminal = render(&app, 200, 50);
        for cell in terminal.backend().buffer().content() {
            let symbol = cell.symbol();
            assert!(
                !symbol.chars().any(char::is_control),
                "control character {symbol:?} in the autoscale tab"
            );
        }
    }
}
