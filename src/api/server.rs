//! The agent's HTTP server.
//!
//! Handlers translate between the wire types and the engine; they hold no
//! state of their own. Every response that reports a change is sent after the
//! engine flushed the store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::UnixListener;
use tokio::sync::Notify;

use super::wire::{
    ActionResult, AgentStatus, AutoscaleBody, DeployBody, ErrorBody, ListParams, ManifestBody,
    RedeployBody, RestartBody, RevealedSecret, RollbackBody, RotateKeyBody, ScaleBody, SecretBody,
    TargetParams, UndeployBody,
};
use crate::config::{Rotation, SecretInfo, VaultError};
use crate::engine::alert_rules::{AlertRuleError, PutMode};
use crate::engine::supervisor::Outcome;
use crate::engine::{
    Accepted, Caller, DeployRequest, Engine, EngineError, ListQuery, ManifestInput,
    RedeployRequest, SortKey,
};
use crate::manifest::AlertRuleSpec;
use crate::model::DeploymentStatus;

/// How long `wait` waits when the client gives no timeout.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Events returned when the client gives no limit.
const DEFAULT_EVENT_LIMIT: usize = 100;

pub struct AgentState {
    pub engine: Arc<Engine>,
    pub started: Instant,
    pub home: String,
    /// Notified when a client asks the agent to stop.
    pub stop: Arc<Notify>,
    /// Turns true when the agent begins to stop, so that long-lived streams
    /// end and the server's graceful shutdown does not wait for them.
    pub closing: tokio::sync::watch::Receiver<bool>,
}

pub(super) type Shared = Arc<AgentState>;
pub(super) type ApiResult<T> = Result<Json<T>, ApiError>;

/// The connecting process's user, from the socket's peer credentials.
#[derive(Debug, Clone)]
pub struct PeerUser(pub String);

impl Connected<IncomingStream<'_, UnixListener>> for PeerUser {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        let user = stream
            .io()
            .peer_cred()
            .map(|cred| user_name(cred.uid()))
            .unwrap_or_else(|_| "unknown".to_owned());
        PeerUser(user)
    }
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for PeerUser {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerUser(format!("token@{}", stream.remote_addr()))
    }
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/agent", get(agent_status))
        .route("/v1/agent/stop", post(agent_stop))
        .route("/v1/deployments", get(list).post(deploy))
        .route("/v1/deployments/{name}", get(get_one))
        .route("/v1/deployments/{name}/history", get(history))
        .route("/v1/deployments/{name}/health", get(health))
        .route("/v1/deployments/{name}/revisions/{revision}", get(revision))
        .route("/v1/deployments/{name}/logs", get(super::logs::logs))
        .route("/v1/deployments/{name}/log-stats", get(log_stats))
        .route("/v1/deployments/{name}/metrics", get(metrics))
        .route("/v1/deployments/{name}/redeploy", post(redeploy))
        .route("/v1/deployments/{name}/rollback", post(rollback))
        .route("/v1/deployments/{name}/scale", post(scale))
        .route(
            "/v1/deployments/{name}/autoscale",
            get(autoscale_status).put(autoscale_set),
        )
        .route("/v1/deployments/{name}/undeploy", post(undeploy))
        .route("/v1/deployments/{name}/restart", post(restart))
        .route("/v1/deployments/{name}/manifest", get(manifest_source))
        .route("/v1/events", get(events))
        .route("/v1/watch", get(super::watch::watch))
        .route("/v1/alerts", get(alerts_list))
        .route("/v1/deployments/{name}/silences", post(silence))
        .route(
            "/v1/deployments/{name}/silences/{id}",
            axum::routing::delete(silence_remove),
        )
        .route("/v1/silences", get(silences_list))
        .route("/v1/deployments/{name}/series", get(series_list))
        .route("/v1/deployments/{name}/alert-rules", get(alert_rules_list))
        .route(
            "/v1/deployments/{name}/alert-rules/{rule}",
            axum::routing::put(alert_rule_put).delete(alert_rule_delete),
        )
        .route(
            "/v1/deployments/{name}/alerts/{rule}/ack",
            post(acknowledge),
        )
        .route("/v1/notify", get(notify_list).post(notify_add))
        .route(
            "/v1/notify/{name}",
            axum::routing::put(notify_put).delete(notify_remove),
        )
        .route("/v1/notify/{name}/test", post(notify_test))
        .route("/v1/notifications", get(notifications))
        .route("/v1/secrets", get(list_secrets))
        .route(
            "/v1/secrets/{name}",
            get(reveal_secret).put(set_secret).delete(delete_secret),
        )
        .route("/v1/vault/rotate-key", post(rotate_key))
        .route("/v1/environments", get(super::config::environments_list))
        .route(
            "/v1/environments/{name}",
            get(super::config::environment_get)
                .patch(super::config::environment_change)
                .delete(super::config::environment_remove),
        )
        .route("/v1/templates", get(super::config::templates_list))
        .route(
            "/v1/templates/{name}",
            get(super::config::template_get)
                .put(super::config::template_put)
                .delete(super::config::template_remove),
        )
        .route(
            "/v1/templates/{name}/render",
            post(super::config::template_render),
        )
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!(
            "{method} is not allowed on {}; see the README for the methods of each route",
            uri.path()
        ),
    }
}

