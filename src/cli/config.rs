//! `shipdeck env` and `shipdeck template`: environment configs and config
//! templates, kept by the agent.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::commands::{client, render, rfc3339};
use super::output::{structured, Format, Table};
use super::{
    CliError, EnvAction, EnvSetArgs, EnvShowArgs, EnvUnsetArgs, TemplateAction, TemplateFileArgs,
    TemplateRenderArgs, TemplateShowArgs,
};
use crate::api::client::encode;
use crate::api::wire::{EnvironmentChangeBody, TemplateBody, TemplateRenderBody};
use crate::home::Home;
use crate::logs::sanitize_for_terminal;
use crate::model::{EnvironmentView, RenderedTemplate, TemplateView};

pub async fn run_env(home: &Home, action: EnvAction) -> Result<String, CliError> {
    match action {
        EnvAction::Ls(format) => env_list(home, format.format).await,
        EnvAction::Show(args) => env_show(home, args).await,
        EnvAction::Set(args) => env_set(home, args).await,
        EnvAction::Unset(args) => env_unset(home, args).await,
        EnvAction::Rm(args) => {
            client(home).await?.delete(&env_path(&args.name)).await?;
            Ok(format!("environment {} removed\n", args.name))
        }
    }
}

pub async fn run_template(home: &Home, action: TemplateAction) -> Result<String, CliError> {
    match action {
        TemplateAction::Ls(format) => template_list(home, format.format).await,
        TemplateAction::Show(args) => template_show(home, args).await,
        TemplateAction::Create(args) => template_write(home, args, true).await,
        TemplateAction::Update(args) => template_write(home, args, false).await,
        TemplateAction::Rm(args) => {
            client(home)
                .await?
                .delete(&template_path(&args.name))
                .await?;
            Ok(format!("template {} removed\n", args.name))
        }
        TemplateAction::Render(args) => template_render(home, args).await,
    }
}

fn env_path(name: &str) -> String {
    format!("/v1/environments/{}", encode(name))
}

fn template_path(name: &str) -> String {
    format!("/v1/templates/{}", encode(name))
}

fn deployments_cell(deployments: &[String]) -> String {
    if deployments.is_empty() {
        "-".to_owned()
    } else {
        deployments.join(",")
    }
}

async fn env_list(home: &Home, format: Format) -> Result<String, CliError> {
    let environments: Vec<EnvironmentView> = client(home).await?.get("/v1/environments").await?;
    render(&environments, format, |environments| {
        let mut table = Table::new(vec!["NAME", "KEYS", "DEPLOYMENTS", "UPDATED"]);
        for view in environments {
            let environment = &view.environment;
            table.row(vec![
                environment.name.clone(),
                environment.config.len().to_string(),
                deployments_cell(&view.deployments),
                rfc3339(environment.updated_at),
            ]);
        }
        table.render()
    })
}

async fn env_show(home: &Home, args: EnvShowArgs) -> Result<String, CliError> {
    let view: EnvironmentView = client(home).await?.get(&env_path(&args.name)).await?;
    render(&view, args.format.format, |view| {
        let mut table = Table::new(vec!["KEY", "VALUE"]);
        for (key, value) in &view.environment.config {
            table.row(vec![key.clone(), value.clone()]);
        }
        let mut out = table.render();
        out.push_str(&format!(
            "\ndeployments: {}\n",
            sanitize_for_terminal(&deployments_cell(&view.deployments))
        ));
        out
    })
}

/// Splits `KEY=VALUE` arguments; the agent checks the keys and values.
fn parse_pairs(pairs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut set = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::Message(format!(
                "invalid argument {pair:?}: expected KEY=VALUE, such as LOG_LEVEL=info"
            )));
        };
        set.insert(key.to_owned(), value.to_owned());
    }
    Ok(set)
}

