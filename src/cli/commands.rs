//! One function per client subcommand.

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;

use super::output::{escape_controls, structured, Format, Table};
use super::{
    AgentAction, CliError, Command, DeployArgs, EventsArgs, FormatArgs, ListArgs, LogsArgs,
    MetricsArgs, RedeployArgs, RestartArgs, RollbackArgs, ScaleArgs, TargetArgs, UndeployArgs,
    WaitArgs,
};
use crate::agent;
use crate::api::client::{encode, Client};
use crate::api::wire::{
    ActionResult, AgentStatus, DeployBody, ListParams, ManifestBody, RedeployBody, RestartBody,
    RollbackBody, ScaleBody, UndeployBody, WatchItem,
};
use crate::home::Home;
use crate::logs::{format_time, keep_colours, sanitize_for_terminal, FollowItem, LogEntry};
use crate::manifest::ManifestDuration;
use crate::model::{DeploymentView, Event, HealthView, HistoryEntry, ReplicaView};

/// Runs a client subcommand and returns what to print on standard output.
pub async fn run(home: &Home, command: Command) -> Result<String, CliError> {
    match command {
        Command::Dashboard(args) => {
            let options = crate::tui::DashboardOptions {
                read_only: args.read_only,
                theme: args.theme,
            };
            crate::tui::run(home, options)
                .await
                .map_err(|error| CliError::Dashboard(Box::new(error)))?;
            Ok(String::new())
        }
        Command::Agent(args) => match args.action {
            Some(AgentAction::Status(format)) => agent_status(home, format).await,
            Some(AgentAction::Stop) => agent_stop(home).await,
            // `agent` and `agent --detach` are handled before a client starts.
            None => Err(CliError::Message(
                "internal: agent run reached the client".to_owned(),
            )),
        },
        Command::Deploy(args) => deploy(home, args).await,
        Command::Ls(args) => list(home, args).await,
        Command::Get(args) => get(home, args).await,
        Command::History(args) => history(home, args).await,
        Command::Redeploy(args) => redeploy(home, args).await,
        Command::Restart(args) => restart(home, args).await,
        Command::Rollback(args) => rollback(home, args).await,
        Command::Scale(args) => scale(home, args).await,
        Command::Autoscale(args) => super::autoscale::run(home, args).await,
        Command::Health(args) => health(home, args).await,
        Command::Undeploy(args) => undeploy(home, args).await,
        Command::Events(args) => events(home, args).await,
        Command::Logs(args) => logs(home, args).await,
        Command::Metrics(args) => metrics(home, args).await,
        Command::Secrets(args) => super::secrets::run(home, args.action).await,
        Command::Env(args) => super::config::run_env(home, args.action).await,
        Command::Template(args) => super::config::run_template(home, args.action).await,
        Command::Notify(args) => super::notify::run(home, args.action).await,
        Command::Alerts(args) => super::alerts::run(home, args.action).await,
        Command::Contexts(args) => super::kubernetes::contexts(args).await,
    }
}

pub(super) async fn client(home: &Home) -> Result<Client, CliError> {
    agent::connect_or_start(home).await
}

pub(super) fn render<T: Serialize>(
    value: &T,
    format: Format,
    table: impl FnOnce(&T) -> String,
) -> Result<String, CliError> {
    match format {
        Format::Table => Ok(table(value)),
        other => structured(value, other).map_err(|error| CliError::Message(error.to_string())),
    }
}

async fn agent_status(home: &Home, format: FormatArgs) -> Result<String, CliError> {
    let client = Client::new(&home.socket_path());
    match client.get::<AgentStatus>("/v1/agent").await {
        Ok(status) => render(&status, format.format, |s| {
            format!(
                "agent running: pid {}, version {}, home {}, up {} s, {} deployments, {} replicas\nlimits: {}\n",
                s.pid, s.version, s.home, s.uptime_seconds, s.deployments, s.replicas, s.limits
            )
        }),
        Err(error) if error.is_unreachable() => Err(CliError::Message(format!(
            "no agent is running for {}; start one with `shipdeck agent --detach`",
            home.root().display()
        ))),
        Err(error) => Err(error.into()),
    }
}

async fn agent_stop(home: &Home) -> Result<String, CliError> {
    if agent::stop(home).await? {
        Ok("agent stopped\n".to_owned())
    } else {
        Ok(format!(
            "no agent was running for {}\n",
            home.root().display()
        ))
    }
}

