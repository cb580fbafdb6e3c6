//! Applying a revision's objects with server-side apply, and deleting a
//! deployment's objects by label.
//!
//! shipdeck applies as the field manager `shipdeck` with `force=true`: it
//! owns the objects it renders and takes back a field that someone changed
//! by hand (`kubectl edit`), as a controller does. It never applies over,
//! or deletes, an object whose labels do not name this agent's home and
//! this deployment: an existing object of the same name that it did not
//! create is an error.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::connect::Connection;
use super::error::{KubeError, RequestScope};
use super::labels::{
    ObjectIdentity, LABEL_DEPLOYMENT, LABEL_ENVIRONMENT, LABEL_HOME, LABEL_REVISION,
};
use super::render::ClusterObjects;

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "shipdeck";

/// The operations that apply and delete need of an object type.
pub trait Applied:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}

impl<K> Applied for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

/// `deployments.apps`, `services`: the resource as errors name it.
pub fn resource_name<K: Applied>() -> String {
    let plural = K::plural(&());
    let group = K::group(&());
    if group.is_empty() {
        plural.into_owned()
    } else {
        format!("{plural}.{group}")
    }
}

/// Applies one revision's objects: the Secret first, because the pods read
/// it when they start, then the Deployment, its Service and its
/// autoscaler. A Service or autoscaler that an earlier revision had and
/// this one has not is deleted.
pub async fn apply_objects(
    connection: &Connection,
    identity: &ObjectIdentity,
    objects: &ClusterObjects,
) -> Result<(), KubeError> {
    if let Some(secret) = &objects.secret {
        apply_one(connection, identity, secret).await?;
    }
    apply_one(connection, identity, &objects.deployment).await?;
    match &objects.service {
        Some(service) => apply_one(connection, identity, service).await?,
        None => delete_named::<Service>(connection, identity, &identity.name).await?,
    }
    match &objects.autoscaler {
        Some(autoscaler) => apply_one(connection, identity, autoscaler).await?,
        None => {
            delete_named::<HorizontalPodAutoscaler>(connection, identity, &identity.name).await?
        }
    }
    Ok(())
}

/// Applies only the autoscaler of `objects`, or deletes this deployment's
/// autoscaler when `objects` has none, for a revision that changes only
/// autoscaling. The Deployment is left as it is, so its pods keep running.
pub async fn apply_autoscaler(
    connection: &Connection,
    identity: &ObjectIdentity,
    objects: &ClusterObjects,
) -> Result<(), KubeError> {
    match &objects.autoscaler {
        Some(autoscaler) => apply_one(connection, identity, autoscaler).await,
        None => delete_named::<HorizontalPodAutoscaler>(connection, identity, &identity.name).await,
    }
}

/// Sets the replica count of this deployment's Deployment through its
/// `scale` subresource, which changes neither its labels nor its pod
/// template, so no pod is replaced.
pub async fn scale_deployment(
    connection: &Connection,
    identity: &ObjectIdentity,
    replicas: u32,
) -> Result<(), KubeError> {
    let resource = format!("{}/scale", resource_name::<Deployment>());
    let api: Api<Deployment> = Api::namespaced(connection.client().clone(), &connection.namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api.patch_scale(&identity.name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|error| connection.classify(error, scope("patch", &resource, connection)))?;
    Ok(())
}

fn scope<'a>(verb: &'a str, resource: &'a str, connection: &'a Connection) -> RequestScope<'a> {
    RequestScope {
        verb,
        resource,
        namespace: Some(&connection.namespace),
    }
}

/// Whether an object carries this deployment's and this home's labels.
pub fn is_ours<K: Applied>(object: &K, identity: &ObjectIdentity) -> bool {
    let labels = object.meta().labels.as_ref();
    let label = |key: &str| {
        labels
            .and_then(|labels| labels.get(key))
            .map(String::as_str)
    };
    label(LABEL_HOME) == Some(identity.home_label.as_str())
        && label(LABEL_DEPLOYMENT) == Some(identity.key.name.as_str())
        && label(LABEL_ENVIRONMENT) == Some(identity.key.environment.as_str())
}

