//! `shipdeck notify`: the channels that alert and deployment notifications go to.

use std::path::Path;

use serde_json::json;

use super::commands::{client, render, rfc3339};
use super::output::Table;
use super::{CliError, NotifyAction, NotifyAddArgs, NotifyHistoryArgs};
use crate::api::client::encode;
use crate::home::Home;
use crate::model::{Notification, NotifyChannel, NotifyTarget};
use crate::notify::parse_ca_pem;

pub async fn run(home: &Home, action: NotifyAction) -> Result<String, CliError> {
    let client = client(home).await?;
    match action {
        NotifyAction::Ls(format) => {
            let channels: Vec<NotifyChannel> = client.get("/v1/notify").await?;
            render(&channels, format.format, |channels| {
                let mut table = Table::new(vec!["NAME", "KIND", "TARGET", "CREATED"]);
                for channel in channels {
                    let (kind, target) = describe(&channel.target);
                    table.row(vec![
                        channel.name.clone(),
                        kind.to_owned(),
                        target,
                        rfc3339(channel.created_at),
                    ]);
                }
                table.render()
            })
        }
        NotifyAction::Add(args) => {
            let body = add_body(args)?;
            let channel: NotifyChannel = client.post("/v1/notify", &body).await?;
            Ok(format!("channel {} added\n", channel.name))
        }
        NotifyAction::Rm(args) => {
            client
                .delete(&format!("/v1/notify/{}", encode(&args.name)))
                .await?;
            Ok(format!("channel {} removed\n", args.name))
        }
        NotifyAction::Test(args) => {
            client
                .post_empty(&format!("/v1/notify/{}/test", encode(&args.name)))
                .await?;
            Ok(format!("test notification delivered to {}\n", args.name))
        }
        NotifyAction::History(args) => history(&client, args).await,
    }
}

fn add_body(args: NotifyAddArgs) -> Result<serde_json::Value, CliError> {
    Ok(match (args.webhook, args.command) {
        (Some(url), _) => match args.ca_file {
            None => json!({ "name": args.name, "webhook": url }),
            Some(path) => {
                let pem = read_ca_file(&path)?;
                json!({
                    "name": args.name,
                    "webhook": url,
                    "caPem": pem,
                    "caFile": std::path::absolute(&path).unwrap_or(path).display().to_string(),
                })
            }
        },
        (None, Some(command)) => json!({ "name": args.name, "command": command }),
        (None, None) => json!({ "name": args.name, "inApp": true }),
    })
}

/// Reads and checks a CA file on the client, where its path is meaningful.
/// The agent stores the PEM text, so the file may move or go afterwards.
fn read_ca_file(path: &Path) -> Result<String, CliError> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|error| {
        CliError::Message(format!(
            "reading the CA file {shown} failed: {error}; give the path of a PEM file with the CA certificate"
        ))
    })?;
    parse_ca_pem(&bytes).map_err(|error| {
        CliError::Message(format!("the CA file {shown} is not usable: {error}"))
    })?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::Message(format!(
            "the CA file {shown} has bytes that are not text around its certificates; keep only the PEM blocks"
        ))
    })
}

fn describe(target: &NotifyTarget) -> (&'static str, String) {
    match target {
        NotifyTarget::Webhook {
            url,
            ca_pem,
            ca_file,
        } => {
            let target = match (ca_file, ca_pem) {
                (Some(file), _) => format!("{url} (CA {file})"),
                (None, Some(_)) => format!("{url} (private CA)"),
                (None, None) => url.clone(),
            };
            ("webhook", target)
        }
        NotifyTarget::Command { command } => ("command", command.join(" ")),
        NotifyTarget::InApp => ("in-app", String::new()),
    }
}

async fn history(
    client: &crate::api::client::Client,
    args: NotifyHistoryArgs,
) -> Result<String, CliError> {
    let notifications: Vec<Notification> = client
        .get(&format!("/v1/notifications?limit={}", args.limit))
        .await?;
    render(&notifications, args.format.format, |notifications| {
        let mut table = Table::new(vec!["TIME", "TYPE", "SEVERITY", "TITLE"]);
        for notification in notifications {
            table.row(vec![
                rfc3339(notification.time),
                notification.kind.clone(),
                notification.severity.clone(),
                notification.title.clone(),
            ]);
        }
        table.render()
    })
}
