//! The HTTP side of the fake: request recording, authentication, routing
//! of discovery and resource paths, and the create, get, list, replace,
//! patch, delete and deletecollection verbs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};

use super::patch::{self, ApplyContext, Conflict};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::store::{name_of, namespace_of};
use super::{logs, metrics, now, watch, RecordedRequest, Shared};

/// The largest request body the fake reads.
const BODY_LIMIT: usize = 16 << 20;

/// A request that failed before it got far, as the response to send.
/// Boxed because a `Response` is large.
pub type Rejection = Box<Response>;

/// A resource path, split into its parts.
pub struct Target {
    pub resource: &'static ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// The query parameters of one request, in order.
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1"))
    }
}

pub async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return status_error(
            413,
            "RequestEntityTooLarge",
            "request body too large".to_owned(),
            None,
        );
    };
    let query = Query(
        form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    let content_type = header(&parts.headers, "content-type");
    let body_text = String::from_utf8_lossy(&bytes).into_owned();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: query.0.clone(),
        content_type: content_type.clone(),
        body: serde_json::from_slice(&bytes).ok(),
        body_text: body_text.clone(),
        authorization: header(&parts.headers, "authorization"),
        user_agent: header(&parts.headers, "user-agent"),
        client_certificate: parts
            .extensions
            .get::<super::tls::ClientCertificate>()
            .map(|presented| presented.0.clone()),
    };

    {
        let mut state = shared.lock();
        state.requests.push(recorded);
        if let Some(expected) = &state.token {
            let given = header(&parts.headers, "authorization");
            if given.as_deref() != Some(format!("Bearer {expected}").as_str()) {
                return status_error(401, "Unauthorized", "Unauthorized".to_owned(), None);
            }
        }
    }

    let path = parts.uri.path().trim_end_matches('/');
    if path == "/openapi/v2" {
        return empty_openapi_v2();
    }
    if let Some(response) = metrics::serve(&shared, path, &query) {
        return response;
    }
    if let Some(response) = discovery(&shared, path) {
        return response;
    }
    let Some(target) = parse_target(path) else {
        return status_error(
            404,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
            None,
        );
    };
    let verb = verb(&parts.method, &target, &query);
    if let Some(response) = forbidden(&shared, verb, &target) {
        return response;
    }
    let manager = field_manager(&query, &parts.headers);
    match verb {
        "get" if target.subresource.as_deref() == Some("log") => {
            logs::serve(&shared, &target, &query)
        }
        "get" => get(&shared, &target),
        "list" => list(&shared, &target, &query),
        "watch" => watch::serve(&shared, target, &query),
        "create" => create(&shared, &target, &query, &manager, &body_text),
        "update" => replace(&shared, &target, &manager, &body_text),
        "patch" => patch_object(
            &shared,
            &target,
            &query,
            &manager,
            content_type.as_deref(),
            &body_text,
        ),
        "delete" => delete(&shared, &target, &body_text),
        "deletecollection" => delete_collection(&shared, &target, &query),
        _ => status_error(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
            None,
        ),
    }
}

/// Returns an empty OpenAPI v2 document in protobuf, where an empty
/// message is zero bytes. kubectl downloads it before it validates a
/// manifest on the client side, finds no schema in it, and so checks nothing.
fn empty_openapi_v2() -> Response {
    let content_type = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
    (
        StatusCode::OK,
        [("content-type", content_type)],
        Vec::<u8>::new(),
    )
        .into_response()
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Returns the manager named by `fieldManager`, or else the user agent's
/// program name, which is what a real server falls back to.
fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(manager) = query.get("fieldManager") {
        return manager.to_owned();
    }
    header(headers, "user-agent")
        .and_then(|agent| agent.split('/').next().map(str::to_owned))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn discovery(shared: &Shared, path: &str) -> Option<Response> {
    let document = match path {
        "/version" => json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-shipdeck-fake",
            "platform": "linux/amd64", "goVersion": "go1.23", "compiler": "gc",
        }),
        "/api" => resources::core_versions(&shared.address),
        "/apis" => {
            let mut list = resources::group_list();
            let mode = shared.lock().metrics_api;
            if let (Some(groups), Some(entry)) =
                (list["groups"].as_array_mut(), metrics::group_entry(mode))
            {
                groups.push(entry);
            }
            list
        }
        "/api/v1" => resources::resource_list("", "v1")?,
        _ => {
            let rest = path.strip_prefix("/apis/")?;
            let parts: Vec<&str> = rest.split('/').collect();
            match parts.as_slice() {
                [group] => resources::group(group)?,
                [group, version] => resources::resource_list(group, version)?,
                _ => return None,
            }
        }
    };
    Some(json_response(StatusCode::OK, &document))
}

