//! The `shipdeck` command line: argument definitions and one function per
//! subcommand. Every command except `agent` is a client of the agent.
//! Without a subcommand, `shipdeck` opens the dashboard.

mod alerts;
mod autoscale;
mod commands;
mod config;
mod kubernetes;
mod notify;
pub mod output;
mod secrets;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use commands::run;
use output::Format;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Kubernetes(#[from] Box<crate::backend::kubernetes::KubeError>),
    #[error(transparent)]
    Client(#[from] crate::api::client::ClientError),
    #[error(transparent)]
    Agent(#[from] crate::agent::AgentError),
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// Boxed because the dashboard's error contains this one.
    #[error(transparent)]
    Dashboard(Box<crate::tui::DashboardError>),
    #[error("{0}")]
    Message(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "shipdeck",
    version,
    about = "Deploy applications, keep them running, and watch them",
    long_about = None,
)]
pub struct Cli {
    /// Directory of the agent's state, socket and logs [default: $XDG_DATA_HOME/shipdeck]
    #[arg(long, global = true, env = "SHIPDECK_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(flatten)]
    pub dashboard: DashboardArgs,

    /// Without a command, the dashboard opens
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DashboardArgs {
    /// Hide and reject every dashboard action that changes a deployment
    #[arg(long)]
    pub read_only: bool,

    /// Dashboard colour theme: dark, light, high-contrast, or one in the config directory's themes/
    #[arg(long, env = "SHIPDECK_THEME", value_name = "NAME")]
    pub theme: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the terminal dashboard (the same as no command)
    Dashboard(DashboardArgs),
    /// Run the agent in the foreground, or manage the running one
    Agent(AgentArgs),
    /// Deploy a manifest: create a deployment or roll out a new revision
    Deploy(DeployArgs),
    /// List deployments
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Show one deployment
    Get(TargetArgs),
    /// Show the revisions of a deployment, newest first
    History(TargetArgs),
    /// Roll out a new revision from a changed manifest, or restart the current one
    Redeploy(RedeployArgs),
    /// Restart every replica in a rolling way (as a new revision of the same spec), or one replica
    Restart(RestartArgs),
    /// Roll back to the previous healthy revision, or to a given one, as a new revision
    Rollback(RollbackArgs),
    /// Change the number of replicas
    Scale(ScaleArgs),
    /// Scale between a minimum and a maximum to hold CPU, memory or a metric at a target; `off` and `status`
    Autoscale(AutoscaleArgs),
    /// Show the health checks of every replica, with the containers' own HEALTHCHECK
    #[command(alias = "status")]
    Health(TargetArgs),
    /// Stop every replica and mark the deployment undeployed; its history stays
    Undeploy(UndeployArgs),
    /// Show the audit events, of one deployment or of all
    Events(EventsArgs),
    /// Show, search and follow a deployment's output, or its build output
    Logs(LogsArgs),
    /// Show a deployment's metrics over a window: CPU, memory, network, requests, replicas, scraped series
    Metrics(MetricsArgs),
    /// Manage the encrypted secrets that manifests use as ${SECRET:name} in env
    Secrets(SecretsArgs),
    /// Manage environments and the config every deployment in one starts from
    Env(EnvArgs),
    /// Manage config templates that manifests name with `template:`
    Template(TemplateArgs),
    /// Manage the channels that alert and deployment notifications go to
    Notify(NotifyArgs),
    /// Manage alert rules, list alerts, silence and acknowledge them
    Alerts(AlertsArgs),
    /// List the Kubernetes contexts of this shell's kubeconfig and whether each cluster responds
    Contexts(ContextsArgs),
}

#[derive(Debug, Args)]
pub struct ContextsArgs {
    /// How long to wait for each cluster, such as 3s
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub timeout: String,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    #[command(subcommand)]
    pub action: AlertsAction,
}

#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// List the alerts of one deployment or of all, with their states
    #[command(alias = "list")]
    Ls(AlertsListArgs),
    /// Mute the notifications of one rule, or of every rule of a deployment, for a while
    Silence(SilenceArgs),
    /// Take ownership of a firing alert, which stops its reminders until it resolves
    Ack(AckArgs),
    /// Add an alert rule to a deployment, kept across its revisions until removed
    Add(AlertsAddArgs),
    /// Remove an alert rule added with `alerts add`
    Rm(AlertsRuleArgs),
    /// List the alert rules of a deployment: its manifest's and those added with `alerts add`
    Rules(AlertsRulesArgs),
    /// List the silences in force, with their ids, ends and comments
    Silences(AlertsListArgs),
    /// End a silence before its time
    Unsilence(UnsilenceArgs),
}

#[derive(Debug, Args)]
pub struct UnsilenceArgs {
    /// The deployment
    pub name: String,

    /// Id of the silence, from `shipdeck alerts silences`
    pub id: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct AlertsAddArgs {
    /// The deployment
    pub name: String,

    /// Name of the rule, unique within the deployment
    pub rule: String,

    /// Metric to watch, such as cpu_percentage or replicas_ready
    #[arg(long, value_name = "METRIC")]
    pub metric: String,

    /// Comparison of the metric with the threshold: gt, gte, lt, lte, eq or ne
    #[arg(long, value_name = "CONDITION")]
    pub condition: String,

    /// Number the metric is compared with, in the metric's unit
    #[arg(long, value_name = "NUMBER", allow_hyphen_values = true)]
    pub threshold: String,

    /// Time the condition must hold before the alert fires, such as 3s or 2m [default: 0s]
    #[arg(long = "for", value_name = "DURATION")]
    pub for_duration: Option<String>,

    /// Time between reminders while the alert fires, such as 10m [default: no reminders]
    #[arg(long, value_name = "DURATION")]
    pub repeat_interval: Option<String>,

    /// low, medium, high or critical [default: medium]
    #[arg(long, value_name = "SEVERITY")]
    pub severity: Option<String>,

    /// Channel to notify; repeat for several (see `shipdeck notify ls`)
    #[arg(long = "notify", value_name = "CHANNEL")]
    pub notify: Vec<String>,

    /// Replace a rule of the same name instead of failing
    #[arg(long)]
    pub replace: bool,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct AlertsRuleArgs {
    /// The deployment
    pub name: String,

    /// Name of the rule
    pub rule: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct AlertsRulesArgs {
    /// The deployment
    pub name: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct AlertsListArgs {
    /// Only the alerts of this deployment
    pub name: Option<String>,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct SilenceArgs {
    /// The deployment
    pub name: String,

    /// Only this rule [default: every rule of the deployment]
    #[arg(long, value_name = "RULE")]
    pub rule: Option<String>,

    /// Duration of the silence, such as 30m or 2h
    #[arg(
        long = "for",
        value_name = "DURATION",
        required_unless_present = "until",
        conflicts_with = "until"
    )]
    pub duration: Option<String>,

    /// End of the silence, as an RFC 3339 time such as 2026-12-24T08:00:00Z
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// The reason, for operators who read the silence later
    #[arg(long, value_name = "TEXT")]
    pub comment: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    /// The deployment
    pub name: String,

    /// The rule whose alert fires
    pub rule: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub action: NotifyAction,
}

#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    /// List the channels
    #[command(alias = "list")]
    Ls(FormatArgs),
    /// Add a channel; with --replace, replace the one of the same name
    Add(NotifyAddArgs),
    /// Remove a channel; one that alert rules or deployments still name
    /// needs --force
    #[command(alias = "remove")]
    Rm(NotifyRmArgs),
    /// Send a test notification to a channel now and report the outcome
    Test(NotifyNameArgs),
    /// Show the notifications kept by in-app channels, oldest first
    History(NotifyHistoryArgs),
}

#[derive(Debug, Args)]
pub struct NotifyNameArgs {
    /// The channel
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NotifyRmArgs {
    /// The channel
    pub name: String,

    /// Remove it even if alert rules or a deployment's
    /// monitoring.notifications still name it
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["webhook", "command", "in_app"])))]
pub struct NotifyAddArgs {
    /// The channel's name, used in an alert rule's `notifications`
    pub name: String,

    /// Replace a channel of the same name instead of failing
    #[arg(long)]
    pub replace: bool,

    /// POST each notification as JSON to this http:// or https:// URL
    #[arg(long, value_name = "URL")]
    pub webhook: Option<String>,

    /// Also trust the CA certificates in this PEM file for the https
    /// webhook, for a server whose certificate a private CA signed
    #[arg(long, value_name = "PATH", requires = "webhook")]
    pub ca_file: Option<PathBuf>,

    /// Run PROGRAM with the ARGs and the notification as JSON on standard
    /// input. Give it last: every word after it belongs to the command. A
    /// `--` right after --command or PROGRAM is dropped, so `--command --
    /// PROGRAM -x` and `--command PROGRAM -- -x` also work. PROGRAM is an
    /// absolute path or a name on the agent's PATH
    #[arg(long, value_name = "PROGRAM [ARG]...", num_args = 1.., allow_hyphen_values = true)]
    pub command: Option<Vec<String>>,

    /// Keep notifications in the agent, for `notify history`
    #[arg(long)]
    pub in_app: bool,
}

#[derive(Debug, Args)]
pub struct NotifyHistoryArgs {
    /// Show at most N notifications, the newest
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub action: EnvAction,
}

#[derive(Debug, Subcommand)]
pub enum EnvAction {
    /// List environments with their number of keys and their deployments
    #[command(alias = "list")]
    Ls(FormatArgs),
    /// Show the config of one environment
    Show(EnvShowArgs),
    /// Set config keys, creating the environment if it does not exist
    Set(EnvSetArgs),
    /// Remove config keys
    Unset(EnvUnsetArgs),
    /// Remove an environment that no deployment uses
    #[command(alias = "remove")]
    Rm(EnvNameArgs),
}

#[derive(Debug, Args)]
pub struct EnvNameArgs {
    /// Environment name: a DNS-1123 label such as staging or prod-eu
    pub name: String,
}

#[derive(Debug, Args)]
pub struct EnvShowArgs {
    /// Environment name
    pub name: String,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct EnvSetArgs {
    /// Environment name: a DNS-1123 label such as staging or prod-eu
    pub name: String,

    /// KEY=VALUE pairs; a value may use ${ENVIRONMENT}, ${SECRET:name} and ${NAME} variables
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EnvUnsetArgs {
    /// Environment name
    pub name: String,

    /// Keys to remove
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    pub action: TemplateAction,
}

#[derive(Debug, Subcommand)]
pub enum TemplateAction {
    /// List templates
    #[command(alias = "list")]
    Ls(FormatArgs),
    /// Print a template's YAML as stored
    Show(TemplateShowArgs),
    /// Store a new template from a YAML file
    Create(TemplateFileArgs),
    /// Replace an existing template with a YAML file
    Update(TemplateFileArgs),
    /// Remove a template
    #[command(alias = "remove")]
    Rm(TemplateNameArgs),
    /// Show a template merged with an environment's config, secrets masked
    Render(TemplateRenderArgs),
}

#[derive(Debug, Args)]
pub struct TemplateNameArgs {
    /// Template name: a DNS-1123 label such as web-app
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TemplateShowArgs {
    /// Template name
    pub name: String,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct TemplateFileArgs {
    /// Template name: a DNS-1123 label such as web-app
    pub name: String,

    /// Template file (YAML); `-` reads standard input
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct TemplateRenderArgs {
    /// Template name
    pub name: String,

    /// Environment whose config to merge under the template
    #[arg(long, value_name = "ENV")]
    pub env: String,

    /// env.KEY=VALUE to set a variable over the template, or var.NAME=VALUE for ${NAME}
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub action: SecretsAction,
}

#[derive(Debug, Subcommand)]
pub enum SecretsAction {
    /// Store a secret, reading its value from standard input (one trailing newline is dropped)
    Set(SecretNameArgs),
    /// List secret names and when each was last set; values are never listed
    #[command(alias = "list")]
    Ls(FormatArgs),
    /// Print the value of a secret; needs --reveal
    Get(SecretGetArgs),
    /// Remove a secret
    #[command(alias = "remove")]
    Rm(SecretNameArgs),
    /// Encrypt every secret again under a new master key
    RotateKey(RotateKeyArgs),
}

#[derive(Debug, Args)]
pub struct SecretNameArgs {
    /// Secret name: 1 to 63 characters from a-z, 0-9, `_`, `.` and `-`, starting with a letter or digit
    pub name: String,
}

#[derive(Debug, Args)]
pub struct SecretGetArgs {
    pub name: String,

    /// Print the value on standard output
    #[arg(long)]
    pub reveal: bool,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    /// Read the new master key (64 hex digits) or passphrase from standard input; needed when the agent's key comes from SHIPDECK_MASTER_KEY or SHIPDECK_PASSPHRASE_FILE
    #[arg(long)]
    pub stdin: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub action: Option<AgentAction>,

    /// Start the agent in the background and return once it answers
    #[arg(long)]
    pub detach: bool,

    /// Also serve the API on this TCP address (for example 127.0.0.1:7070), behind the bearer token in $SHIPDECK_HOME/token
    #[arg(long, value_name = "ADDRESS")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum AgentAction {
    /// Show whether the agent runs, its pid and what it supervises
    Status(FormatArgs),
    /// Stop the agent gracefully: replicas get their grace period, the store is flushed
    Stop,
}

#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Wait until the change has finished (ready, reverted or failed)
    #[arg(long)]
    pub wait: bool,

    /// How long --wait waits, such as 90s or 5m
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Manifest file (YAML); `-` reads standard input
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Environment to deploy to, overriding the manifest's
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Override a manifest field, such as replicas=3 or env.GREETING=hi, or
    /// define a variable for ${NAME} in env with var.NAME=VALUE
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only deployments of this environment
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Only these statuses, comma-separated (undeployed ones show only when named)
    #[arg(long, value_name = "S1,S2")]
    pub status: Option<String>,

    /// Only names containing this text
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,

    /// Only deployments with this tag; repeat to require several
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Sort key
    #[arg(long, value_name = "KEY", value_parser = ["createdAt", "updatedAt", "name"])]
    pub sort: Option<String>,

    /// Sort in descending order
    #[arg(long)]
    pub desc: bool,

    /// Show at most N deployments
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Skip the first N deployments
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: usize,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Deployment name
    pub name: String,

    /// Environment, needed when the name exists in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RedeployArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Changed manifest; without it the current revision's spec is used
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Override a manifest field, such as replicas=3 or env.GREETING=hi, or
    /// define a variable for ${NAME} in env with var.NAME=VALUE
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Restart only this replica (its number, from 0, as `get` lists it)
    #[arg(long, value_name = "N")]
    pub replica: Option<u32>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Revision to return to; default: the previous healthy one
    #[arg(long, value_name = "N")]
    pub to_revision: Option<u64>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Number of replicas (0 to 1000)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub replicas: i64,

    /// Turn autoscaling off first, where it is on
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct AutoscaleArgs {
    #[command(subcommand)]
    pub action: Option<AutoscaleAction>,

    #[command(flatten)]
    pub set: AutoscaleSetArgs,
}

#[derive(Debug, Subcommand)]
pub enum AutoscaleAction {
    /// Turn autoscaling off; the replica count stays where it is
    Off(AutoscaleOffArgs),
    /// Show the targets, conditions and recent decisions with their reasons
    Status(AutoscaleStatusArgs),
}

#[derive(Debug, Args)]
pub struct AutoscaleSetArgs {
    /// The deployment
    #[arg(required = true)]
    pub name: Option<String>,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Minimum replica count (at least 1)
    #[arg(long, value_name = "N", required = true)]
    pub min: Option<u32>,

    /// Maximum replica count
    #[arg(long, value_name = "N", required = true)]
    pub max: Option<u32>,

    /// Average CPU use to hold, in percent of the CPU request
    #[arg(long, value_name = "PERCENT")]
    pub cpu: Option<u32>,

    /// Average memory use to hold, in percent of the memory request
    #[arg(long, value_name = "PERCENT")]
    pub memory: Option<u32>,

    /// A collected series to hold at a value per replica, such as requests_per_second=50; repeatable
    #[arg(long, value_name = "NAME=VALUE")]
    pub metric: Vec<String>,

    /// How often to evaluate, such as 15s (process and Docker backends)
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct AutoscaleOffArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct AutoscaleStatusArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// How many recent decisions to show
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub decisions: usize,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct UndeployArgs {
    pub name: String,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    #[command(flatten)]
    pub wait: WaitArgs,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of this deployment
    pub name: Option<String>,

    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Show at most N events, the newest
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,

    /// Keep printing new events as they are recorded, until interrupted
    #[arg(short, long)]
    pub follow: bool,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// The deployment
    pub name: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Window before now, such as 15m, 1h or 7d
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub since: String,

    /// List the names of the series that can be shown, scraped ones included
    #[arg(long, conflicts_with_all = ["metrics", "step"])]
    pub list: bool,

    /// Width of one point [default: a 60th of the window, at least 1s]
    #[arg(long, value_name = "DURATION")]
    pub step: Option<String>,

    /// Only this metric (repeatable): a built-in one such as cpu_percentage,
    /// requests_total or response_time_p95, or a scraped series by name
    #[arg(long = "metric", value_name = "NAME")]
    pub metrics: Vec<String>,

    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The deployment
    pub name: String,

    /// Environment of the deployment, where its name is in several
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,

    /// Keep printing new lines as they arrive, after the newest --tail ones
    #[arg(short, long)]
    pub follow: bool,

    /// Only lines of this level or above: trace, debug, info, warn, error, fatal
    #[arg(short, long, value_name = "LEVEL")]
    pub level: Option<String>,

    /// Only lines that contain TEXT, ignoring case
    #[arg(short, long, value_name = "TEXT", conflicts_with = "regex")]
    pub search: Option<String>,

    /// Only lines that match the regular expression PATTERN (case-sensitive; (?i) ignores case)
    #[arg(long, value_name = "PATTERN")]
    pub regex: Option<String>,

    /// Only lines that do not match --search or --regex, as grep -v
    #[arg(short = 'v', long)]
    pub invert: bool,

    /// Also N lines before and after each line that --search or --regex selects, as grep -C (at most 1000)
    #[arg(short = 'C', long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub context: Option<u64>,

    /// Only lines since a time: a duration back from now (30s, 15m, 2h, 7d) or an RFC 3339 time
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only lines until a time, written like --since
    #[arg(long, value_name = "TIME", conflicts_with = "follow")]
    pub until: Option<String>,

    /// Only lines of one replica, by name (web-1) or index (1)
    #[arg(long, value_name = "REPLICA")]
    pub replica: Option<String>,

    /// Show the build output instead of the replicas' output
    #[arg(long)]
    pub build: bool,

    /// Only lines of this revision; with --build the default is the current one
    #[arg(long, value_name = "N")]
    pub revision: Option<u64>,

    /// Show the newest N matching lines, at most 100000 [default: 100]
    #[arg(long, value_name = "N", conflicts_with_all = ["limit", "offset"], value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub tail: Option<u64>,

    /// Page from the oldest matching line: show at most N lines (at most 100000) ...
    #[arg(long, value_name = "N", conflicts_with = "follow", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub limit: Option<u64>,

    /// ... after skipping the oldest N (needs --limit)
    #[arg(long, value_name = "N", requires = "limit")]
    pub offset: Option<u64>,

    /// Page by entry id: the lines after entry ID (the `id` of -o json), oldest first, at most --limit (default 100)
    #[arg(long, value_name = "ID", conflicts_with_all = ["tail", "offset", "before", "follow"])]
    pub after: Option<u64>,

    /// Page by entry id: the newest lines before entry ID, at most --limit (default 100)
    #[arg(long, value_name = "ID", conflicts_with_all = ["tail", "offset", "follow"])]
    pub before: Option<u64>,

    #[command(flatten)]
    pub format: FormatArgs,
}
