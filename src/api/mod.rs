//! The agent's API: REST with JSON bodies under `/v1`, served on a private
//! Unix socket (and, when asked, on TCP behind a bearer token), and the
//! client the CLI uses.

pub mod client;
mod config;
mod logs;
pub mod server;
mod watch;
pub mod wire;