async fn unknown_route(uri: axum::http::Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "no such API path {}; the routes are under /v1 (see the README)",
            uri.path()
        ),
    }
}

/// A JSON request body whose errors are returned in the API's own error
/// format, naming what is wrong with the body, rather than as plain text.
pub struct Body<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError {
                status: rejection.status(),
                message: format!(
                    "invalid request body: {}; see the README for the fields of each route",
                    rejection.body_text()
                ),
            }),
        }
    }
}

/// An error response: a status code and a one-line message.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        let status = match &error {
            EngineError::NotFound { .. }
            | EngineError::RevisionNotFound { .. }
            | EngineError::Vault(VaultError::NotFound { .. }) => StatusCode::NOT_FOUND,
            EngineError::Config(error) => super::config::status_of(error),
            EngineError::Ambiguous { .. }
            | EngineError::Undeployed { .. }
            | EngineError::AutoscalingOn { .. } => StatusCode::CONFLICT,
            EngineError::AutoscalingOff { .. } | EngineError::AutoscalerNotSeen { .. } => {
                StatusCode::NOT_FOUND
            }
            // The dashboard reads 423 as "the vault is locked" and says how
            // to unlock it.
            EngineError::Vault(VaultError::Locked | VaultError::KeyFileMissing { .. }) => {
                StatusCode::LOCKED
            }
            EngineError::Backend(crate::backend::BackendError::PortInUse { .. }) => {
                StatusCode::CONFLICT
            }
            EngineError::Store(_)
            | EngineError::SupervisorGone { .. }
            | EngineError::Vault(VaultError::Store(_))
            | EngineError::RotationAborted
            | EngineError::Logs(crate::logs::LogError::Store(_)) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            EngineError::Logs(_) => StatusCode::BAD_REQUEST,
            EngineError::AlertRule(error) => alert_rule_status(error),
            EngineError::Channel(error) => channel_status(error),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "request failed");
        }
        Self {
            status,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response()
    }
}

pub(super) fn caller(peer: &PeerUser) -> Caller {
    Caller {
        user: peer.0.clone(),
    }
}

async fn agent_status(State(state): State<Shared>) -> Json<AgentStatus> {
    let (deployments, replicas) = state.engine.counts();
    Json(AgentStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        home: state.home.clone(),
        uptime_seconds: state.started.elapsed().as_secs(),
        deployments,
        replicas,
        limits: state.engine.limits_summary(),
    })
}

