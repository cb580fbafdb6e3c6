//! `shipdeck autoscale`: turning autoscaling on or off, and showing what
//! the autoscaler decided and why.

use time::OffsetDateTime;

use super::commands::{action_output, client, env_query, render, rfc3339, timeout_ms};
use super::output::Table;
use super::{AutoscaleAction, AutoscaleArgs, AutoscaleSetArgs, AutoscaleStatusArgs, CliError};
use crate::api::client::encode;
use crate::api::wire::{ActionResult, AutoscaleBody};
use crate::autoscale::{AutoscaleSource, AutoscaleView, Decision, MetricReading, Target};
use crate::home::Home;
use crate::manifest::{AutoScaling, AverageValueTarget, ManifestDuration};

pub async fn run(home: &Home, args: AutoscaleArgs) -> Result<String, CliError> {
    match args.action {
        Some(AutoscaleAction::Off(off)) => {
            let body = AutoscaleBody {
                environment: off.env,
                setting: None,
                wait: off.wait.wait,
                timeout_ms: timeout_ms(&off.wait)?,
            };
            send(home, &off.name, &body, off.format.format, "autoscaling off").await
        }
        Some(AutoscaleAction::Status(status_args)) => status(home, status_args).await,
        None => set(home, args.set).await,
    }
}

async fn set(home: &Home, args: AutoscaleSetArgs) -> Result<String, CliError> {
    let (Some(name), Some(min), Some(max)) = (args.name, args.min, args.max) else {
        return Err(CliError::Message(
            "name the deployment and give --min and --max, as in \
             `shipdeck autoscale web --min 1 --max 5 --cpu 70`"
                .to_owned(),
        ));
    };
    let metrics = args
        .metric
        .iter()
        .map(|text| parse_metric(text))
        .collect::<Result<Vec<_>, _>>()?;
    let interval = args
        .interval
        .map(|text| {
            ManifestDuration::try_from(text.clone()).map_err(|message| {
                CliError::Message(format!("invalid --interval {text:?}: {message}"))
            })
        })
        .transpose()?;
    let setting = AutoScaling {
        enabled: true,
        min_replicas: min,
        max_replicas: max,
        target_cpu_utilization: args.cpu,
        target_memory_utilization: args.memory,
        metrics,
        interval,
        scale_up_policy: None,
        scale_down_policy: None,
    };
    let verb = format!("autoscaling {min} to {max}");
    let body = AutoscaleBody {
        environment: args.env,
        setting: Some(setting),
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    send(home, &name, &body, args.format.format, &verb).await
}

async fn send(
    home: &Home,
    name: &str,
    body: &AutoscaleBody,
    format: super::output::Format,
    verb: &str,
) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = format!("/v1/deployments/{}/autoscale", encode(name));
    let result: ActionResult = client.put(&path, body).await?;
    action_output(&result, format, verb)
}

/// Reads `NAME=VALUE` of `--metric`.
fn parse_metric(text: &str) -> Result<AverageValueTarget, CliError> {
    let problem = |why: &str| {
        CliError::Message(format!(
            "invalid --metric {text:?}: {why}; write NAME=VALUE, as in requests_per_second=50"
        ))
    };
    let (name, value) = text.split_once('=').ok_or_else(|| problem("no `=`"))?;
    let value: f64 = value
        .trim()
        .parse()
        .map_err(|_| problem("the value is not a number"))?;
    if name.trim().is_empty() {
        return Err(problem("the name is empty"));
    }
    Ok(AverageValueTarget {
        name: name.trim().to_owned(),
        average_value: value,
    })
}

async fn status(home: &Home, args: AutoscaleStatusArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let query = env_query(&args.env);
    let separator = if query.is_empty() { '?' } else { '&' };
    let path = format!(
        "/v1/deployments/{}/autoscale{query}{separator}limit={}",
        encode(&args.name),
        args.decisions
    );
    let view: AutoscaleView = client.get(&path).await?;
    render(&view, args.format.format, |view| {
        status_text(&args.name, view)
    })
}

/// Renders the status as text: a summary line, the targets, the conditions
/// and the recent decisions.
pub fn status_text(name: &str, view: &AutoscaleView) -> String {
    let source = match view.source {
        AutoscaleSource::Shipdeck => "shipdeck's autoscaler",
        AutoscaleSource::Cluster => "the cluster's HorizontalPodAutoscaler",
    };
    let last = view
        .last_scale_ms
        .and_then(time_of)
        .map(rfc3339)
        .unwrap_or_else(|| "never".to_owned());
    let mut out = format!(
        "{name}: {source}, {} to {} replicas; now {}, desired {}; last scaled {last}\n\n",
        view.min_replicas, view.max_replicas, view.current_replicas, view.desired_replicas
    );
    out.push_str(&targets_table(view).render());
    if !view.conditions.is_empty() {
        let mut table = Table::new(vec!["CONDITION", "STATUS", "REASON", "MESSAGE"]);
        for condition in &view.conditions {
            table.row(vec![
                condition.kind.clone(),
                if condition.status { "True" } else { "False" }.to_owned(),
                condition.reason.clone(),
                condition.message.clone(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    if !view.decisions.is_empty() {
        out.push('\n');
        out.push_str(&decisions_table(&view.decisions).render());
    }
    out
}

fn targets_table(view: &AutoscaleView) -> Table {
    let mut table = Table::new(vec![
        "TARGET", "CURRENT", "WANTED", "READY", "MISSING", "UNREADY", "ASKS", "PROBLEM",
    ]);
    for target in &view.targets {
        let reading = view
            .metrics
            .iter()
            .find(|reading| &reading.target == target);
        table.row(target_row(target, reading));
    }
    table
}

fn target_row(target: &Target, reading: Option<&MetricReading>) -> Vec<String> {
    let (label, wanted, percent) = match target {
        Target::CpuUtilization { percent } => ("cpu".to_owned(), format!("{percent}%"), true),
        Target::MemoryUtilization { percent } => ("memory".to_owned(), format!("{percent}%"), true),
        Target::AverageValue { metric, value } => (metric.clone(), format!("{value}"), false),
    };
    let current = reading
        .and_then(|reading| reading.current)
        .map(|value| {
            if percent {
                format!("{value:.0}%")
            } else {
                format!("{value:.2}")
            }
        })
        .unwrap_or_else(|| "-".to_owned());
    let count = |value: Option<u32>| value.map_or_else(|| "-".to_owned(), |n| n.to_string());
    vec![
        label,
        current,
        wanted,
        count(reading.map(|reading| reading.ready)),
        count(reading.map(|reading| reading.missing)),
        count(reading.map(|reading| reading.unready)),
        count(reading.and_then(|reading| reading.recommendation)),
        reading
            .and_then(|reading| reading.problem.clone())
            .unwrap_or_default(),
    ]
}

fn decisions_table(decisions: &[Decision]) -> Table {
    let mut table = Table::new(vec![
        "TIME", "FROM", "ASKED", "STABLE", "LIMIT", "TO", "REASON",
    ]);
    for decision in decisions {
        let limit = match &decision.limiting_rule {
            Some(rule) => format!("{:?} ({rule})", decision.limit),
            None => format!("{:?}", decision.limit),
        };
        table.row(vec![
            time_of(decision.at_ms)
                .map(rfc3339)
                .unwrap_or_else(|| decision.at_ms.to_string()),
            decision.current_replicas.to_string(),
            decision
                .recommendation
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
            decision.stabilized.to_string(),
            limit,
            decision.desired.to_string(),
            decision.reason.clone(),
        ]);
    }
    table
}

fn time_of(ms: u64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}
