//! Handlers for environment configs and templates.

use super::server::Precondition;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::server::{caller, ApiError, ApiResult, Body, PeerUser, Shared};
use super::wire::{EnvironmentChangeBody, TemplateBody, TemplateRenderBody};
use crate::config::ConfigError;
use crate::engine::TemplateWrite;
use crate::model::{EnvironmentView, RenderedTemplate, TemplateView};

/// Maps a config error to its status: missing things are 404, a name that
/// is taken 412 (as a create-only PUT reports it), a thing still in use 409.
pub(super) fn status_of(error: &ConfigError) -> StatusCode {
    match error {
        ConfigError::EnvironmentNotFound { .. } | ConfigError::TemplateNotFound { .. } => {
            StatusCode::NOT_FOUND
        }
        ConfigError::TemplateExists { .. } => StatusCode::PRECONDITION_FAILED,
        ConfigError::EnvironmentInUse { .. } | ConfigError::TemplateInUse { .. } => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(super) async fn environments_list(
    State(state): State<Shared>,
) -> ApiResult<Vec<EnvironmentView>> {
    Ok(Json(state.engine.environments()?))
}

pub(super) async fn environment_get(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<EnvironmentView> {
    Ok(Json(state.engine.environment(&name)?))
}

/// Sets and removes config keys, creating the environment if needed.
pub(super) async fn environment_change(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    Body(body): Body<EnvironmentChangeBody>,
) -> ApiResult<EnvironmentView> {
    let view = state
        .engine
        .change_environment(&name, &body.set, &body.unset, &caller(&peer))
        .await?;
    Ok(Json(view))
}

pub(super) async fn environment_remove(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .engine
        .remove_environment(&name, &caller(&peer))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn templates_list(State(state): State<Shared>) -> ApiResult<Vec<TemplateView>> {
    Ok(Json(state.engine.templates()?))
}

pub(super) async fn template_get(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> ApiResult<TemplateView> {
    Ok(Json(state.engine.template(&name)?))
}

/// Stores a template. `If-None-Match: *` only creates and `If-Match: *`
/// only replaces; without either header the PUT does both.
pub(super) async fn template_put(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Body(body): Body<TemplateBody>,
) -> Result<Response, ApiError> {
    let mode = match super::server::precondition(&headers) {
        Precondition::Absent => TemplateWrite::Create,
        Precondition::Present => TemplateWrite::Update,
        Precondition::Any => TemplateWrite::CreateOrReplace,
    };
    let (view, created) = state
        .engine
        .put_template(&name, &body.source, mode, &caller(&peer))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

pub(super) async fn template_remove(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<PeerUser>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.remove_template(&name, &caller(&peer)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Renders a template for an environment with secret values masked.
pub(super) async fn template_render(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Body(body): Body<TemplateRenderBody>,
) -> ApiResult<RenderedTemplate> {
    Ok(Json(state.engine.render_template(
        &name,
        &body.environment,
        &body.set,
    )?))
}