async fn agent_stop(State(state): State<Shared>) -> StatusCode {
    state.stop.notify_one();
    StatusCode::ACCEPTED
}

async fn deploy(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Body(body): Body<DeployBody>,
) -> ApiResult<ActionResult> {
    let request = DeployRequest {
        manifest: manifest_input(body.manifest),
        environment: body.environment,
        sets: body.set,
    };
    let accepted = state.engine.deploy(request, &caller(&peer)).await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn redeploy(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<RedeployBody>,
) -> ApiResult<ActionResult> {
    let request = RedeployRequest {
        manifest: body.manifest.map(manifest_input),
        sets: body.set,
    };
    let accepted = state
        .engine
        .redeploy(&name, body.environment.as_deref(), request, &caller(&peer))
        .await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn rollback(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<RollbackBody>,
) -> ApiResult<ActionResult> {
    let accepted = state
        .engine
        .rollback(
            &name,
            body.environment.as_deref(),
            body.to_revision,
            &caller(&peer),
        )
        .await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn scale(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<ScaleBody>,
) -> ApiResult<ActionResult> {
    let accepted = state
        .engine
        .scale(
            &name,
            body.environment.as_deref(),
            body.replicas,
            body.force,
            &caller(&peer),
        )
        .await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn autoscale_status(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    let decisions = params
        .limit
        .unwrap_or(crate::engine::RECENT_DECISIONS)
        .min(crate::store::DECISIONS_KEPT);
    Ok(json(state.engine.autoscale_status(
        &name,
        params.env.as_deref(),
        decisions,
    )?))
}

async fn autoscale_set(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<AutoscaleBody>,
) -> ApiResult<ActionResult> {
    let accepted = state
        .engine
        .set_autoscaling(
            &name,
            body.environment.as_deref(),
            body.setting,
            &caller(&peer),
        )
        .await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn undeploy(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<UndeployBody>,
) -> ApiResult<ActionResult> {
    let accepted = state
        .engine
        .undeploy(&name, body.environment.as_deref(), &caller(&peer))
        .await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn restart(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<RestartBody>,
) -> ApiResult<ActionResult> {
    let accepted = state
        .engine
        .restart(
            &name,
            body.environment.as_deref(),
            body.replica,
            &caller(&peer),
        )
        .await?;
    finish(&state, accepted, body.wait, body.timeout_ms).await
}

async fn manifest_source(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(
        state.engine.manifest_source(&name, params.env.as_deref())?,
    ))
}

/// Responds to a verb, first waiting for it to finish when the client requested it.
/// A change that ended badly is an error response, so the CLI exits non-zero.
async fn finish(
    state: &AgentState,
    accepted: Accepted,
    wait: bool,
    timeout_ms: Option<u64>,
) -> ApiResult<ActionResult> {
    let Accepted {
        deployment,
        revision,
        completion,
    } = accepted;
    let outcome = match (wait, completion) {
        (true, Some(completion)) => {
            let limit = timeout_ms.map_or(DEFAULT_WAIT, Duration::from_millis);
            match tokio::time::timeout(limit, completion).await {
                Ok(Ok(Outcome::Done(message))) => Some(message),
                Ok(Ok(Outcome::Failed(reason))) => {
                    return Err(ApiError {
                        status: StatusCode::UNPROCESSABLE_ENTITY,
                        message: format!("{}: {reason}", deployment.name),
                    })
                }
                Ok(Err(_)) => {
                    return Err(ApiError {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        message: format!("{}: the supervisor stopped before the change finished", deployment.name),
                    })
                }
                Err(_) => {
                    return Err(ApiError {
                        status: StatusCode::GATEWAY_TIMEOUT,
                        message: format!(
                            "{}: not finished after {} ms; it goes on in the agent, follow it with `shipdeck get {}`",
                            deployment.name,
                            limit.as_millis(),
                            deployment.name
                        ),
                    })
                }
            }
        }
        _ => None,
    };
    // The view taken when the change was accepted is stale once it has
    // finished, and `--wait -o json` callers read the counts from it.
    let deployment = match &outcome {
        Some(_) => state
            .engine
            .get(&deployment.name, Some(&deployment.environment))
            .unwrap_or(deployment),
        None => deployment,
    };
    Ok(Json(ActionResult {
        deployment,
        revision,
        outcome,
    }))
}

fn manifest_input(body: ManifestBody) -> ManifestInput {
    ManifestInput {
        text: body.text,
        origin: if body.origin.is_empty() {
            "manifest".to_owned()
        } else {
            body.origin
        },
        base_dir: body.base_dir.map(Into::into),
    }
}

async fn list(
    State(state): State<Shared>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let query = list_query(params)?;
    Ok(json(state.engine.list(&query)?))
}

fn list_query(params: ListParams) -> Result<ListQuery, ApiError> {
    let statuses = split_list(params.status.as_deref())
        .map(|status| {
            status
                .parse::<DeploymentStatus>()
                .map_err(ApiError::bad_request)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sort = match params.sort.as_deref() {
        None | Some("name") => SortKey::Name,
        Some("createdAt") => SortKey::CreatedAt,
        Some("updatedAt") => SortKey::UpdatedAt,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid sort {other:?}: use createdAt, updatedAt or name"
            )))
        }
    };
    Ok(ListQuery {
        environment: params.env,
        statuses,
        name: params.name,
        tags: split_list(params.tags.as_deref())
            .map(str::to_owned)
            .collect(),
        sort,
        descending: params.desc,
        limit: params.limit,
        offset: params.offset,
    })
}

fn split_list(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn json<T: Serialize>(value: T) -> Response {
    Json(value).into_response()
}

async fn get_one(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.get(&name, params.env.as_deref())?))
}

async fn history(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.history(&name, params.env.as_deref())?))
}

