//! The cluster's HorizontalPodAutoscaler in the shape shipdeck shows every
//! autoscaler in, [`AutoscaleView`], so that `autoscale status` and the
//! dashboard read a Kubernetes deployment like any other.
//!
//! The HPA controller reports less than shipdeck's own autoscaler records:
//! no per-replica counts, no recommendation per metric and no history of
//! decisions. Those fields stay zero, `None` or empty.

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, MetricSpec, MetricStatus,
    MetricTarget, MetricValueStatus,
};

use crate::autoscale::{
    AutoscaleSource, AutoscaleView, Condition, MetricReading, Target, DEFAULT_CPU_UTILIZATION,
};
use crate::manifest::quantity_value;

/// The metric an entry of the HPA's spec or status is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricKey<'a> {
    /// A resource of the whole pod: `cpu` or `memory`.
    Resource(&'a str),
    /// A resource of one container: the resource, then the container.
    ContainerResource(&'a str, &'a str),
    Pods(&'a str),
    External(&'a str),
}

/// Converts an HPA into the view of its status, or `None` before it has a
/// spec. Targets that [`Target`] cannot express (`Object` metrics, a
/// `Value` target, resources other than CPU and memory) are left out.
pub fn autoscale_view(hpa: &HorizontalPodAutoscaler) -> Option<AutoscaleView> {
    let spec = hpa.spec.as_ref()?;
    let status = hpa.status.clone().unwrap_or_default();
    let targets = targets_of(spec.metrics.as_deref().unwrap_or_default());
    let current = status.current_metrics.as_deref().unwrap_or_default();
    let metrics = targets
        .iter()
        .map(|(key, target)| reading(key, target, current))
        .collect();

    Some(AutoscaleView {
        source: AutoscaleSource::Cluster,
        min_replicas: count(spec.min_replicas.unwrap_or(1)),
        max_replicas: count(spec.max_replicas),
        targets: targets.into_iter().map(|(_, target)| target).collect(),
        current_replicas: count(status.current_replicas.unwrap_or(0)),
        desired_replicas: count(status.desired_replicas),
        metrics,
        conditions: status.conditions.iter().flatten().map(condition).collect(),
        last_scale_ms: status
            .last_scale_time
            .and_then(|time| u64::try_from(time.0.as_millisecond()).ok()),
        decisions: Vec::new(),
    })
}

fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// Lists the targets of the spec's metrics. Without any, the controller
/// targets [`DEFAULT_CPU_UTILIZATION`] percent CPU, so that is the target.
fn targets_of(metrics: &[MetricSpec]) -> Vec<(MetricKey<'_>, Target)> {
    if metrics.is_empty() {
        let target = Target::CpuUtilization {
            percent: DEFAULT_CPU_UTILIZATION,
        };
        return vec![(MetricKey::Resource("cpu"), target)];
    }
    metrics
        .iter()
        .filter_map(|metric| {
            let (key, target) = spec_key(metric)?;
            Some((key, target_of(key, target)?))
        })
        .collect()
}

fn spec_key(metric: &MetricSpec) -> Option<(MetricKey<'_>, &MetricTarget)> {
    match metric.type_.as_str() {
        "Resource" => {
            let source = metric.resource.as_ref()?;
            Some((MetricKey::Resource(&source.name), &source.target))
        }
        "ContainerResource" => {
            let source = metric.container_resource.as_ref()?;
            let key = MetricKey::ContainerResource(&source.name, &source.container);
            Some((key, &source.target))
        }
        "Pods" => {
            let source = metric.pods.as_ref()?;
            Some((MetricKey::Pods(&source.metric.name), &source.target))
        }
        "External" => {
            let source = metric.external.as_ref()?;
            Some((MetricKey::External(&source.metric.name), &source.target))
        }
        _ => None,
    }
}

fn status_key(metric: &MetricStatus) -> Option<(MetricKey<'_>, &MetricValueStatus)> {
    match metric.type_.as_str() {
        "Resource" => {
            let status = metric.resource.as_ref()?;
            Some((MetricKey::Resource(&status.name), &status.current))
        }
        "ContainerResource" => {
            let status = metric.container_resource.as_ref()?;
            let key = MetricKey::ContainerResource(&status.name, &status.container);
            Some((key, &status.current))
        }
        "Pods" => {
            let status = metric.pods.as_ref()?;
            Some((MetricKey::Pods(&status.metric.name), &status.current))
        }
        "External" => {
            let status = metric.external.as_ref()?;
            Some((MetricKey::External(&status.metric.name), &status.current))
        }
        _ => None,
    }
}

/// Converts one target. A resource's `AverageValue` target applies per
/// replica to the series shipdeck stores for that resource (`cpu_usage`
/// in cores, `memory_usage` in bytes).
fn target_of(key: MetricKey<'_>, target: &MetricTarget) -> Option<Target> {
    let average_value = || quantity_value(&target.average_value.as_ref()?.0).ok();
    match key {
        MetricKey::Resource(resource) | MetricKey::ContainerResource(resource, _) => {
            match target.type_.as_str() {
                "Utilization" => {
                    let percent = u32::try_from(target.average_utilization?).ok()?;
                    match resource {
                        "cpu" => Some(Target::CpuUtilization { percent }),
                        "memory" => Some(Target::MemoryUtilization { percent }),
                        _ => None,
                    }
                }
                "AverageValue" => {
                    let metric = match resource {
                        "cpu" => "cpu_usage",
                        "memory" => "memory_usage",
                        _ => return None,
                    };
                    Some(Target::AverageValue {
                        metric: metric.to_owned(),
                        value: average_value()?,
                    })
                }
                _ => None,
            }
        }
        MetricKey::Pods(name) | MetricKey::External(name) => {
            (target.type_ == "AverageValue").then_some(())?;
            Some(Target::AverageValue {
                metric: name.to_owned(),
                value: average_value()?,
            })
        }
    }
}

/// Builds the reading of one target from the status's current metrics. A
/// target the controller has not measured yet has no current value.
fn reading(key: &MetricKey<'_>, target: &Target, current: &[MetricStatus]) -> MetricReading {
    let measured = current
        .iter()
        .filter_map(status_key)
        .find(|(found, _)| found == key)
        .and_then(|(_, value)| current_value(target, value));
    MetricReading {
        target: target.clone(),
        current: measured,
        ready: 0,
        missing: 0,
        unready: 0,
        recommendation: None,
        problem: None,
    }
}

fn current_value(target: &Target, value: &MetricValueStatus) -> Option<f64> {
    match target {
        Target::CpuUtilization { .. } | Target::MemoryUtilization { .. } => {
            value.average_utilization.map(f64::from)
        }
        Target::AverageValue { .. } => quantity_value(&value.average_value.as_ref()?.0).ok(),
    }
}

fn condition(condition: &HorizontalPodAutoscalerCondition) -> Condition {
    Condition {
        kind: condition.type_.clone(),
        status: condition.status == "True",
        reason: condition.reason.clone().unwrap_or_default(),
        message: condition.message.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hpa(spec: serde_json::Value, status: serde_json::Value) -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web-staging"},
            "spec": spec,
            "status": status,
        }))
        .expect("an HPA")
    }

    fn spec_with(metrics: serde_json::Value) -> serde_json::Value {
        json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-staging"},
            "minReplicas": 2,
            "maxReplicas": 8,
            "metrics": metrics,
        })
    }

    fn average_value(metric: &str, value: f64) -> Target {
        Target::AverageValue {
            metric: metric.to_owned(),
            value,
        }
    }

    #[test]
    fn full_status_converted() {
        let metrics = json!([
            {"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60}}},
            {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "500m"}}},
            {"type": "External", "external": {"metric": {"name": "queue_depth"},
                "target": {"type": "AverageValue", "averageValue": "30"}}},
        ]);
        let status = json!({
            "currentReplicas": 3,
            "desiredReplicas": 4,
            "lastScaleTime": "2026-01-01T00:00:00Z",
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu",
                    "current": {"averageUtilization": 75, "averageValue": "150m"}}},
                {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                    "current": {"averageValue": "750m"}}},
                {"type": "External", "external": {"metric": {"name": "queue_depth"},
                    "current": {"averageValue": "12"}}},
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                    "message": "the HPA controller was able to update the target scale to 4"},
                {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound",
                    "message": "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)"},
                {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange",
                    "message": "the desired count is within the acceptable range"},
            ],
        });
        let view = autoscale_view(&hpa(spec_with(metrics), status)).expect("a view");

        assert_eq!(view.source, AutoscaleSource::Cluster);
        assert_eq!((view.min_replicas, view.max_replicas), (2, 8));
        assert_eq!((view.current_replicas, view.desired_replicas), (3, 4));
        assert_eq!(view.last_scale_ms, Some(1_767_225_600_000));
        assert!(view.decisions.is_empty(), "a cluster keeps no decisions");
        assert_eq!(
            view.targets,
            [
                Target::CpuUtilization { percent: 60 },
                average_value("requests_per_second", 0.5),
                average_value("queue_depth", 30.0),
            ]
        );
        let current: Vec<Option<f64>> = view.metrics.iter().map(|m| m.current).collect();
        assert_eq!(current, [Some(75.0), Some(0.75), Some(12.0)]);
        assert_eq!(view.metrics[1].target, view.targets[1]);

        let kinds: Vec<(&str, bool, &str)> = view
            .conditions
            .iter()
            .map(|c| (c.kind.as_str(), c.status, c.reason.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("AbleToScale", true, "SucceededRescale"),
                ("ScalingActive", true, "ValidMetricFound"),
                ("ScalingLimited", false, "DesiredWithinRange"),
            ]
        );
        assert_eq!(
            view.conditions[2].message,
            "the desired count is within the acceptable range"
        );
    }

    #[test]
    fn no_status_yet_has_no_readings() {
        let metrics = json!([{"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "Utilization", "averageUtilization": 70}}}]);
        let view = autoscale_view(&hpa(spec_with(metrics), json!(null))).expect("a view");
        assert_eq!(view.targets, [Target::MemoryUtilization { percent: 70 }]);
        assert_eq!(view.metrics.len(), 1);
        assert_eq!(view.metrics[0].current, None);
        assert_eq!((view.current_replicas, view.desired_replicas), (0, 0));
        assert!(view.conditions.is_empty());
        assert_eq!(view.last_scale_ms, None);
    }

    #[test]
    fn no_metrics_means_default_cpu() {
        let mut spec = spec_with(json!(null));
        spec["minReplicas"] = json!(null);
        let status = json!({"desiredReplicas": 1, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}},
        ]});
        let view = autoscale_view(&hpa(spec, status)).expect("a view");
        assert_eq!(view.min_replicas, 1, "the API's default");
        assert_eq!(
            view.targets,
            [Target::CpuUtilization {
                percent: DEFAULT_CPU_UTILIZATION
            }]
        );
        assert_eq!(view.metrics[0].current, Some(12.0));
    }

    #[test]
    fn resource_average_value_targets_usage_series() {
        let metrics = json!([
            {"type": "Resource", "resource": {"name": "memory",
                "target": {"type": "AverageValue", "averageValue": "256Mi"}}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "web",
                "target": {"type": "Utilization", "averageUtilization": 50}}},
        ]);
        let status = json!({"desiredReplicas": 2, "currentMetrics": [
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "web",
                "current": {"averageUtilization": 40}}},
            {"type": "Resource", "resource": {"name": "memory",
                "current": {"averageValue": "128Mi"}}},
        ]});
        let view = autoscale_view(&hpa(spec_with(metrics), status)).expect("a view");
        assert_eq!(
            view.targets,
            [
                average_value("memory_usage", 256.0 * 1024.0 * 1024.0),
                Target::CpuUtilization { percent: 50 },
            ]
        );
        let current: Vec<Option<f64>> = view.metrics.iter().map(|m| m.current).collect();
        assert_eq!(current, [Some(128.0 * 1024.0 * 1024.0), Some(40.0)]);
    }

    #[test]
    fn inexpressible_targets_left_out() {
        let metrics = json!([
            {"type": "Object", "object": {"metric": {"name": "hits"},
                "describedObject": {"kind": "Ingress", "name": "main"},
                "target": {"type": "Value", "value": "10"}}},
            {"type": "External", "external": {"metric": {"name": "queue_depth"},
                "target": {"type": "Value", "value": "100"}}},
            {"type": "Resource", "resource": {"name": "ephemeral-storage",
                "target": {"type": "Utilization", "averageUtilization": 50}}},
            {"type": "Pods", "pods": {"metric": {"name": "sessions"},
                "target": {"type": "AverageValue", "averageValue": "20"}}},
        ]);
        let view = autoscale_view(&hpa(spec_with(metrics), json!({"desiredReplicas": 2})))
            .expect("a view");
        assert_eq!(view.targets, [average_value("sessions", 20.0)]);
        assert_eq!(view.metrics.len(), 1);
    }

    #[test]
    fn no_spec_no_view() {
        let hpa: HorizontalPodAutoscaler =
            serde_json::from_value(json!({"metadata": {"name": "web"}})).expect("an HPA");
        assert_eq!(autoscale_view(&hpa), None);
    }
}