fn parse_target(path: &str) -> Option<Target> {
    let (group, version, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("", "v1", rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut parts = rest.splitn(3, '/');
        let group = parts.next()?;
        let version = parts.next()?;
        (group, version, parts.next()?)
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (namespace, segments) = match segments.as_slice() {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some((*namespace).to_owned()), rest.to_vec())
        }
        _ => (None, segments),
    };
    let resource = resources::find(group, version, segments.first()?)?;
    if resource.namespaced != namespace.is_some() && segments.len() > 1 {
        return None;
    }
    Some(Target {
        resource,
        namespace,
        name: segments.get(1).map(|s| (*s).to_owned()),
        subresource: segments.get(2).map(|s| (*s).to_owned()),
    })
}

fn verb(method: &Method, target: &Target, query: &Query) -> &'static str {
    match (method.as_str(), target.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if query.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unsupported",
    }
}

fn forbidden(shared: &Shared, verb: &str, target: &Target) -> Option<Response> {
    let resource_name = match &target.subresource {
        Some(sub) => format!("{}/{}", target.resource.plural, sub),
        None => target.resource.plural.to_owned(),
    };
    let state = shared.lock();
    let rule = state.forbidden.iter().find(|rule| {
        rule.verb == verb
            && rule.resource == resource_name
            && rule
                .namespace
                .as_deref()
                .is_none_or(|ns| Some(ns) == target.namespace.as_deref())
    })?;
    let subject = match &target.name {
        Some(name) => format!("{} \"{name}\"", target.resource.qualified()),
        None => target.resource.qualified(),
    };
    let scope = match &target.namespace {
        Some(namespace) => format!("in the namespace \"{namespace}\""),
        None => "at the cluster scope".to_owned(),
    };
    let message = format!(
        "{subject} is forbidden: User \"{}\" cannot {verb} resource \"{resource_name}\" in API group \"{}\" {scope}",
        rule.user, target.resource.group
    );
    let mut details = json!({"group": target.resource.group, "kind": target.resource.plural});
    // A real server leaves out an empty name; kube cannot read a null one.
    if let Some(name) = &target.name {
        details["name"] = json!(name);
    }
    Some(status_error(403, "Forbidden", message, Some(details)))
}