/// Checks `--timeout` even without `--wait`, so a typo is never ignored.
pub(super) fn timeout_ms(wait: &WaitArgs) -> Result<Option<u64>, CliError> {
    let duration = ManifestDuration::try_from(wait.timeout.clone()).map_err(|message| {
        CliError::Message(format!("invalid --timeout {:?}: {message}", wait.timeout))
    })?;
    let millis = u64::try_from(duration.as_std().as_millis()).unwrap_or(u64::MAX);
    Ok(wait.wait.then_some(millis))
}

/// Reads a manifest file (or standard input for `-`) for sending to the agent.
pub(super) fn read_manifest(path: &Path) -> Result<ManifestBody, CliError> {
    let (text, origin, base) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| {
                CliError::Message(format!(
                    "cannot read the manifest from standard input: {error}"
                ))
            })?;
        (text, "<stdin>".to_owned(), std::env::current_dir().ok())
    } else {
        let text = std::fs::read_to_string(path).map_err(|error| {
            CliError::Message(format!(
                "cannot read manifest {}: {error}; check the path given to -f",
                path.display()
            ))
        })?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let base = absolute.parent().map(Path::to_path_buf);
        (text, path.display().to_string(), base)
    };
    Ok(ManifestBody {
        text,
        origin,
        base_dir: base.map(|dir| dir.display().to_string()),
    })
}

pub(super) fn env_query(env: &Option<String>) -> String {
    env.as_ref()
        .map(|env| format!("?env={}", encode(env)))
        .unwrap_or_default()
}

pub(super) fn action_output(
    result: &ActionResult,
    format: Format,
    verb: &str,
) -> Result<String, CliError> {
    render(result, format, |r| {
        let d = &r.deployment;
        let revision = r
            .revision
            .map(|n| format!(" revision {n}"))
            .unwrap_or_default();
        let outcome = r
            .outcome
            .as_ref()
            .map(|o| format!(": {o}"))
            .unwrap_or_default();
        sanitize_for_terminal(&format!(
            "{} ({}) {verb}{revision}{outcome}\n",
            d.name, d.environment
        )) + "\n"
    })
    .map(|text| text.trim_end().to_owned() + "\n")
}

