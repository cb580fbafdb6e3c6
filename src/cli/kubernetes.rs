//! `shipdeck contexts`: the kubeconfig's contexts and whether each cluster
//! responds.
//!
//! It reads the kubeconfig of the shell that runs it, not the agent's. An
//! agent started by the CLI inherits that shell's environment, so both see
//! the same files unless the agent was started elsewhere.

use std::time::Duration;

use super::commands::render;
use super::output::Table;
use super::{CliError, ContextsArgs};
use crate::backend::kubernetes::{list_contexts, ContextStatus, KubeEnvironment};
use crate::manifest::ManifestDuration;

pub async fn contexts(args: ContextsArgs) -> Result<String, CliError> {
    let timeout = ManifestDuration::try_from(args.timeout.clone())
        .map_err(|message| {
            CliError::Message(format!("invalid --timeout {:?}: {message}", args.timeout))
        })?
        .as_std();
    if timeout.is_zero() {
        return Err(CliError::Message(
            "invalid --timeout 0: give a time above zero, such as 3s".to_owned(),
        ));
    }
    let environment = KubeEnvironment::from_process();
    let statuses = list_contexts(&environment, timeout.min(Duration::from_secs(600)))
        .await
        .map_err(Box::new)?;
    render(&statuses, args.format.format, |statuses| table(statuses))
}

fn table(statuses: &[ContextStatus]) -> String {
    let mut table = Table::new(vec!["CURRENT", "NAME", "SERVER", "NAMESPACE", "RESPONDS"]);
    for status in statuses {
        let responds = match (&status.version, &status.error) {
            (Some(version), _) => format!("yes ({version})"),
            (None, Some(error)) => format!("no: {error}"),
            (None, None) => "no".to_owned(),
        };
        table.row(vec![
            if status.current {
                "*".to_owned()
            } else {
                String::new()
            },
            status.name.clone(),
            status.server.clone(),
            status.namespace.clone(),
            responds,
        ]);
    }
    table.render()
}