async fn revision(
    State(state): State<Shared>,
    Path((name, number)): Path<(String, u64)>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.revision_of(
        &name,
        params.env.as_deref(),
        number,
    )?))
}

async fn health(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.health(&name, params.env.as_deref())?))
}

/// Reads a duration parameter such as `1h` or `30s`.
fn duration_param(
    raw: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<Option<Duration>, ApiError> {
    raw.get(key)
        .filter(|value| !value.is_empty())
        .map(|value| {
            crate::manifest::ManifestDuration::try_from(value.clone())
                .map(|duration| duration.as_std())
                .map_err(|error| ApiError::bad_request(format!("{key}: {error}")))
        })
        .transpose()
}

/// Splits `a,b{x="1,2",y="3"}` at the commas that separate names, not at
/// those inside the label set of a scraped series.
fn split_metric_list(list: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for character in list.chars() {
        match character {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '{' if !quoted => depth += 1,
            '}' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(character);
    }
    names.push(current);
    names.retain(|name| !name.is_empty());
    names
}

async fn metrics(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(raw): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let since = duration_param(&raw, "since")?.unwrap_or(Duration::from_secs(3600));
    if since.is_zero() {
        return Err(ApiError::bad_request(
            "since=0s selects nothing; write a window such as since=1h",
        ));
    }
    let step = duration_param(&raw, "step")?;
    let names: Vec<String> = raw
        .get("metric")
        .map(|list| split_metric_list(list))
        .unwrap_or_default();
    let env = raw
        .get("env")
        .map(String::as_str)
        .filter(|env| !env.is_empty());
    Ok(json(state.engine.metrics(&name, env, &names, since, step)?))
}

async fn alerts_list(
    State(state): State<Shared>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.alerts(
        params.deployment.as_deref(),
        params.env.as_deref(),
    )?))
}

