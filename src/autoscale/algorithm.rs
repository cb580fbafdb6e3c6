//! The replica calculation of the Kubernetes HPA controller, its
//! stabilization windows and its rate policies, step for step, so that a
//! deployment scales the same on every backend.

use super::{
    Behavior, Condition, Decision, History, LimitReason, MetricReading, Observation, Policy, Target,
};
use crate::manifest::{ScalingRule, ScalingRuleKind, SelectPolicy};

/// The maximum rule period of autoscaling/v2. Older scale changes can no
/// longer limit anything.
const LONGEST_PERIOD_SECONDS: u32 = 1800;

impl History {
    /// Evaluates `policy` against `observation` at `now_ms` and remembers
    /// the recommendation for the stabilization windows.
    pub fn evaluate(
        &mut self,
        policy: &Policy,
        observation: &Observation,
        now_ms: u64,
    ) -> Decision {
        let current = observation.current_replicas;
        self.seed(current, now_ms);

        if current == 0 {
            return self.disabled_at_zero(policy, now_ms);
        }
        if current > policy.max_replicas || current < policy.min_replicas {
            return self.move_into_range(policy, observation, now_ms);
        }

        let readings: Vec<MetricReading> = policy
            .targets
            .iter()
            .map(|target| read(target, policy.tolerance, observation))
            .collect();
        let recommendation = readings
            .iter()
            .filter_map(|reading| reading.recommendation)
            .max();
        let failed = readings.iter().find(|reading| reading.problem.is_some());
        // As the controller: with no usable target, or when a target failed
        // and the others would scale down, hold the count, since the failed
        // one might have asked for more.
        let held = match (recommendation, failed) {
            (None, _) => true,
            (Some(count), Some(_)) => count < current,
            (Some(_), None) => false,
        };
        if held {
            return self.hold(policy, observation, readings, recommendation, now_ms);
        }
        let recommendation = recommendation.unwrap_or(current);
        self.scale(policy, observation, readings, recommendation, now_ms)
    }

    /// Remembers a change of the replica count that this autoscaler made,
    /// for the rate policies.
    pub fn record_scale(&mut self, from: u32, to: u32, now_ms: u64) {
        if to > from {
            self.scale_ups.push((now_ms, to - from));
        } else if from > to {
            self.scale_downs.push((now_ms, from - to));
        }
        let recent = |&(at, _): &(u64, u32)| within(at, LONGEST_PERIOD_SECONDS, now_ms);
        self.scale_ups.retain(recent);
        self.scale_downs.retain(recent);
    }

    /// Returns the time of the newest scale change this autoscaler recorded.
    pub fn last_scale_ms(&self) -> Option<u64> {
        self.scale_ups
            .iter()
            .chain(&self.scale_downs)
            .map(|(at, _)| *at)
            .max()
    }

    /// Seeds the down window with the count found at the first evaluation,
    /// so that starting (or restarting) the autoscaler never scales down at once.
    fn seed(&mut self, current: u32, now_ms: u64) {
        if !self.seeded {
            self.recommendations.push((now_ms, current));
            self.seeded = true;
        }
    }

    fn disabled_at_zero(&self, policy: &Policy, now_ms: u64) -> Decision {
        Decision {
            at_ms: now_ms,
            current_replicas: 0,
            min_replicas: policy.min_replicas,
            max_replicas: policy.max_replicas,
            metrics: Vec::new(),
            recommendation: None,
            stabilized: 0,
            limit: LimitReason::ScalingDisabled,
            limiting_rule: None,
            desired: 0,
            reason: "keeping 0 replicas: scaling is off while the deployment is scaled to zero; \
                     scale it to at least 1 to resume"
                .to_owned(),
            conditions: vec![condition(
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )],
        }
    }

    /// Moves a count outside min and max into the range, as the controller
    /// does before it reads any metric.
    fn move_into_range(&self, policy: &Policy, observation: &Observation, now_ms: u64) -> Decision {
        let current = observation.current_replicas;
        let (desired, reason, limit) = if current > policy.max_replicas {
            (
                policy.max_replicas,
                "the current count is above maxReplicas",
                LimitReason::TooManyReplicas,
            )
        } else {
            (
                policy.min_replicas,
                "the current count is below minReplicas",
                LimitReason::TooFewReplicas,
            )
        };
        Decision {
            at_ms: now_ms,
            current_replicas: current,
            min_replicas: policy.min_replicas,
            max_replicas: policy.max_replicas,
            metrics: Vec::new(),
            recommendation: None,
            stabilized: desired,
            limit,
            limiting_rule: None,
            desired,
            reason: format!("scaling from {current} to {desired}: {reason}"),
            conditions: vec![condition(
                "AbleToScale",
                true,
                "SucceededRescale",
                &format!(
                    "the count moves into the range {}..{}",
                    policy.min_replicas, policy.max_replicas
                ),
            )],
        }
    }