async fn deploy(home: &Home, args: DeployArgs) -> Result<String, CliError> {
    let body = DeployBody {
        manifest: read_manifest(&args.file)?,
        environment: args.env,
        set: args.set,
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    let client = client(home).await?;
    let result: ActionResult = client.post("/v1/deployments", &body).await?;
    let verb = if args.wait.wait {
        "deployed"
    } else {
        "deploying"
    };
    action_output(&result, args.format.format, verb)
}

async fn redeploy(home: &Home, args: RedeployArgs) -> Result<String, CliError> {
    let body = RedeployBody {
        environment: args.env,
        manifest: args.file.as_deref().map(read_manifest).transpose()?,
        set: args.set,
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    let client = client(home).await?;
    let path = format!("/v1/deployments/{}/redeploy", encode(&args.name));
    let result: ActionResult = client.post(&path, &body).await?;
    let verb = if args.wait.wait {
        "redeployed"
    } else {
        "redeploying"
    };
    action_output(&result, args.format.format, verb)
}

async fn restart(home: &Home, args: RestartArgs) -> Result<String, CliError> {
    let body = RestartBody {
        environment: args.env,
        replica: args.replica,
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    let client = client(home).await?;
    let path = format!("/v1/deployments/{}/restart", encode(&args.name));
    let result: ActionResult = client.post(&path, &body).await?;
    let verb = match (args.replica, args.wait.wait) {
        (Some(replica), true) => format!("restarted replica {replica}"),
        (Some(replica), false) => format!("restarting replica {replica}"),
        (None, true) => "restarted".to_owned(),
        (None, false) => "restarting".to_owned(),
    };
    action_output(&result, args.format.format, &verb)
}

async fn rollback(home: &Home, args: RollbackArgs) -> Result<String, CliError> {
    let body = RollbackBody {
        environment: args.env,
        to_revision: args.to_revision,
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    let client = client(home).await?;
    let path = format!("/v1/deployments/{}/rollback", encode(&args.name));
    let result: ActionResult = client.post(&path, &body).await?;
    let verb = if args.wait.wait {
        "rolled back"
    } else {
        "rolling back"
    };
    action_output(&result, args.format.format, verb)
}

async fn scale(home: &Home, args: ScaleArgs) -> Result<String, CliError> {
    if !(0..=i64::from(crate::engine::MAX_REPLICAS)).contains(&args.replicas) {
        return Err(CliError::Message(format!(
            "invalid --replicas {}: must be between 0 and {}",
            args.replicas,
            crate::engine::MAX_REPLICAS
        )));
    }
    let body = ScaleBody {
        environment: args.env,
        replicas: args.replicas,
        force: args.force,
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    let client = client(home).await?;
    let path = format!("/v1/deployments/{}/scale", encode(&args.name));
    let result: ActionResult = client.post(&path, &body).await?;
    let verb = format!("scaled to {}", args.replicas);
    action_output(&result, args.format.format, &verb)
}

async fn undeploy(home: &Home, args: UndeployArgs) -> Result<String, CliError> {
    let body = UndeployBody {
        environment: args.env,
        wait: args.wait.wait,
        timeout_ms: timeout_ms(&args.wait)?,
    };
    let client = client(home).await?;
    let path = format!("/v1/deployments/{}/undeploy", encode(&args.name));
    let result: ActionResult = client.post(&path, &body).await?;
    let verb = if args.wait.wait {
        "undeployed"
    } else {
        "undeploying"
    };
    action_output(&result, args.format.format, verb)
}

async fn list(home: &Home, args: ListArgs) -> Result<String, CliError> {
    let params = ListParams {
        env: args.env,
        status: args.status,
        name: args.name,
        tags: (!args.tags.is_empty()).then(|| args.tags.join(",")),
        sort: args.sort,
        desc: args.desc,
        limit: args.limit,
        offset: args.offset,
    };
    let query = serde_json::to_value(&params)
        .ok()
        .and_then(|value| value.as_object().cloned())
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
            format!("{key}={}", encode(&text))
        })
        .collect::<Vec<_>>()
        .join("&");
    let client = client(home).await?;
    let deployments: Vec<DeploymentView> = client.get(&format!("/v1/deployments?{query}")).await?;
    render(&deployments, args.format.format, |list| {
        deployment_table(list)
    })
}

fn deployment_table(list: &[DeploymentView]) -> String {
    let mut table = Table::new(vec![
        "NAME",
        "ENVIRONMENT",
        "STATUS",
        "HEALTH",
        "READY",
        "REVISION",
        "VERSION",
        "ENDPOINTS",
    ]);
    for d in list {
        table.row(vec![
            d.name.clone(),
            d.environment.clone(),
            d.status.to_string(),
            d.health.to_string(),
            format!("{}/{}", d.replicas.ready, d.replicas.desired),
            d.revision.to_string(),
            d.version.clone(),
            d.endpoints.join(","),
        ]);
    }
    table.render()
}

async fn get(home: &Home, args: TargetArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = format!(
        "/v1/deployments/{}{}",
        encode(&args.name),
        env_query(&args.env)
    );
    let deployment: DeploymentView = client.get(&path).await?;
    render(&deployment, args.format.format, describe)
}

/// The human form of `get`: the summary, then one line per replica.
fn describe(d: &DeploymentView) -> String {
    let mut out = deployment_table(std::slice::from_ref(d));
    if let Some(reason) = &d.status_reason {
        out.push_str(&format!("\nreason: {}\n", sanitize_for_terminal(reason)));
    }
    if let Some(reason) = &d.metrics_unavailable {
        out.push_str(&format!(
            "\nmetrics: no CPU or memory values: {}\n",
            sanitize_for_terminal(reason)
        ));
    }
    if !d.replica_details.is_empty() {
        out.push('\n');
        out.push_str(&replica_table(&d.replica_details));
    }
    out
}

/// Renders one line per replica. Containers add their id and HEALTHCHECK state.
fn replica_table(replicas: &[ReplicaView]) -> String {
    let containers = replicas.iter().any(|r| r.container.is_some());
    let mut header = vec![
        "REPLICA",
        "REVISION",
        "PID",
        "PORT",
        "STATE",
        "READY",
        "RESTARTS",
        "LAST EXIT",
    ];
    if containers {
        header.extend(["CONTAINER", "HEALTHCHECK"]);
    }
    let mut table = Table::new(header);
    let dash = || "-".to_owned();
    for r in replicas {
        let mut row = vec![
            r.index.to_string(),
            r.revision.to_string(),
            r.pid.map_or_else(dash, |p| p.to_string()),
            r.port.map_or_else(dash, |p| p.to_string()),
            r.state.to_string(),
            r.ready.to_string(),
            r.restarts.to_string(),
            r.last_exit.clone().unwrap_or_else(dash),
        ];
        if containers {
            row.push(r.container.as_deref().map_or_else(dash, short_id));
            row.push(r.container_health.map_or_else(dash, |h| h.to_string()));
        }
        table.row(row);
    }
    table.render()
}

/// Returns the first 12 characters of a container id, as `docker ps` shows it.
fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

async fn history(home: &Home, args: TargetArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = format!(
        "/v1/deployments/{}/history{}",
        encode(&args.name),
        env_query(&args.env)
    );
    let entries: Vec<HistoryEntry> = client.get(&path).await?;
    render(&entries, args.format.format, |entries| {
        let mut table = Table::new(vec!["REVISION", "VERSION", "STATUS", "CREATED", "REASON"]);
        for e in entries {
            table.row(vec![
                e.revision.to_string(),
                e.version.clone(),
                e.status.to_string(),
                rfc3339(e.created_at),
                e.reason.clone(),
            ]);
        }
        table.render()
    })
}

async fn health(home: &Home, args: TargetArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = format!(
        "/v1/deployments/{}/health{}",
        encode(&args.name),
        env_query(&args.env)
    );
    let health: HealthView = client.get(&path).await?;
    render(&health, args.format.format, |h| {
        let mut table = Table::new(vec!["CHECK", "STATUS", "MESSAGE"]);
        for check in &h.checks {
            table.row(vec![
                check.name.clone(),
                check.status.to_string(),
                check.message.clone(),
            ]);
        }
        let checked = h
            .last_checked
            .map(rfc3339)
            .unwrap_or_else(|| "never".into());
        format!(
            "health: {} (last checked {checked})\n\n{}",
            h.status,
            table.render()
        )
    })
}

async fn events(home: &Home, args: EventsArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let mut path = format!("/v1/events?limit={}", args.limit);
    if let Some(name) = &args.name {
        path.push_str(&format!("&deployment={}", encode(name)));
    }
    if let Some(env) = &args.env {
        path.push_str(&format!("&env={}", encode(env)));
    }
    // The stream opens before the recent events are read, so that none
    // falls between the two.
    let stream = if args.follow {
        Some(client.get_lines("/v1/watch").await?)
    } else {
        None
    };
    let events: Vec<Event> = client.get(&path).await?;
    let Some(stream) = stream else {
        return render(&events, args.format.format, events_table);
    };

    let last_seq = events.last().map_or(0, |event| event.seq);
    let recent = match args.format.format {
        Format::Table => events_table(&events),
        format => events
            .iter()
            .map(|event| event_line(event, format))
            .collect(),
    };
    if !print_now(&recent) {
        return Ok(String::new());
    }
    follow_events(stream, &events, last_seq, &args).await
}

fn events_table(events: &Vec<Event>) -> String {
    let mut table = Table::new(vec![
        "TIME",
        "DEPLOYMENT",
        "USER",
        "ACTION",
        "RESULT",
        "MESSAGE",
    ]);
    for event in events {
        table.row(event_cells(event));
    }
    table.render()
}

fn event_cells(event: &Event) -> Vec<String> {
    vec![
        rfc3339(event.time),
        event
            .deployment
            .as_ref()
            .map(|k| format!("{}/{}", k.environment, k.name))
            .unwrap_or_default(),
        event.user.clone(),
        event.action.clone(),
        format!("{:?}", event.outcome).to_lowercase(),
        event.message.clone(),
    ]
}

/// Formats one followed event: a table row without a header, a JSON line,
/// or a YAML document of its own.
fn event_line(event: &Event, format: Format) -> String {
    match format {
        Format::Table => {
            let cells: Vec<String> = event_cells(event)
                .iter()
                .map(|cell| sanitize_for_terminal(cell))
                .collect();
            format!("{}\n", cells.join("  "))
        }
        Format::Json => match serde_json::to_string(event) {
            Ok(line) => escape_controls(format!("{line}\n")),
            Err(_) => String::new(),
        },
        Format::Yaml => match structured(event, Format::Yaml) {
            Ok(text) => format!("---\n{text}"),
            Err(_) => String::new(),
        },
    }
}

/// Writes `text` to standard output now. Returns `false` when the reader is gone
/// (`| head`), which ends a follow quietly.
fn print_now(text: &str) -> bool {
    let mut stdout = std::io::stdout();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// Prints each new event of the stream that matches the arguments.
async fn follow_events(
    mut stream: crate::api::client::ResponseLines,
    recent: &[Event],
    last_seq: u64,
    args: &EventsArgs,
) -> Result<String, CliError> {
    // The deployment's environment, as the agent resolved it, when only a
    // name was given and the recent events name it.
    let environment = args.env.clone().or_else(|| {
        recent
            .iter()
            .find_map(|event| event.deployment.as_ref().map(|key| key.environment.clone()))
    });
    while let Some(line) = stream.next_line().await? {
        let Ok(WatchItem::Event { event }) = serde_json::from_slice::<WatchItem>(&line) else {
            continue;
        };
        if event.seq <= last_seq || !event_matches(&event, args, environment.as_deref()) {
            continue;
        }
        if !print_now(&event_line(&event, args.format.format)) {
            return Ok(String::new());
        }
    }
    eprintln!("shipdeck: the agent ended the event stream because it stopped; run the command again to follow on");
    Ok(String::new())
}

fn event_matches(event: &Event, args: &EventsArgs, environment: Option<&str>) -> bool {
    let Some(name) = &args.name else {
        return true;
    };
    event.deployment.as_ref().is_some_and(|key| {
        key.name == *name && environment.is_none_or(|env| key.environment == env)
    })
}

async fn metrics(home: &Home, args: MetricsArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    if args.list {
        let mut path = format!("/v1/deployments/{}/series", encode(&args.name));
        if let Some(env) = &args.env {
            path.push_str(&format!("?env={}", encode(env)));
        }
        let names: Vec<String> = client.get(&path).await?;
        return render(&names, args.format.format, |names| {
            let mut table = Table::new(vec!["SERIES"]);
            for name in names {
                table.row(vec![name.clone()]);
            }
            table.render()
        });
    }
    let mut path = format!(
        "/v1/deployments/{}/metrics?since={}",
        encode(&args.name),
        encode(&args.since)
    );
    if let Some(env) = &args.env {
        path.push_str(&format!("&env={}", encode(env)));
    }
    if let Some(step) = &args.step {
        path.push_str(&format!("&step={}", encode(step)));
    }
    if !args.metrics.is_empty() {
        path.push_str(&format!("&metric={}", encode(&args.metrics.join(","))));
    }
    let series: Vec<crate::model::SeriesView> = client.get(&path).await?;
    warn_metrics_unavailable(&client, &args).await?;
    render(&series, args.format.format, |series| {
        let mut table = Table::new(vec!["METRIC", "LAST", "MIN", "MAX", "TREND"]);
        for view in series {
            let min = view
                .points
                .iter()
                .filter_map(|point| point.min.or(point.value))
                .fold(f64::NAN, f64::min);
            let max = view
                .points
                .iter()
                .filter_map(|point| point.max.or(point.value))
                .fold(f64::NAN, f64::max);
            let last = view.points.iter().rev().find_map(|point| point.value);
            table.row(vec![
                view.name.clone(),
                last.map_or("-".to_owned(), |value| metric_value(&view.name, value)),
                metric_value(&view.name, min),
                metric_value(&view.name, max),
                sparkline(&view.points, min, max),
            ]);
        }
        table.render()
    })
}

/// Prints to stderr why the deployment's CPU and memory have no new values,
/// if they have none, so that empty series are not read as idle replicas.
/// stdout keeps only the series, for scripts.
async fn warn_metrics_unavailable(client: &Client, args: &MetricsArgs) -> Result<(), CliError> {
    let path = format!(
        "/v1/deployments/{}{}",
        encode(&args.name),
        env_query(&args.env)
    );
    let deployment: DeploymentView = client.get(&path).await?;
    if let Some(reason) = &deployment.metrics_unavailable {
        eprintln!(
            "shipdeck: {}: no CPU or memory values: {}",
            deployment.key(),
            sanitize_for_terminal(reason)
        );
    }
    Ok(())
}

/// Formats a value in the unit its series is in.
fn metric_value(series: &str, value: f64) -> String {
    if value.is_nan() {
        return "-".to_owned();
    }
    if series.ends_with("_percentage") {
        format!("{value:.1}%")
    } else if series == "memory_usage" {
        format!("{:.1} MiB", value / f64::from(1u32 << 20))
    } else if series == "cpu_usage" {
        format!("{value:.3} cores")
    } else if series.starts_with("network_bytes_") {
        format!("{:.1} KiB/s", value / 1024.0)
    } else if series.starts_with("response_time") {
        format!("{value:.2} ms")
    } else if series.ends_with("per_second") || series.ends_with(":rate") {
        format!("{value:.2}/s")
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

/// Draws the points as block characters from the lowest to the highest
/// value; a gap is a space.
fn sparkline(points: &[crate::model::PointView], min: f64, max: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    points
        .iter()
        .map(|point| match point.value {
            None => ' ',
            // A flat series, or one value, draws as the lowest bar.
            Some(_) if max.partial_cmp(&min) != Some(std::cmp::Ordering::Greater) => BARS[0],
            Some(value) => {
                let scaled = ((value - min) / (max - min) * 7.0).round();
                BARS[(scaled.clamp(0.0, 7.0)) as usize]
            }
        })
        .collect()
}

async fn logs(home: &Home, args: LogsArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = logs_path(&args);
    let colours = colours_enabled();

    if !args.follow {
        let entries: Vec<LogEntry> = client.get(&path).await?;
        return render(&entries, args.format.format, |entries| {
            entries
                .iter()
                .map(|entry| log_line(entry, colours))
                .collect()
        });
    }

    let mut lines = client.get_lines(&path).await?;
    let mut stdout = std::io::stdout();
    while let Some(line) = lines.next_line().await? {
        let text = match args.format.format {
            Format::Table => follow_line(&line, colours),
            Format::Json => escape_controls(format!("{}\n", String::from_utf8_lossy(&line))),
            Format::Yaml => follow_yaml(&line),
        };
        // A closed pipe (`| head`) ends the follow quietly.
        if stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return Ok(String::new());
        }
    }
    eprintln!("shipdeck: the agent ended the log stream because it stopped; run the command again to follow on");
    Ok(String::new())
}

fn logs_path(args: &LogsArgs) -> String {
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut add = |key, value: Option<String>| {
        if let Some(value) = value {
            params.push((key, value));
        }
    };
    add("env", args.env.clone());
    add("level", args.level.clone());
    add("search", args.search.clone().or_else(|| args.regex.clone()));
    add("regex", args.regex.as_ref().map(|_| "true".to_owned()));
    add("invert", args.invert.then(|| "true".to_owned()));
    add("context", args.context.map(|n| n.to_string()));
    add("since", args.since.clone());
    add("until", args.until.clone());
    add("replica", args.replica.clone());
    add("build", args.build.then(|| "true".to_owned()));
    add("revision", args.revision.map(|n| n.to_string()));
    add("tail", args.tail.map(|n| n.to_string()));
    add("limit", args.limit.map(|n| n.to_string()));
    add("offset", args.offset.map(|n| n.to_string()));
    add("after", args.after.map(|n| n.to_string()));
    add("before", args.before.map(|n| n.to_string()));
    add("follow", args.follow.then(|| "true".to_owned()));

    let query: Vec<String> = params
        .iter()
        .map(|(key, value)| format!("{key}={}", encode(value)))
        .collect();
    format!(
        "/v1/deployments/{}/logs?{}",
        encode(&args.name),
        query.join("&")
    )
}

/// Colours from applications are passed on only to a terminal, and not when
/// NO_COLOR is set (https://no-color.org).
fn colours_enabled() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Formats one entry as `kubectl logs --timestamps` prints a line, with the
/// source and level added. The message is made safe for the terminal.
fn log_line(entry: &LogEntry, colours: bool) -> String {
    let message = if colours {
        keep_colours(&entry.message)
    } else {
        sanitize_for_terminal(&entry.message)
    };
    format!(
        "{} {} {:<5} {}\n",
        format_time(entry.time),
        sanitize_for_terminal(&entry.source),
        entry.level.as_str().to_uppercase(),
        message
    )
}

/// Formats one followed item as a YAML document of its own.
fn follow_yaml(line: &[u8]) -> String {
    let item = serde_json::from_slice::<serde_json::Value>(line);
    match item.map(|item| structured(&item, Format::Yaml)) {
        Ok(Ok(text)) => format!("---\n{text}"),
        _ => format!(
            "# unreadable line from the agent: {}\n",
            sanitize_for_terminal(&String::from_utf8_lossy(line))
        ),
    }
}

fn follow_line(line: &[u8], colours: bool) -> String {
    match serde_json::from_slice::<FollowItem>(line) {
        Ok(FollowItem::Entry(entry)) => log_line(&entry, colours),
        Ok(FollowItem::Missed { missed }) => {
            format!("... {missed} lines missed: they arrived faster than this output was read\n")
        }
        Err(error) => format!("(unreadable line from the agent: {error})\n"),
    }
}

pub(super) fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}