pub fn json_response(code: StatusCode, value: &Value) -> Response {
    (
        code,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A `Status` failure, as the API server returns for every error.
pub fn status_error(code: u16, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &status)
}

pub fn not_found(resource: &ResourceType, name: &str) -> Response {
    status_error(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", resource.qualified()),
        Some(json!({"name": name, "group": resource.group, "kind": resource.plural})),
    )
}

fn namespace_not_found(namespace: &str) -> Response {
    status_error(
        404,
        "NotFound",
        format!("namespaces \"{namespace}\" not found"),
        Some(json!({"name": namespace, "kind": "namespaces"})),
    )
}

fn bad_request(message: String) -> Response {
    status_error(400, "BadRequest", message, None)
}

fn get(shared: &Shared, target: &Target) -> Response {
    let state = shared.lock();
    let namespace = target.namespace.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    match state.store.get(target.resource, namespace, name) {
        Some(object) if target.subresource.as_deref() == Some("scale") => {
            json_response(StatusCode::OK, &scale_of(object))
        }
        Some(object) => json_response(StatusCode::OK, object),
        None => not_found(target.resource, name),
    }
}

/// Parses both selectors of a list, watch or deletecollection request.
pub fn selectors(query: &Query) -> Result<(LabelSelector, FieldSelector), Rejection> {
    let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
        .map_err(|message| Box::new(bad_request(message)))?;
    let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
        .map_err(|message| Box::new(bad_request(message)))?;
    Ok((labels, fields))
}

pub fn selected(object: &Value, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    labels.matches(object["metadata"]["labels"].as_object()) && fields.matches(object)
}

fn list(shared: &Shared, target: &Target, query: &Query) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(selectors) => selectors,
        Err(response) => return *response,
    };
    let state = shared.lock();
    let matching: Vec<Value> = state
        .store
        .list(target.resource, target.namespace.as_deref())
        .into_iter()
        .filter(|object| selected(object, &labels, &fields))
        .cloned()
        .collect();
    let offset: usize = query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = matching.iter().skip(offset).take(limit).cloned().collect();
    let mut metadata = json!({"resourceVersion": state.store.revision().to_string()});
    if offset.saturating_add(page.len()) < matching.len() {
        metadata["continue"] = json!((offset + page.len()).to_string());
        metadata["remainingItemCount"] = json!(matching.len() - offset - page.len());
    }
    json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", target.resource.kind),
            "apiVersion": target.resource.api_version(),
            "metadata": metadata,
            "items": page,
        }),
    )
}

fn parse_body(text: &str) -> Result<Value, Rejection> {
    serde_json::from_str(text).map_err(|error| {
        Box::new(bad_request(format!(
            "the fake API server reads request bodies only as JSON: {error}"
        )))
    })
}

/// Checks `kind`, `apiVersion`, the name and the namespace of a body
/// against the path, and fills in the namespace.
fn check_identity(
    target: &Target,
    object: &mut Value,
    require_name: bool,
) -> Result<(), Rejection> {
    let resource = target.resource;
    if let Some(kind) = object.get("kind").and_then(Value::as_str) {
        if kind != resource.kind {
            return Err(Box::new(bad_request(format!(
                "the body is a {kind}, but the path names {}",
                resource.qualified()
            ))));
        }
    }
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str) {
        if api_version != resource.api_version() {
            return Err(Box::new(bad_request(format!(
                "the body's apiVersion {api_version} does not match {} on the path",
                resource.api_version()
            ))));
        }
    }
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    if let Some(path_name) = &target.name {
        let body_name = name_of(object);
        if body_name.is_empty() && !require_name {
            object["metadata"]["name"] = json!(path_name);
        } else if body_name != *path_name {
            return Err(Box::new(bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({path_name})"
            ))));
        }
    }
    if let Some(namespace) = &target.namespace {
        let body_namespace = namespace_of(object);
        if !body_namespace.is_empty() && body_namespace != *namespace {
            return Err(Box::new(bad_request(
                "the namespace of the provided object does not match the namespace sent on the request".to_owned(),
            )));
        }
        object["metadata"]["namespace"] = json!(namespace);
    }
    Ok(())
}

/// Fills in what the API server derives on writes: a Secret's
/// `stringData` moved into `data`, a Service's cluster IP, and the
/// defaults the fake's controller reads.
fn normalize(resource: &ResourceType, object: &mut Value, cluster_ip: &str) {
    match resource.kind {
        "Secret" => {
            if let Some(string_data) = object.as_object_mut().and_then(|o| o.remove("stringData")) {
                for (key, value) in string_data.as_object().into_iter().flatten() {
                    let encoded = base64::engine::general_purpose::STANDARD
                        .encode(value.as_str().unwrap_or_default());
                    object["data"][key] = json!(encoded);
                }
            }
            if object.get("type").is_none() {
                object["type"] = json!("Opaque");
            }
        }
        "Service" => {
            if object["spec"].get("clusterIP").is_none() {
                object["spec"]["clusterIP"] = json!(cluster_ip);
            }
            if object["spec"].get("type").is_none() {
                object["spec"]["type"] = json!("ClusterIP");
            }
        }
        "Deployment" => {
            if object["spec"].get("replicas").is_none() {
                object["spec"]["replicas"] = json!(1);
            }
            if object["spec"].get("progressDeadlineSeconds").is_none() {
                object["spec"]["progressDeadlineSeconds"] = json!(600);
            }
        }
        _ => {}
    }
}