    fn hold(
        &self,
        policy: &Policy,
        observation: &Observation,
        readings: Vec<MetricReading>,
        recommendation: Option<u32>,
        now_ms: u64,
    ) -> Decision {
        let current = observation.current_replicas;
        let problem = readings
            .iter()
            .find_map(|reading| reading.problem.clone())
            .unwrap_or_else(|| "no target could recommend a count".to_owned());
        Decision {
            at_ms: now_ms,
            current_replicas: current,
            min_replicas: policy.min_replicas,
            max_replicas: policy.max_replicas,
            metrics: readings,
            recommendation,
            stabilized: current,
            limit: LimitReason::DesiredWithinRange,
            limiting_rule: None,
            desired: current,
            reason: format!("keeping {}: {problem}", replicas(current)),
            conditions: vec![condition(
                "ScalingActive",
                false,
                "FailedGetMetric",
                &problem,
            )],
        }
    }

    fn scale(
        &mut self,
        policy: &Policy,
        observation: &Observation,
        readings: Vec<MetricReading>,
        recommendation: u32,
        now_ms: u64,
    ) -> Decision {
        let current = observation.current_replicas;
        let stabilized = self.stabilize(policy, current, recommendation, now_ms);
        let limited = self.limit_rate(policy, current, stabilized, now_ms);

        let able = if stabilized != recommendation {
            let (reason, window) = if stabilized > recommendation {
                (
                    "ScaleDownStabilized",
                    policy.scale_down.stabilization_window_seconds,
                )
            } else {
                (
                    "ScaleUpStabilized",
                    policy.scale_up.stabilization_window_seconds,
                )
            };
            condition(
                "AbleToScale",
                true,
                reason,
                &format!("recent recommendations within the {window}s window hold the count at {stabilized}"),
            )
        } else {
            condition(
                "AbleToScale",
                true,
                "ReadyForNewScale",
                "recommended size matches current size",
            )
        };
        let conditions = vec![
            able,
            active_condition(&readings),
            condition(
                "ScalingLimited",
                limited.desired != stabilized,
                limit_name(limited.limit),
                &limited.message,
            ),
        ];
        let reason = explain(
            policy,
            current,
            recommendation,
            stabilized,
            &limited,
            &readings,
        );
        Decision {
            at_ms: now_ms,
            current_replicas: current,
            min_replicas: policy.min_replicas,
            max_replicas: policy.max_replicas,
            metrics: readings,
            recommendation: Some(recommendation),
            stabilized,
            limit: limited.limit,
            limiting_rule: limited.rule,
            desired: limited.desired,
            reason,
            conditions,
        }
    }

    /// Holds the recommendation between the lowest one of the up window and
    /// the highest one of the down window, then remembers it.
    fn stabilize(
        &mut self,
        policy: &Policy,
        current: u32,
        recommendation: u32,
        now_ms: u64,
    ) -> u32 {
        let up_window = policy.scale_up.stabilization_window_seconds;
        let down_window = policy.scale_down.stabilization_window_seconds;
        let mut up = recommendation;
        let mut down = recommendation;
        let mut replaceable = None;
        for (index, &(at, past)) in self.recommendations.iter().enumerate() {
            if within(at, up_window, now_ms) {
                up = up.min(past);
            }
            if within(at, down_window, now_ms) {
                down = down.max(past);
            }
            if older(at, up_window, now_ms) && older(at, down_window, now_ms) {
                replaceable = Some(index);
            }
        }
        match replaceable {
            Some(index) => self.recommendations[index] = (now_ms, recommendation),
            None => self.recommendations.push((now_ms, recommendation)),
        }
        current.max(up).min(down)
    }