fn alert_rule_status(error: &AlertRuleError) -> StatusCode {
    match error {
        AlertRuleError::FromManifest { .. } => StatusCode::CONFLICT,
        // Only a request with `If-None-Match: *` is rejected for an existing rule.
        AlertRuleError::Exists { .. } => StatusCode::PRECONDITION_FAILED,
        AlertRuleError::NotFound { .. } => StatusCode::NOT_FOUND,
        AlertRuleError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

async fn alert_rules_list(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(
        state.engine.alert_rules(&name, params.env.as_deref())?,
    ))
}

/// Creates or replaces an API alert rule. The body is the rule as in
/// `monitoring.alerts`; its `name` may be left out and otherwise must match
/// the path. With `If-None-Match: *` the request only creates.
async fn alert_rule_put(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path((name, rule)): Path<(String, String)>,
    Query(params): Query<TargetParams>,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, ApiError> {
    let spec = alert_rule_body(&rule, body)?;
    let mode = match precondition(&headers) {
        Precondition::Absent => PutMode::CreateOnly,
        Precondition::Present | Precondition::Any => PutMode::CreateOrReplace,
    };
    let (view, created) = state
        .engine
        .put_alert_rule(&name, params.env.as_deref(), spec, mode, &caller(&peer))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

fn alert_rule_body(rule: &str, body: serde_json::Value) -> Result<AlertRuleSpec, ApiError> {
    let serde_json::Value::Object(mut fields) = body else {
        return Err(ApiError::bad_request(
            "invalid alert rule body: expected a JSON object with metric, condition and threshold",
        ));
    };
    match fields.get("name") {
        None => {
            fields.insert("name".to_owned(), rule.into());
        }
        Some(serde_json::Value::String(named)) if named == rule => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the body names rule {other}, but the path names {rule:?}; leave name out of the body or make them equal"
            )))
        }
    }
    serde_json::from_value(serde_json::Value::Object(fields)).map_err(|error| {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!(
                "invalid alert rule {rule:?}: {error}; give metric, condition (gt, gte, lt, lte, eq, ne) and a numeric threshold, and optionally for, repeatInterval, severity and notifications"
            ),
        }
    })
}

async fn alert_rule_delete(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path((name, rule)): Path<(String, String)>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    state
        .engine
        .remove_alert_rule(&name, params.env.as_deref(), &rule, &caller(&peer))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The state a conditional PUT expects the resource to be in.
pub(super) enum Precondition {
    /// `If-None-Match: *`: only create.
    Absent,
    /// `If-Match: *`: only update.
    Present,
    Any,
}

pub(super) fn precondition(headers: &HeaderMap) -> Precondition {
    let star = |header| {
        headers
            .get(header)
            .is_some_and(|value| value.as_bytes() == b"*")
    };
    if star(axum::http::header::IF_NONE_MATCH) {
        Precondition::Absent
    } else if star(axum::http::header::IF_MATCH) {
        Precondition::Present
    } else {
        Precondition::Any
    }
}

async fn silences_list(
    State(state): State<Shared>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.silences(
        params.deployment.as_deref(),
        params.env.as_deref(),
    )?))
}

async fn silence_remove(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path((name, id)): Path<(String, String)>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    state
        .engine
        .remove_silence(&name, params.env.as_deref(), &id, &caller(&peer))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn series_list(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(
        state.engine.series_names(&name, params.env.as_deref())?,
    ))
}

/// The body of `POST /v1/deployments/NAME/silences`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SilenceBody {
    #[serde(default)]
    environment: Option<String>,
    /// One rule; every rule of the deployment when left out.
    #[serde(default)]
    rule: Option<String>,
    /// Duration of the silence, such as `30m` or `2h`; or give `until`.
    #[serde(rename = "for", default)]
    duration: Option<String>,
    /// End of the silence as an RFC 3339 time, such as `2026-12-24T08:00:00Z`.
    #[serde(default)]
    until: Option<String>,
    comment: String,
}

