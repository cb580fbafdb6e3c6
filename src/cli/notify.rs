//! `shipdeck notify`: the channels that alert and deployment notifications go to.

use serde_json::json;

use super::commands::{client, render, rfc3339};
use super::output::Table;
use super::{CliError, NotifyAction, NotifyAddArgs, NotifyHistoryArgs};
use crate::api::client::encode;
use crate::home::Home;
use crate::model::{Notification, NotifyChannel, NotifyTarget};

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
            let body = add_body(args);
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

fn add_body(args: NotifyAddArgs) -> serde_json::Value {
    match (args.webhook, args.command) {
        (Some(url), _) => json!({ "name": args.name, "webhook": url }),
        (None, Some(command)) => json!({ "name": args.name, "command": command }),
        (None, None) => json!({ "name": args.name, "inApp": true }),
    }
}

fn describe(target: &NotifyTarget) -> (&'static str, String) {
    match target {
        NotifyTarget::Webhook { url } => ("webhook", url.clone()),
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