async fn env_set(home: &Home, args: EnvSetArgs) -> Result<String, CliError> {
    let body = EnvironmentChangeBody {
        set: parse_pairs(&args.pairs)?,
        unset: Vec::new(),
    };
    let keys: Vec<String> = body.set.keys().cloned().collect();
    let _: EnvironmentView = client(home)
        .await?
        .patch(&env_path(&args.name), &body)
        .await?;
    Ok(format!(
        "environment {}: set {}\n",
        args.name,
        keys.join(", ")
    ))
}

async fn env_unset(home: &Home, args: EnvUnsetArgs) -> Result<String, CliError> {
    let body = EnvironmentChangeBody {
        set: BTreeMap::new(),
        unset: args.keys.clone(),
    };
    let _: EnvironmentView = client(home)
        .await?
        .patch(&env_path(&args.name), &body)
        .await?;
    Ok(format!(
        "environment {}: removed {}\n",
        args.name,
        args.keys.join(", ")
    ))
}

async fn template_list(home: &Home, format: Format) -> Result<String, CliError> {
    let templates: Vec<TemplateView> = client(home).await?.get("/v1/templates").await?;
    render(&templates, format, |templates| {
        let mut table = Table::new(vec!["NAME", "PARENT", "UPDATED", "DESCRIPTION"]);
        for template in templates {
            table.row(vec![
                template.name.clone(),
                template.parent.clone().unwrap_or_else(|| "-".to_owned()),
                rfc3339(template.updated_at),
                template.description.clone().unwrap_or_default(),
            ]);
        }
        table.render()
    })
}

async fn template_show(home: &Home, args: TemplateShowArgs) -> Result<String, CliError> {
    let template: TemplateView = client(home).await?.get(&template_path(&args.name)).await?;
    render(&template, args.format.format, |template| {
        sanitize_lines(&template.source)
    })
}

fn read_template(path: &Path) -> Result<String, CliError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| {
                CliError::Message(format!(
                    "cannot read the template from standard input: {error}"
                ))
            })?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|error| {
        CliError::Message(format!(
            "cannot read template file {}: {error}; check the path given to -f",
            path.display()
        ))
    })
}

async fn template_write(
    home: &Home,
    args: TemplateFileArgs,
    create: bool,
) -> Result<String, CliError> {
    let body = TemplateBody {
        source: read_template(&args.file)?,
    };
    let client = client(home).await?;
    let path = template_path(&args.name);
    let template: TemplateView = if create {
        client.put_if_absent(&path, &body).await?
    } else {
        client.put_if_present(&path, &body).await?
    };
    let verb = if create { "created" } else { "updated" };
    Ok(format!("template {} {verb}\n", template.name))
}

async fn template_render(home: &Home, args: TemplateRenderArgs) -> Result<String, CliError> {
    let body = TemplateRenderBody {
        environment: args.env,
        set: args.set,
    };
    let path = format!("{}/render", template_path(&args.name));
    let rendered: RenderedTemplate = client(home).await?.post(&path, &body).await?;
    render(&rendered, args.format.format, rendered_text)
}

/// Prints a rendered template as YAML under a comment that says what it is
/// and which secrets are missing.
fn rendered_text(rendered: &RenderedTemplate) -> String {
    let mut out = format!(
        "# template {} for environment {}; secret values are shown as ****\n",
        rendered.template, rendered.environment
    );
    if !rendered.missing_secrets.is_empty() {
        out.push_str(&format!(
            "# missing secrets: {}; create each with `shipdeck secrets set NAME`\n",
            rendered.missing_secrets.join(", ")
        ));
    }
    let mut body = serde_json::to_value(rendered).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        for key in ["template", "environment", "secrets", "missingSecrets"] {
            fields.remove(key);
        }
    }
    out.push_str(&structured(&body, Format::Yaml).unwrap_or_default());
    sanitize_lines(&out)
}

/// Sanitises each line of a multi-line text for the terminal, keeping the
/// line breaks that `sanitize_for_terminal` would remove.
fn sanitize_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(&sanitize_for_terminal(line));
        out.push('\n');
    }
    out
}