    /// Bounds the change by min, max and the direction's rate policies.
    fn limit_rate(&self, policy: &Policy, current: u32, desired: u32, now_ms: u64) -> Limited {
        let added = |period| changed_within(&self.scale_ups, period, now_ms);
        let removed = |period| changed_within(&self.scale_downs, period, now_ms);
        if desired > current {
            let (limit, rule) =
                rate_limit(Direction::Up, current, &policy.scale_up, added, removed);
            let limit = limit.max(current);
            let (allowed, reason, rule) = if policy.max_replicas > limit {
                (limit, up_reason(&policy.scale_up), rule)
            } else {
                (policy.max_replicas, LimitReason::TooManyReplicas, None)
            };
            if desired > allowed {
                return Limited::new(allowed, reason, rule);
            }
        } else if desired < current {
            let (limit, rule) =
                rate_limit(Direction::Down, current, &policy.scale_down, added, removed);
            let limit = limit.min(current);
            let (allowed, reason, rule) = if policy.min_replicas < limit {
                (limit, down_reason(&policy.scale_down), rule)
            } else {
                (policy.min_replicas, LimitReason::TooFewReplicas, None)
            };
            if desired < allowed {
                return Limited::new(allowed, reason, rule);
            }
        }
        Limited::new(desired, LimitReason::DesiredWithinRange, None)
    }
}

/// The outcome of the rate policies.
struct Limited {
    desired: u32,
    limit: LimitReason,
    rule: Option<String>,
    message: String,
}

impl Limited {
    fn new(desired: u32, limit: LimitReason, rule: Option<String>) -> Self {
        let message = match limit {
            LimitReason::DesiredWithinRange => "the desired count is within the acceptable range",
            LimitReason::ScaleUpLimit => {
                "the desired replica count is increasing faster than the maximum scale rate"
            }
            LimitReason::ScaleDownLimit => {
                "the desired replica count is decreasing faster than the maximum scale rate"
            }
            LimitReason::TooManyReplicas => {
                "the desired replica count is more than the maximum replica count"
            }
            LimitReason::TooFewReplicas => {
                "the desired replica count is less than the minimum replica count"
            }
            LimitReason::ScalingDisabled => "selectPolicy is Disabled for this direction",
        };
        Self {
            desired,
            limit,
            rule,
            message: message.to_owned(),
        }
    }
}

fn up_reason(behavior: &Behavior) -> LimitReason {
    if behavior.select == SelectPolicy::Disabled {
        LimitReason::ScalingDisabled
    } else {
        LimitReason::ScaleUpLimit
    }
}

fn down_reason(behavior: &Behavior) -> LimitReason {
    if behavior.select == SelectPolicy::Disabled {
        LimitReason::ScalingDisabled
    } else {
        LimitReason::ScaleDownLimit
    }
}

/// A direction of scaling, for the rate rules.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

/// Returns the furthest count the direction's rules allow now, and the rule
/// that set it. `Max` picks the biggest change and `Min` the smallest.
fn rate_limit(
    direction: Direction,
    current: u32,
    behavior: &Behavior,
    added: impl Fn(u32) -> u32,
    removed: impl Fn(u32) -> u32,
) -> (u32, Option<String>) {
    if behavior.select == SelectPolicy::Disabled {
        return (current, None);
    }
    let proposals = behavior.rules.iter().map(|rule| {
        let start = i64::from(current) - i64::from(added(rule.period_seconds))
            + i64::from(removed(rule.period_seconds));
        (propose(direction, start, rule), rule)
    });
    // The biggest change up is the highest count, and down the lowest.
    let highest = (direction == Direction::Up) == (behavior.select != SelectPolicy::Min);
    let chosen = if highest {
        proposals.max_by_key(|(proposed, _)| *proposed)
    } else {
        proposals.min_by_key(|(proposed, _)| *proposed)
    };
    match chosen {
        Some((proposed, rule)) => (clamp_count(proposed), Some(describe_rule(rule))),
        None => (current, None),
    }
}

/// Returns the count one rule allows from `start`, the count at the start
/// of its period.
fn propose(direction: Direction, start: i64, rule: &ScalingRule) -> i64 {
    let value = i64::from(rule.value);
    let fraction = f64::from(rule.value) / 100.0;
    // NOTE: f64 in the controller's order of operations, so both
    // directions can differ by one from exact arithmetic as the
    // controller's do: Percent 12 up from 25 allows 29, not 28.
    match (rule.kind, direction) {
        (ScalingRuleKind::Pods, Direction::Up) => start + value,
        (ScalingRuleKind::Pods, Direction::Down) => start - value,
        (ScalingRuleKind::Percent, Direction::Up) => {
            (start as f64 * (1.0 + fraction)).ceil() as i64
        }
        (ScalingRuleKind::Percent, Direction::Down) => (start as f64 * (1.0 - fraction)) as i64,
    }
}

