//! The Kubernetes backend: shipdeck as a client of a cluster, which does
//! the scheduling.
//!
//! - [`connect`] chooses the cluster as kubectl does and builds the client;
//! - [`exec`] runs exec credential plugins without a terminal and with a
//!   timeout;
//! - [`error`] names the server, context, verb, resource and namespace of
//!   each failure.

pub mod connect;
pub mod error;
pub mod exec;

pub use connect::{
    connect, list_contexts, ClusterTarget, Connection, ContextStatus, KubeEnvironment,
};
pub use error::{KubeError, RequestScope};