fn create(shared: &Shared, target: &Target, query: &Query, manager: &str, body: &str) -> Response {
    let mut object = match parse_body(body) {
        Ok(object) => object,
        Err(response) => return *response,
    };
    if let Err(response) = check_identity(target, &mut object, true) {
        return *response;
    }
    let mut state = shared.lock();
    if name_of(&object).is_empty() {
        match object["metadata"]["generateName"].as_str() {
            Some(prefix) => {
                let name = format!("{prefix}{:05x}", state.store.revision() & 0xfffff);
                object["metadata"]["name"] = json!(name);
            }
            None => {
                return status_error(
                    422,
                    "Invalid",
                    format!("{} \"\" is invalid: metadata.name: Required value: name or generateName is required", target.resource.kind),
                    None,
                )
            }
        }
    }
    let name = name_of(&object);
    let namespace = namespace_of(&object);
    if target.resource.namespaced && !state.store.namespace_exists(&namespace) {
        return namespace_not_found(&namespace);
    }
    if state
        .store
        .get(target.resource, &namespace, &name)
        .is_some()
    {
        return status_error(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", target.resource.qualified()),
            Some(
                json!({"name": name, "group": target.resource.group, "kind": target.resource.plural}),
            ),
        );
    }
    let cluster_ip = state.next_cluster_ip();
    normalize(target.resource, &mut object, &cluster_ip);
    let time = now();
    let context = ApplyContext {
        manager,
        force: false,
        api_version: &target.resource.api_version(),
        now: &time,
        subresource: None,
    };
    patch::record_update(&json!({}), &mut object, &context);
    if query.get("dryRun").is_some() {
        return json_response(StatusCode::CREATED, &object);
    }
    let created = state.store.create(target.resource, object, &time);
    drop(state);
    shared.wake.notify_one();
    json_response(StatusCode::CREATED, &created)
}

fn replace(shared: &Shared, target: &Target, manager: &str, body: &str) -> Response {
    let mut object = match parse_body(body) {
        Ok(object) => object,
        Err(response) => return *response,
    };
    let subresource = target.subresource.as_deref();
    if subresource != Some("scale") {
        if let Err(response) = check_identity(target, &mut object, false) {
            return *response;
        }
    }
    let mut state = shared.lock();
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let Some(old) = state.store.get(target.resource, &namespace, &name).cloned() else {
        return not_found(target.resource, &name);
    };
    let given_version = object["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned);
    if given_version
        .is_some_and(|v| Some(v.as_str()) != old["metadata"]["resourceVersion"].as_str())
    {
        return conflict_modified(target.resource, &name);
    }
    let mut new = match subresource {
        Some("scale") => with_scale(&old, &object),
        Some("status") => with_status(&old, &object),
        _ => keep_server_fields(&old, object),
    };
    let time = now();
    let context = ApplyContext {
        manager,
        force: false,
        api_version: &target.resource.api_version(),
        now: &time,
        subresource,
    };
    patch::record_update(&old, &mut new, &context);
    let stored = state.store.update(target.resource, new);
    drop(state);
    shared.wake.notify_one();
    respond_written(subresource, &stored)
}

fn conflict_modified(resource: &ResourceType, name: &str) -> Response {
    status_error(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            resource.qualified()
        ),
        Some(json!({"name": name, "group": resource.group, "kind": resource.plural})),
    )
}