fn clamp_count(count: i64) -> u32 {
    u32::try_from(count.max(0)).unwrap_or(u32::MAX)
}

fn describe_rule(rule: &ScalingRule) -> String {
    match rule.kind {
        ScalingRuleKind::Pods => format!("Pods {} per {}s", rule.value, rule.period_seconds),
        ScalingRuleKind::Percent => format!("Percent {} per {}s", rule.value, rule.period_seconds),
    }
}

/// Sums the replicas added (or removed) by the changes within the last `period_seconds`.
fn changed_within(events: &[(u64, u32)], period_seconds: u32, now_ms: u64) -> u32 {
    events
        .iter()
        .filter(|(at, _)| within(*at, period_seconds, now_ms))
        .map(|(_, change)| *change)
        .sum()
}

/// True when `at_ms` is after the start of the `seconds` that end at
/// `now_ms`, the controller's `timestamp.After(now - window)`. Adding to
/// `at_ms` rather than subtracting from `now_ms` keeps a sample near time
/// zero inside its window, where a saturating subtraction would drop it.
fn within(at_ms: u64, seconds: u32, now_ms: u64) -> bool {
    at_ms.saturating_add(u64::from(seconds) * 1000) > now_ms
}

/// True when `at_ms` is before the start of the `seconds` that end at
/// `now_ms`, the controller's `timestamp.Before(now - window)`.
fn older(at_ms: u64, seconds: u32, now_ms: u64) -> bool {
    at_ms.saturating_add(u64::from(seconds) * 1000) < now_ms
}

/// True when `ratio` is close enough to 1 to keep the count. This is the
/// controller's `Tolerances.isWithin` (Kubernetes 1.33 and later): the
/// bounds `1 ± tolerance` hold a ratio of exactly 1.1 inside, where
/// `|1 - ratio| <= tolerance` puts it outside, since `1.0 - 1.1` is
/// -0.10000000000000009 in f64.
fn within_tolerance(ratio: f64, tolerance: f64) -> bool {
    (1.0 - tolerance..=1.0 + tolerance).contains(&ratio)
}

fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        kind: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
    }
}

/// Builds `ScalingActive` for a count that was worked out. A target may
/// have failed when the others ask for at least the current count.
fn active_condition(readings: &[MetricReading]) -> Condition {
    let failed: Vec<&str> = readings
        .iter()
        .filter_map(|reading| reading.problem.as_deref())
        .collect();
    let message = match failed.first() {
        None => "every target could be read".to_owned(),
        Some(problem) => format!(
            "{} of {} targets could be read and the count comes from them; {problem}",
            readings.len() - failed.len(),
            readings.len()
        ),
    };
    condition("ScalingActive", true, "ValidMetricFound", &message)
}

fn limit_name(limit: LimitReason) -> &'static str {
    match limit {
        LimitReason::DesiredWithinRange => "DesiredWithinRange",
        LimitReason::ScaleUpLimit => "ScaleUpLimit",
        LimitReason::ScaleDownLimit => "ScaleDownLimit",
        LimitReason::TooManyReplicas => "TooManyReplicas",
        LimitReason::TooFewReplicas => "TooFewReplicas",
        LimitReason::ScalingDisabled => "ScalingDisabled",
    }
}