/// Returns when a silence ends, from exactly one of `for` and `until`.
fn silence_end(
    body: &SilenceBody,
    now: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, ApiError> {
    match (&body.duration, &body.until) {
        (Some(duration), None) => {
            let duration = crate::manifest::ManifestDuration::try_from(duration.clone())
                .map_err(|error| ApiError::bad_request(format!("for: {error}")))?;
            if duration.as_millis() == 0 {
                return Err(ApiError::bad_request(
                    "for is 0s; give a positive length such as 30m or 2h",
                ));
            }
            Ok(now + duration.as_std())
        }
        (None, Some(until)) => {
            let parsed = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "until {until:?} is not an RFC 3339 time; write one such as 2026-12-24T08:00:00Z"
                    ))
                })?;
            if parsed <= now {
                return Err(ApiError::bad_request(format!(
                    "until {until} is in the past; give a later time, or a duration (for, --for in the CLI)"
                )));
            }
            let until = parsed;
            Ok(until)
        }
        (Some(_), Some(_)) => Err(ApiError::bad_request("give either for or until, not both")),
        (None, None) => Err(ApiError::bad_request(
            "give the length of the silence with for (such as 2h) or its end with until",
        )),
    }
}

async fn silence(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<SilenceBody>,
) -> Result<Response, ApiError> {
    let until = silence_end(&body, time::OffsetDateTime::now_utc())?;
    let silence = state.engine.silence(
        &name,
        body.environment.as_deref(),
        body.rule,
        until,
        &body.comment,
        &caller(&peer),
    )?;
    Ok(json(silence))
}

/// The body of `POST /v1/deployments/NAME/alerts/RULE/ack`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AckBody {
    #[serde(default)]
    environment: Option<String>,
}

async fn acknowledge(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path((name, rule)): Path<(String, String)>,
    Body(body): Body<AckBody>,
) -> Result<Response, ApiError> {
    state
        .engine
        .acknowledge(&name, body.environment.as_deref(), &rule, &caller(&peer))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The body of `POST /v1/notify` and `PUT /v1/notify/NAME`: a name (which
/// the PUT takes from its path) and exactly one target.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NotifyBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    webhook: Option<String>,
    /// PEM certificates of a private CA that an https webhook is signed by.
    #[serde(default)]
    ca_pem: Option<String>,
    /// The file that `ca_pem` was read from, kept for display.
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    in_app: bool,
}

fn channel_status(error: &crate::engine::ChannelChangeError) -> StatusCode {
    use crate::engine::ChannelChangeError as E;
    match error {
        E::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        // Only a request with `If-None-Match: *` is rejected for an existing channel.
        E::Exists { .. } => StatusCode::PRECONDITION_FAILED,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::InUse { .. } => StatusCode::CONFLICT,
    }
}

async fn notify_list(State(state): State<Shared>) -> Result<Response, ApiError> {
    Ok(json(state.engine.notify_channels()?))
}

/// Creates or replaces a channel named in the body. With `If-None-Match: *`
/// it only creates.
async fn notify_add(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    headers: HeaderMap,
    Body(body): Body<NotifyBody>,
) -> Result<Response, ApiError> {
    let Some(name) = body.name.clone() else {
        return Err(ApiError::bad_request(
            "the channel has no name; give name, or use PUT /v1/notify/NAME",
        ));
    };
    put_channel(&state, &peer, &headers, name, body).await
}

/// Creates or replaces the channel named in the path. With
/// `If-None-Match: *` it only creates.
async fn notify_put(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Body(body): Body<NotifyBody>,
) -> Result<Response, ApiError> {
    if let Some(named) = body.name.as_deref().filter(|named| *named != name) {
        return Err(ApiError::bad_request(format!(
            "the body names channel {named:?}, but the path names {name:?}; leave name out of the body or make them equal"
        )));
    }
    put_channel(&state, &peer, &headers, name, body).await
}

async fn put_channel(
    state: &Shared,
    peer: &PeerUser,
    headers: &HeaderMap,
    name: String,
    body: NotifyBody,
) -> Result<Response, ApiError> {
    let target = channel_target(body)?;
    let mode = match precondition(headers) {
        Precondition::Absent => PutMode::CreateOnly,
        Precondition::Present | Precondition::Any => PutMode::CreateOrReplace,
    };
    let (channel, created) = state
        .engine
        .add_notify_channel(&name, target, mode, &caller(peer))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(channel)).into_response())
}