/// Keeps the server-owned metadata and the status of `old` in a replacement.
fn keep_server_fields(old: &Value, mut new: Value) -> Value {
    for key in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
        new["metadata"][key] = old["metadata"][key].clone();
    }
    if new["metadata"]["managedFields"].is_null() {
        new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
    }
    match old.get("status") {
        Some(status) => new["status"] = status.clone(),
        None => {
            if let Some(object) = new.as_object_mut() {
                object.remove("status");
            }
        }
    }
    new
}

fn with_status(old: &Value, new: &Value) -> Value {
    let mut object = old.clone();
    object["status"] = new.get("status").cloned().unwrap_or(Value::Null);
    object
}

/// Builds the `autoscaling/v1` `Scale` of a Deployment.
fn scale_of(object: &Value) -> Value {
    let labels = object["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let selector: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
            "creationTimestamp": object["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"]},
        "status": {"replicas": object["status"]["replicas"].as_u64().unwrap_or(0), "selector": selector.join(",")},
    })
}

fn with_scale(old: &Value, scale: &Value) -> Value {
    let mut object = old.clone();
    if let Some(replicas) = scale["spec"].get("replicas") {
        object["spec"]["replicas"] = replicas.clone();
    }
    object
}

fn respond_written(subresource: Option<&str>, stored: &Value) -> Response {
    if subresource == Some("scale") {
        json_response(StatusCode::OK, &scale_of(stored))
    } else {
        json_response(StatusCode::OK, stored)
    }
}

fn patch_object(
    shared: &Shared,
    target: &Target,
    query: &Query,
    manager: &str,
    content_type: Option<&str>,
    body: &str,
) -> Response {
    let patch_body = match parse_body(body) {
        Ok(value) => value,
        Err(response) => return *response,
    };
    let media_type = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let subresource = target.subresource.as_deref();
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let mut state = shared.lock();
    let existing = state.store.get(target.resource, &namespace, &name).cloned();
    let time = now();
    let api_version = target.resource.api_version();
    let context = ApplyContext {
        manager,
        force: query.flag("force"),
        api_version: &api_version,
        now: &time,
        subresource,
    };

    let (old, new) = match media_type {
        "application/apply-patch+yaml" => {
            if query.get("fieldManager").is_none() {
                return bad_request(
                    "PATCH, fieldManager is required for apply requests".to_owned(),
                );
            }
            let mut applied = patch_body;
            if subresource != Some("scale") {
                if let Err(response) = check_identity(target, &mut applied, true) {
                    return *response;
                }
            }
            if existing.is_none()
                && target.resource.namespaced
                && !state.store.namespace_exists(&namespace)
            {
                return namespace_not_found(&namespace);
            }
            let old = existing.clone().unwrap_or_else(|| {
                json!({"apiVersion": api_version, "kind": target.resource.kind, "metadata": {"name": name, "namespace": namespace}})
            });
            let (mut base, applied) = match subresource {
                Some("scale") => match existing {
                    Some(ref object) => (scale_of(object), applied),
                    None => return not_found(target.resource, &name),
                },
                _ => (old.clone(), applied),
            };
            if let Err(conflicts) = patch::apply(&mut base, &applied, &context) {
                return apply_conflict(target.resource, &name, &conflicts);
            }
            let new = match subresource {
                Some("scale") => with_scale(&old, &base),
                Some("status") => with_status(&old, &base),
                _ => {
                    let mut new = base;
                    match old.get("status") {
                        Some(status) => new["status"] = status.clone(),
                        None => {
                            if let Some(object) = new.as_object_mut() {
                                object.remove("status");
                            }
                        }
                    }
                    new
                }
            };
            (existing, new)
        }
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let Some(old) = existing else {
                return not_found(target.resource, &name);
            };
            let mut base = if subresource == Some("scale") {
                scale_of(&old)
            } else {
                old.clone()
            };
            if media_type == "application/merge-patch+json" {
                patch::merge_patch(&mut base, &patch_body);
            } else {
                patch::strategic_merge_patch(&mut base, &patch_body);
            }
            let mut new = match subresource {
                Some("scale") => with_scale(&old, &base),
                Some("status") => with_status(&old, &base),
                _ => keep_server_fields(&old, base),
            };
            patch::record_update(&old, &mut new, &context);
            (Some(old), new)
        }
        other => {
            return status_error(
                415,
                "UnsupportedMediaType",
                format!("the fake API server does not support the patch type {other:?}"),
                None,
            )
        }
    };

    if query.get("dryRun").is_some() {
        return respond_written(subresource, &new);
    }
    let created = old.is_none();
    let stored = if created {
        let cluster_ip = state.next_cluster_ip();
        let mut new = new;
        normalize(target.resource, &mut new, &cluster_ip);
        state.store.create(target.resource, new, &time)
    } else {
        let mut new = new;
        let cluster_ip = state.next_cluster_ip();
        normalize(target.resource, &mut new, &cluster_ip);
        state.store.update(target.resource, new)
    };
    drop(state);
    shared.wake.notify_one();
    if created {
        json_response(StatusCode::CREATED, &stored)
    } else {
        respond_written(subresource, &stored)
    }
}

