//! `shipdeck alerts`: listing alerts, silencing and acknowledging them, and
//! managing the alert rules added beside the manifest's.

use serde_json::json;

use super::commands::{client, render, rfc3339};
use super::output::Table;
use super::{
    AckArgs, AlertsAction, AlertsAddArgs, AlertsListArgs, AlertsRuleArgs, AlertsRulesArgs,
    CliError, SilenceArgs, UnsilenceArgs,
};
use crate::api::client::encode;
use crate::home::Home;
use crate::model::AlertRuleView;
use crate::monitor::alerts::{
    AlertState, AlertView, Condition, Silence, SilenceTarget, SilenceView,
};

pub async fn run(home: &Home, action: AlertsAction) -> Result<String, CliError> {
    match action {
        AlertsAction::Ls(args) => list(home, args).await,
        AlertsAction::Silence(args) => silence(home, args).await,
        AlertsAction::Ack(args) => acknowledge(home, args).await,
        AlertsAction::Add(args) => add_rule(home, args).await,
        AlertsAction::Rm(args) => remove_rule(home, args).await,
        AlertsAction::Rules(args) => list_rules(home, args).await,
        AlertsAction::Silences(args) => list_silences(home, args).await,
        AlertsAction::Unsilence(args) => unsilence(home, args).await,
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
            let note = match alert.silenced_until {
                Some(until) => format!("silenced until {} {note}", rfc3339(until))
                    .trim()
                    .to_owned(),
                None if alert.silenced => format!("silenced {note}").trim().to_owned(),
                None => note,
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
        "until": args.until,
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

async fn list_silences(home: &Home, args: AlertsListArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let mut path = "/v1/silences?".to_owned();
    if let Some(name) = &args.name {
        path.push_str(&format!("deployment={}&", encode(name)));
    }
    if let Some(env) = &args.env {
        path.push_str(&format!("env={}", encode(env)));
    }
    let silences: Vec<SilenceView> = client.get(&path).await?;
    render(&silences, args.format.format, |silences| {
        let mut table = Table::new(vec![
            "DEPLOYMENT",
            "ENVIRONMENT",
            "ID",
            "RULE",
            "UNTIL",
            "AUTHOR",
            "COMMENT",
        ]);
        for view in silences {
            let rule = match &view.silence.target {
                SilenceTarget::Rule(rule) => rule.clone(),
                SilenceTarget::Deployment => "(every rule)".to_owned(),
            };
            table.row(vec![
                view.deployment.clone(),
                view.environment.clone(),
                view.silence.id.clone(),
                rule,
                rfc3339(view.silence.until),
                view.silence.author.clone(),
                view.silence.comment.clone(),
            ]);
        }
        table.render()
    })
}

async fn unsilence(home: &Home, args: UnsilenceArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let mut path = format!(
        "/v1/deployments/{}/silences/{}",
        encode(&args.name),
        encode(&args.id)
    );
    if let Some(env) = &args.env {
        path.push_str(&format!("?env={}", encode(env)));
    }
    client.delete(&path).await?;
    Ok(format!("silence {} ended\n", args.id))
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

fn rules_path(name: &str, rule: &str, env: Option<&str>) -> String {
    let mut path = format!(
        "/v1/deployments/{}/alert-rules/{}",
        encode(name),
        encode(rule)
    );
    if let Some(env) = env {
        path.push_str(&format!("?env={}", encode(env)));
    }
    path
}

/// Reads `--threshold`, rejecting text that is not a finite number before
/// anything is sent.
fn parse_threshold(text: &str) -> Result<f64, CliError> {
    let invalid = |what: &str| {
        CliError::Message(format!(
            "invalid --threshold {text:?}: {what}; write a number such as 80 or 0.5"
        ))
    };
    let value: f64 = text.trim().parse().map_err(|_| invalid("not a number"))?;
    if !value.is_finite() {
        return Err(invalid("not a finite number"));
    }
    Ok(value)
}

/// Reads `--condition`, naming the keyword for a comparison sign.
fn check_condition(text: &str) -> Result<(), CliError> {
    const KEYWORDS: [(&str, &str); 6] = [
        ("gt", ">"),
        ("gte", ">="),
        ("lt", "<"),
        ("lte", "<="),
        ("eq", "=="),
        ("ne", "!="),
    ];
    if KEYWORDS.iter().any(|(keyword, _)| *keyword == text) {
        return Ok(());
    }
    let hint = KEYWORDS
        .iter()
        .find(|(_, sign)| *sign == text.trim() || (text.trim() == "=" && *sign == "=="))
        .map(|(keyword, sign)| format!(" (for {sign}, write {keyword})"))
        .unwrap_or_default();
    Err(CliError::Message(format!(
        "invalid --condition {text:?}: use gt, gte, lt, lte, eq or ne{hint}"
    )))
}

async fn add_rule(home: &Home, args: AlertsAddArgs) -> Result<String, CliError> {
    if args.rule.trim().is_empty() {
        return Err(CliError::Message(
            "the rule name is empty; name the rule, such as high-cpu".to_owned(),
        ));
    }
    check_condition(&args.condition)?;
    let threshold = parse_threshold(&args.threshold)?;
    let mut body = json!({
        "metric": args.metric,
        "condition": args.condition,
        "threshold": threshold,
    });
    let optional = [
        ("for", args.for_duration.map(serde_json::Value::from)),
        ("repeatInterval", args.repeat_interval.map(Into::into)),
        ("severity", args.severity.map(Into::into)),
        (
            "notifications",
            (!args.notify.is_empty()).then(|| args.notify.clone().into()),
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            body[key] = value;
        }
    }

    let client = client(home).await?;
    let path = rules_path(&args.name, &args.rule, args.env.as_deref());
    let _: AlertRuleView = if args.replace {
        client.put(&path, &body).await?
    } else {
        client.put_if_absent(&path, &body).await?
    };
    let verb = if args.replace { "saved" } else { "added" };
    Ok(format!("rule {} {verb} on {}\n", args.rule, args.name))
}

async fn remove_rule(home: &Home, args: AlertsRuleArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let path = rules_path(&args.name, &args.rule, args.env.as_deref());
    client.delete(&path).await?;
    Ok(format!("rule {} removed from {}\n", args.rule, args.name))
}

async fn list_rules(home: &Home, args: AlertsRulesArgs) -> Result<String, CliError> {
    let client = client(home).await?;
    let mut path = format!("/v1/deployments/{}/alert-rules", encode(&args.name));
    if let Some(env) = &args.env {
        path.push_str(&format!("?env={}", encode(env)));
    }
    let rules: Vec<AlertRuleView> = client.get(&path).await?;
    render(&rules, args.format.format, |rules| {
        let mut table = Table::new(vec![
            "RULE",
            "SOURCE",
            "CONDITION",
            "FOR",
            "REPEAT",
            "SEVERITY",
            "NOTIFY",
        ]);
        for view in rules {
            let rule = &view.rule;
            let mut source = view.source.as_str().to_owned();
            if !view.active {
                source.push_str(" (replaced by the manifest's rule)");
            }
            let condition = Condition::from(rule.condition);
            let text = |value: Option<String>| value.unwrap_or_else(|| "-".to_owned());
            table.row(vec![
                rule.name.clone(),
                source,
                format!("{} {condition} {}", rule.metric, rule.threshold),
                text(rule.for_duration.map(|duration| duration.to_string())),
                text(rule.repeat_interval.map(|duration| duration.to_string())),
                rule.severity.clone().unwrap_or_else(|| "medium".to_owned()),
                text((!rule.notifications.is_empty()).then(|| rule.notifications.join(","))),
            ]);
        }
        table.render()
    })
}
