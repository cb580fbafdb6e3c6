//! The Kubernetes backend: shipdeck as a client of a cluster, which does
//! the scheduling.
//!
//! - [`apply`] applies a revision's objects with server-side apply and
//!   deletes a deployment's objects by label;
//! - [`autoscaler`] turns the HorizontalPodAutoscaler's status into the
//!   view every backend's autoscaling has;
//! - [`connect`] chooses the cluster as kubectl does and builds the client;
//! - [`exec`] runs exec credential plugins without a terminal and with a
//!   timeout;
//! - [`labels`] names the objects and marks them as this agent's;
//! - [`render`] turns a revision into a Deployment, Service, Secret and
//!   HorizontalPodAutoscaler;
//! - [`events`] picks the cluster's events about the deployment's objects
//!   for its timeline;
//! - [`logs`] copies every pod's output, and the previous container's
//!   after a restart, into the log pipeline;
//! - [`metrics`] reads the pods' CPU and memory from `metrics.k8s.io`;
//! - [`status`] follows a deployment's Deployment, pods and autoscaler
//!   through watches and summarizes them;
//! - [`error`] names the server, context, verb, resource and namespace of
//!   each failure.

pub mod apply;
pub mod autoscaler;
pub mod connect;
pub mod error;
pub mod events;
pub mod exec;
pub mod labels;
pub mod logs;
pub mod metrics;
pub mod render;
pub mod status;

pub use connect::{
    connect, list_contexts, ClusterTarget, Connection, ContextStatus, KubeEnvironment,
};
pub use error::{KubeError, RequestScope};