fn apply_conflict(resource: &ResourceType, name: &str, conflicts: &[Conflict]) -> Response {
    let lines: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field_text()))
        .collect();
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{}\"", c.manager),
                "field": c.field_text(),
            })
        })
        .collect();
    let noun = if conflicts.len() == 1 {
        "conflict"
    } else {
        "conflicts"
    };
    status_error(
        409,
        "Conflict",
        format!(
            "Apply failed with {} {noun}: {}",
            conflicts.len(),
            lines.join("\n")
        ),
        Some(
            json!({"name": name, "group": resource.group, "kind": resource.plural, "causes": causes}),
        ),
    )
}

fn delete(shared: &Shared, target: &Target, body: &str) -> Response {
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let options: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut state = shared.lock();
    let stored_uid = state
        .store
        .get(target.resource, &namespace, &name)
        .map(|object| object["metadata"]["uid"].clone());
    if let (Some(expected), Some(actual)) = (options["preconditions"]["uid"].as_str(), &stored_uid)
    {
        if actual != expected {
            return status_error(
                409,
                "Conflict",
                format!(
                    "Precondition failed: UID in precondition: {expected}, UID in object meta: {}",
                    actual.as_str().unwrap_or_default()
                ),
                None,
            );
        }
    }
    match state.delete_cascading(target.resource, &namespace, &name) {
        Some(object) => {
            drop(state);
            shared.wake.notify_one();
            json_response(StatusCode::OK, &object)
        }
        None => not_found(target.resource, &name),
    }
}

fn delete_collection(shared: &Shared, target: &Target, query: &Query) -> Response {
    let (labels, fields) = match selectors(query) {
        Ok(selectors) => selectors,
        Err(response) => return *response,
    };
    let mut state = shared.lock();
    let doomed: Vec<(String, String)> = state
        .store
        .list(target.resource, target.namespace.as_deref())
        .into_iter()
        .filter(|object| selected(object, &labels, &fields))
        .map(|object| (namespace_of(object), name_of(object)))
        .collect();
    let deleted: Vec<Value> = doomed
        .iter()
        .filter_map(|(namespace, name)| state.delete_cascading(target.resource, namespace, name))
        .collect();
    let revision = state.store.revision();
    drop(state);
    shared.wake.notify_one();
    json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", target.resource.kind),
            "apiVersion": target.resource.api_version(),
            "metadata": {"resourceVersion": revision.to_string()},
            "items": deleted,
        }),
    )
}

/// Creates a streaming response and the sender that feeds its body.
pub fn streaming_response(
    content_type: &str,
) -> (tokio::sync::mpsc::Sender<axum::body::Bytes>, Response) {
    let (sender, receiver) = tokio::sync::mpsc::channel::<axum::body::Bytes>(64);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), receiver))
    });
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    (sender, response)
}