fn channel_target(body: NotifyBody) -> Result<crate::model::NotifyTarget, ApiError> {
    use crate::model::NotifyTarget;
    if body.webhook.is_none() && (body.ca_pem.is_some() || body.ca_file.is_some()) {
        return Err(ApiError::bad_request(
            "caPem and caFile belong to a webhook channel; give webhook too",
        ));
    }
    match (body.webhook, body.command, body.in_app) {
        (Some(url), None, false) => Ok(NotifyTarget::Webhook {
            url,
            ca_pem: body.ca_pem,
            ca_file: body.ca_file,
        }),
        (None, Some(command), false) => Ok(NotifyTarget::Command { command }),
        (None, None, true) => Ok(NotifyTarget::InApp),
        _ => Err(ApiError::bad_request(
            "give exactly one of webhook, command or inApp for the channel",
        )),
    }
}

#[derive(Debug, serde::Deserialize)]
struct RemoveParams {
    #[serde(default)]
    force: bool,
}

/// Removes a channel. One that alert rules or deployments still name is
/// removed only with `?force=true`; the response lists them.
async fn notify_remove(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Query(params): Query<RemoveParams>,
) -> Result<Response, ApiError> {
    let removal = state
        .engine
        .remove_notify_channel(&name, params.force, &caller(&peer))
        .await?;
    Ok(json(removal))
}

async fn notify_test(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.engine.test_notify_channel(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn notifications(
    State(state): State<Shared>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(100).min(1000);
    Ok(json(state.engine.notifications(limit)?))
}

async fn log_stats(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    Ok(json(state.engine.log_stats(&name, params.env.as_deref())?))
}

async fn events(
    State(state): State<Shared>,
    Query(params): Query<TargetParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_EVENT_LIMIT);
    Ok(json(state.engine.events(
        params.deployment.as_deref(),
        params.env.as_deref(),
        limit,
    )?))
}

async fn list_secrets(State(state): State<Shared>) -> ApiResult<Vec<SecretInfo>> {
    Ok(Json(state.engine.list_secrets()?))
}

async fn set_secret(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<SecretBody>,
) -> ApiResult<SecretInfo> {
    let info = state
        .engine
        .set_secret(&name, &body.value, &caller(&peer))
        .await?;
    Ok(Json(info))
}

async fn reveal_secret(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
) -> ApiResult<RevealedSecret> {
    let value = state.engine.reveal_secret(&name, &caller(&peer)).await?;
    Ok(Json(RevealedSecret { name, value }))
}

async fn delete_secret(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_secret(&name, &caller(&peer)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_key(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Body(body): Body<RotateKeyBody>,
) -> ApiResult<Rotation> {
    let rotation = state
        .engine
        .rotate_key(body.replacement, &caller(&peer))
        .await?;
    Ok(Json(rotation))
}

/// Checks the bearer token of a TCP request in constant time.
pub fn token_matches(headers: &HeaderMap, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return false;
    };
    let Some(presented) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return false;
    };
    presented.as_bytes().ct_eq(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::split_metric_list;

    #[test]
    fn metric_lists_split_between_names_only() {
        assert_eq!(
            split_metric_list(r#"cpu_usage,,req{code="200",path="/a,b\"}"},up"#),
            vec![
                "cpu_usage".to_owned(),
                r#"req{code="200",path="/a,b\"}"}"#.to_owned(),
                "up".to_owned()
            ]
        );
        assert!(split_metric_list("").is_empty());
    }
}