/// Explains in one sentence why the count is what it is.
fn explain(
    policy: &Policy,
    current: u32,
    recommendation: u32,
    stabilized: u32,
    limited: &Limited,
    readings: &[MetricReading],
) -> String {
    let desired = limited.desired;
    let bound = bound_clause(limited);
    if desired == current {
        if stabilized != recommendation {
            let window = if stabilized > recommendation {
                format!(
                    "the scale-down window of {}s",
                    policy.scale_down.stabilization_window_seconds
                )
            } else {
                format!(
                    "the scale-up window of {}s",
                    policy.scale_up.stabilization_window_seconds
                )
            };
            return format!(
                "keeping {}: {window} holds an earlier recommendation (the targets ask for {recommendation})",
                replicas(current)
            );
        }
        if recommendation != current {
            return format!(
                "keeping {}{bound} (the targets ask for {recommendation})",
                replicas(current)
            );
        }
        return steady_reason(policy.tolerance, current, readings);
    }
    let why = if desired > current {
        readings
            .iter()
            .filter(|reading| reading.recommendation.is_some_and(|count| count > current))
            .map(describe_reading)
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        // Every target recommends fewer, so name them with their values.
        readings
            .iter()
            .map(describe_reading)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if desired != stabilized {
        format!(
            "scaling from {current} to {desired}{bound} (the targets ask for {stabilized}): {why}"
        )
    } else {
        format!("scaling from {current} to {desired}: {why}")
    }
}

/// Explains why the largest recommendation is the current count. Tolerance
/// is the usual reason, but a target also keeps the count when replicas
/// without samples would reverse its direction, and others may ask for fewer.
fn steady_reason(tolerance: f64, current: u32, readings: &[MetricReading]) -> String {
    let all_within = readings.iter().all(|reading| {
        reading
            .current
            .is_some_and(|value| within_tolerance(value / target_value(&reading.target), tolerance))
    });
    if all_within {
        format!(
            "keeping {}: every target is within {}% of its value",
            replicas(current),
            (tolerance * 100.0).round()
        )
    } else {
        format!(
            "keeping {}: no target asks for more than {current}",
            replicas(current)
        )
    }
}

fn target_value(target: &Target) -> f64 {
    match target {
        Target::CpuUtilization { percent } | Target::MemoryUtilization { percent } => {
            f64::from(*percent)
        }
        Target::AverageValue { value, .. } => *value,
    }
}

/// Says what bounded the count, such as ", the maximum".
fn bound_clause(limited: &Limited) -> String {
    let rule = limited.rule.as_deref().unwrap_or("the rate policy");
    match limited.limit {
        LimitReason::DesiredWithinRange => String::new(),
        LimitReason::TooManyReplicas => ", the maximum".to_owned(),
        LimitReason::TooFewReplicas => ", the minimum".to_owned(),
        LimitReason::ScaleUpLimit | LimitReason::ScaleDownLimit => {
            format!(", as far as {rule} allows")
        }
        LimitReason::ScalingDisabled => ", since selectPolicy is Disabled".to_owned(),
    }
}

fn replicas(count: u32) -> String {
    if count == 1 {
        "1 replica".to_owned()
    } else {
        format!("{count} replicas")
    }
}

fn describe_reading(reading: &MetricReading) -> String {
    let current = reading.current.unwrap_or(0.0);
    let side = |wanted: f64| if current > wanted { "above" } else { "below" };
    match &reading.target {
        Target::CpuUtilization { percent } => format!(
            "CPU at {current:.0}% of its request, {} the target of {percent}%",
            side(f64::from(*percent))
        ),
        Target::MemoryUtilization { percent } => format!(
            "memory at {current:.0}% of its request, {} the target of {percent}%",
            side(f64::from(*percent))
        ),
        Target::AverageValue { metric, value } => format!(
            "{metric} at {current:.2} per replica, {} the target of {value}",
            side(*value)
        ),
    }
}

/// Reads one target and works out the count it recommends.
fn read(target: &Target, tolerance: f64, observation: &Observation) -> MetricReading {
    match target {
        Target::CpuUtilization { percent } => {
            let request = observation
                .cpu_request_cores
                .map(|cores| (cores * 1000.0).round() as i64);
            let samples = observation.replicas.iter().map(|replica| {
                (
                    replica
                        .cpu_cores
                        .map(|cores| (cores * 1000.0).round() as i64),
                    replica.ready,
                )
            });
            utilization(
                target,
                "cpu",
                *percent,
                request,
                samples,
                true,
                tolerance,
                observation,
            )
        }
        Target::MemoryUtilization { percent } => {
            let request = observation
                .memory_request_bytes
                .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
            let samples = observation.replicas.iter().map(|replica| {
                (
                    replica
                        .memory_bytes
                        .map(|bytes| i64::try_from(bytes).unwrap_or(i64::MAX)),
                    replica.ready,
                )
            });
            utilization(
                target,
                "memory",
                *percent,
                request,
                samples,
                false,
                tolerance,
                observation,
            )
        }
        Target::AverageValue { metric, value } => {
            average_value(target, metric, *value, tolerance, observation)
        }
    }
}

fn unusable(target: &Target, problem: String) -> MetricReading {
    MetricReading {
        target: target.clone(),
        current: None,
        ready: 0,
        missing: 0,
        unready: 0,
        recommendation: None,
        problem: Some(problem),
    }
}

/// Computes a CPU or memory target as the controller does: over replicas
/// with samples, with missing replicas and (for CPU) unready replicas
/// counted against the direction of the change.
#[allow(clippy::too_many_arguments)]
fn utilization(
    target: &Target,
    resource: &str,
    target_percent: u32,
    request: Option<i64>,
    samples: impl Iterator<Item = (Option<i64>, bool)>,
    unready_ignored: bool,
    tolerance: f64,
    observation: &Observation,
) -> MetricReading {
    let Some(request) = request.filter(|request| *request > 0) else {
        return unusable(
            target,
            format!(
                "cannot compute {} utilization: no {resource} request; set resources.requests.{resource}",
                if resource == "cpu" { "CPU" } else { resource }
            ),
        );
    };
    let mut ready: Vec<i64> = Vec::new();
    let mut missing = 0u32;
    let mut unready = 0u32;
    for (usage, is_ready) in samples {
        match usage {
            None => missing += 1,
            Some(_) if unready_ignored && !is_ready => unready += 1,
            Some(usage) => ready.push(usage),
        }
    }
    let counts = |reading: MetricReading| MetricReading {
        ready: ready.len() as u32,
        missing,
        unready,
        ..reading
    };
    if ready.is_empty() {
        return counts(unusable(
            target,
            format!(
                "no {resource} samples from ready replicas yet (replicas may still be starting)"
            ),
        ));
    }

    let ratio_of = |values: &[i64]| -> (i64, f64) {
        let total: i64 = values.iter().sum();
        let requests = request * values.len() as i64;
        let percent = total.saturating_mul(100) / requests.max(1);
        (percent, percent as f64 / f64::from(target_percent))
    };
    let (percent, ratio) = ratio_of(&ready);
    let current = observation.current_replicas;
    let reading = |recommendation: u32| {
        counts(MetricReading {
            target: target.clone(),
            current: Some(percent as f64),
            ready: 0,
            missing: 0,
            unready: 0,
            recommendation: Some(recommendation),
            problem: None,
        })
    };

    let up_with_unready = unready > 0 && ratio > 1.0;
    if !up_with_unready && missing == 0 {
        if within_tolerance(ratio, tolerance) {
            return reading(current);
        }
        return reading((ratio * ready.len() as f64).ceil() as u32);
    }

    // Assume the worst for the direction of the change. A missing replica
    // would use its whole request when scaling down and nothing when
    // scaling up, and an unready one nothing when scaling up.
    let mut filled = ready.clone();
    if ratio < 1.0 {
        let fallback = request * i64::from(target_percent.max(100)) / 100;
        filled.extend(std::iter::repeat_n(fallback, missing as usize));
    } else if ratio > 1.0 {
        filled.extend(std::iter::repeat_n(0, missing as usize));
    }
    if up_with_unready {
        filled.extend(std::iter::repeat_n(0, unready as usize));
    }
    let (_, new_ratio) = ratio_of(&filled);
    let flipped = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
    if within_tolerance(new_ratio, tolerance) || flipped {
        return reading(current);
    }
    let count = (new_ratio * filled.len() as f64).ceil() as u32;
    if (new_ratio < 1.0 && count > current) || (new_ratio > 1.0 && count < current) {
        return reading(current);
    }
    reading(count)
}

/// Computes a series held at a value per replica, as the controller does
/// for an external metric with an `AverageValue` target.
fn average_value(
    target: &Target,
    metric: &str,
    value: f64,
    tolerance: f64,
    observation: &Observation,
) -> MetricReading {
    let Some(total) = observation.series.get(metric).copied() else {
        return unusable(
            target,
            format!(
                "no recent value of {metric}; check that the deployment collects it \
                 (`shipdeck metrics NAME --list`)"
            ),
        );
    };
    let running = u32::try_from(observation.replicas.len()).unwrap_or(u32::MAX);
    let replicas = if running == 0 {
        observation.current_replicas
    } else {
        running
    };
    let current = observation.current_replicas;
    let ratio = total / (value * f64::from(replicas.max(1)));
    let recommendation = if !within_tolerance(ratio, tolerance) {
        (total / value).ceil().max(0.0) as u32
    } else {
        current
    };
    MetricReading {
        target: target.clone(),
        current: Some(total / f64::from(replicas.max(1))),
        ready: replicas,
        missing: 0,
        unready: 0,
        recommendation: Some(recommendation),
        problem: None,
    }
}
