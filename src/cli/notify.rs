//! `shipdeck notify`: the channels that alert and deployment notifications go to.

use std::path::Path;

use serde_json::json;

use super::commands::{client, render, rfc3339};
use super::output::Table;
use super::{CliError, NotifyAction, NotifyAddArgs, NotifyHistoryArgs};
use crate::api::client::encode;
use crate::home::Home;
use crate::model::{ChannelRemoval, Notification, NotifyChannel, NotifyTarget};
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
            let path = format!("/v1/notify/{}", encode(&args.name));
            let create_only = !args.replace;
            let body = add_body(args)?;
            let (channel, created): (NotifyChannel, bool) =
                client.put_created(&path, &body, create_only).await?;
            let verb = if created { "added" } else { "replaced" };
            Ok(format!("channel {} {verb}\n", channel.name))
        }
        NotifyAction::Rm(args) => {
            let mut path = format!("/v1/notify/{}", encode(&args.name));
            if args.force {
                path.push_str("?force=true");
            }
            let removal: ChannelRemoval = client.delete_json(&path).await?;
            let mut out = format!("channel {} removed\n", args.name);
            if !removal.still_named_by.is_empty() {
                out.push_str(&format!(
                    "warning: {} still names it, so notifications to it are recorded as notify-failed until you remove it there or add the channel again\n",
                    removal.still_named_by.join(", ")
                ));
            }
            Ok(out)
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
            None => json!({ "webhook": url }),
            Some(path) => {
                let pem = read_ca_file(&path)?;
                json!({
                    "webhook": url,
                    "caPem": pem,
                    "caFile": std::path::absolute(&path).unwrap_or(path).display().to_string(),
                })
            }
        },
        (None, Some(command)) => {
            json!({ "command": command_words(command)? })
        }
        (None, None) => json!({ "inApp": true }),
    })
}

/// Drops the `--` that may separate `--command` from PROGRAM or PROGRAM
/// from its arguments. clap hands it over as a value, because the option
/// takes every word after it (it allows values that start with `-`). Only
/// the first `--` in those two places is dropped, so a later one reaches
/// the program.
fn command_words(mut words: Vec<String>) -> Result<Vec<String>, CliError> {
    let separator = words.iter().take(2).position(|word| word == "--");
    if let Some(index) = separator {
        words.remove(index);
    }
    if words.is_empty() {
        return Err(CliError::Message(
            "--command needs a program: write --command PROGRAM [ARG]...".to_owned(),
        ));
    }
    Ok(words)
}

/// Formats a command as a shell would read it back, so that the boundaries
/// of arguments with spaces or quotes stay visible.
fn quote_command(command: &[String]) -> String {
    shlex::try_join(command.iter().map(String::as_str))
        // Only a NUL byte cannot be quoted, and no program could get one.
        .unwrap_or_else(|_| command.join(" "))
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

/// Characters of a notification's message shown in the history table; the
/// whole message is in `-o json`.
const MESSAGE_CHARS: usize = 60;

/// Puts a message on one line, without control characters, and shortens
/// it to [`MESSAGE_CHARS`] with a trailing "…".
fn table_message(message: &str) -> String {
    let one_line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = crate::logs::sanitize_for_terminal(&one_line);
    match clean.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &clean[..cut]),
        None => clean,
    }
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
        NotifyTarget::Command { command } => ("command", quote_command(command)),
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
        let mut table = Table::new(vec!["TIME", "TYPE", "SEVERITY", "TITLE", "MESSAGE"]);
        for notification in notifications {
            table.row(vec![
                rfc3339(notification.time),
                notification.kind.clone(),
                notification.severity.clone(),
                notification.title.clone(),
                table_message(&notification.message),
            ]);
        }
        table.render()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|word| (*word).to_owned()).collect()
    }

    #[test]
    fn command_separator_is_dropped_once() {
        let expected = words(&["/bin/sh", "-c", "cat", "arg0"]);
        for given in [
            words(&["/bin/sh", "-c", "cat", "arg0"]),
            words(&["--", "/bin/sh", "-c", "cat", "arg0"]),
            words(&["/bin/sh", "--", "-c", "cat", "arg0"]),
        ] {
            assert_eq!(command_words(given).expect("a command"), expected);
        }
        assert_eq!(
            command_words(words(&["--", "prog", "--", "x"])).expect("a command"),
            words(&["prog", "--", "x"])
        );
        assert!(command_words(words(&["--"])).is_err());
    }

    #[test]
    fn history_messages_fit_one_short_line() {
        assert_eq!(
            table_message("revision 3\nfailed:\t\x1b[31mboom"),
            "revision 3 failed: boom"
        );
        let long = "x".repeat(100);
        assert_eq!(table_message(&long).chars().count(), MESSAGE_CHARS + 1);
    }

    #[test]
    fn listed_commands_keep_argument_boundaries() {
        let listed = quote_command(&words(&[
            "/bin/sh",
            "-c",
            "cat > /tmp/x; echo \"$0\"",
            "a b",
        ]));
        assert_eq!(listed, r#"/bin/sh -c 'cat > /tmp/x; echo "$0"' 'a b'"#);
    }
}
