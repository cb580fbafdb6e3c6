//! `shipdeck alerts`: listing alerts, silencing and acknowledging them.

use serde_json::json;

use super::commands::{client, render, rfc3339};
use super::output::Table;
use super::{AckArgs, AlertsAction, AlertsListArgs, CliError, SilenceArgs};
use crate::api::client::encode;
use crate::home::Home;
use crate::monitor::alerts::{AlertState, AlertView, Silence};

pub async fn run(home: &Home, action: AlertsAction) -> Result<String, CliError> {
    match action {
        AlertsAction::Ls(args) => list(home, args).await,
        AlertsAction::Silence(args) => silence(home, args).await,
        AlertsAction::Ack(args) => acknowledge(home, args).await,
    }
}

async fn list(home: &Home, args: AlertsListArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let mut path = "/v1/alerts?".to_owned();
    if let Some(name) = &args.name {
        path.push_str(&format!("deployment={}&", encode(name)));
    }
    if let Some(env) = &args.env {
        path.push_str(&format!("env={}", encode(env)));
    }
    let alerts: Vec<AlertView> = client.get(&path).await?;
    render(&alerts, args.format.format, |alerts| {
        let mut table = Table::new(vec![
            "DEPLOYMENT",
            "ENVIRONMENT",
            "RULE",
            "STATE",
            "SINCE",
            "NOTE",
        ]);
        for alert in alerts {
            let (since, note) = describe(&alert.state);
            let note = if alert.silenced {
                format!("silenced {note}").trim().to_owned()
            } else {
                note
            };
            table.row(vec![
                alert.deployment.clone(),
                alert.environment.clone(),
                alert.rule.clone(),
                alert.state.name().to_owned(),
                since,
                note,
            ]);
        }
        table.render()
    })
}

fn describe(state: &AlertState) -> (String, String) {
    match state {
        AlertState::Inactive => ("-".to_owned(), String::new()),
        AlertState::Pending { since, .. } => (rfc3339(*since), String::new()),
        AlertState::Firing {
            since,
            acknowledged,
            ..
        } => (
            rfc3339(*since),
            acknowledged
                .as_ref()
                .map(|ack| format!("acknowledged by {}", ack.author))
                .unwrap_or_default(),
        ),
        AlertState::Resolved { at, .. } => (rfc3339(*at), String::new()),
    }
}

async fn silence(home: &Home, args: SilenceArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let body = json!({
        "environment": args.env,
        "rule": args.rule,
        "for": args.duration,
        "comment": args.comment,
    });
    let silence: Silence = client
        .post(
            &format!("/v1/deployments/{}/silences", encode(&args.name)),
            &body,
        )
        .await?;
    Ok(format!("silenced until {}\n", rfc3339(silence.until)))
}

async fn acknowledge(home: &Home, args: AckArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = format!(
        "/v1/deployments/{}/alerts/{}/ack",
        encode(&args.name),
        encode(&args.rule)
    );
    client
        .post_unit(&path, &json!({ "environment": args.env }))
        .await?;
    Ok(format!("{} of {} acknowledged\n", args.rule, args.name))
}