/// Applies one object after checking that an existing object of its name
/// is this deployment's.
pub async fn apply_one<K: Applied>(
    connection: &Connection,
    identity: &ObjectIdentity,
    object: &K,
) -> Result<(), KubeError> {
    let name = object.meta().name.clone().unwrap_or_default();
    let resource = resource_name::<K>();
    let api: Api<K> = Api::namespaced(connection.client().clone(), &connection.namespace);

    let existing = api
        .get_opt(&name)
        .await
        .map_err(|error| connection.classify(error, scope("get", &resource, connection)))?;
    if let Some(existing) = existing {
        if !is_ours(&existing, identity) {
            return Err(KubeError::NotOurs {
                resource,
                name,
                namespace: connection.namespace.clone(),
            });
        }
    }

    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map_err(|error| connection.classify(error, scope("patch", &resource, connection)))?;
    Ok(())
}

/// Deletes the object `name` if it is this deployment's; a missing one or
/// another owner's is left alone.
async fn delete_named<K: Applied>(
    connection: &Connection,
    identity: &ObjectIdentity,
    name: &str,
) -> Result<(), KubeError> {
    let resource = resource_name::<K>();
    let api: Api<K> = Api::namespaced(connection.client().clone(), &connection.namespace);
    let existing = api
        .get_opt(name)
        .await
        .map_err(|error| connection.classify(error, scope("get", &resource, connection)))?;
    match existing {
        Some(object) if is_ours(&object, identity) => {
            delete_exact(connection, &api, &object, &resource).await
        }
        _ => Ok(()),
    }
}

/// Deletes this very object: the uid precondition keeps a newer object of
/// the same name safe.
async fn delete_exact<K: Applied>(
    connection: &Connection,
    api: &Api<K>,
    object: &K,
    resource: &str,
) -> Result<(), KubeError> {
    let name = object.meta().name.clone().unwrap_or_default();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.meta().uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        // Gone already, or replaced by an object with another uid.
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => Ok(()),
        Err(error) => Err(connection.classify(error, scope("delete", resource, connection))),
    }
}

/// Deletes every object of one type that carries this deployment's and
/// this home's labels, and returns how many it deleted.
pub async fn delete_labelled<K: Applied>(
    connection: &Connection,
    identity: &ObjectIdentity,
) -> Result<usize, KubeError> {
    let resource = resource_name::<K>();
    let api: Api<K> = Api::namespaced(connection.client().clone(), &connection.namespace);
    let selector = identity.selector_text();
    let listed = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|error| connection.classify(error, scope("list", &resource, connection)))?;
    let mut deleted = 0;
    for object in listed
        .items
        .iter()
        .filter(|object| is_ours(*object, identity))
    {
        delete_exact(connection, &api, object, &resource).await?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Deletes everything shipdeck created for one deployment: its autoscaler,
/// Deployment (whose pods the cluster removes with it), Service and
/// Secrets. Returns the number of objects deleted.
pub async fn delete_objects(
    connection: &Connection,
    identity: &ObjectIdentity,
) -> Result<usize, KubeError> {
    let mut deleted = delete_labelled::<HorizontalPodAutoscaler>(connection, identity).await?;
    deleted += delete_labelled::<Deployment>(connection, identity).await?;
    deleted += delete_labelled::<Service>(connection, identity).await?;
    deleted += delete_labelled::<Secret>(connection, identity).await?;
    Ok(deleted)
}

/// Deletes the Secrets of every revision but `keep`, once `keep` has
/// rolled out and no pod of an older revision can start again and need
/// one. Returns how many it deleted.
pub async fn delete_older_secrets(
    connection: &Connection,
    identity: &ObjectIdentity,
    keep: u64,
) -> Result<usize, KubeError> {
    let resource = resource_name::<Secret>();
    let api: Api<Secret> = Api::namespaced(connection.client().clone(), &connection.namespace);
    let listed = api
        .list(&ListParams::default().labels(&identity.selector_text()))
        .await
        .map_err(|error| connection.classify(error, scope("list", &resource, connection)))?;
    let keep = keep.to_string();
    let mut deleted = 0;
    for secret in &listed.items {
        let revision = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(LABEL_REVISION));
        if is_ours(secret, identity) && revision != Some(&keep) {
            delete_exact(connection, &api, secret, &resource).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
