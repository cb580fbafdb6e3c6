//! Errors of the stable endpoint.

use std::io;
use std::net::SocketAddr;

/// Failure to set up an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Another socket already listens on the address.
    #[error(
        "listening on {address} failed: port {port} is already in use; \
         stop the process that listens on it or choose another hostPort"
    )]
    AddressInUse { address: SocketAddr, port: u16 },

    /// The process may not listen on the port.
    #[error(
        "listening on {address} failed: permission denied for port {port}; \
         ports below 1024 need privileges, so choose a hostPort of 1024 or above"
    )]
    PermissionDenied { address: SocketAddr, port: u16 },

    /// Any other failure of `bind` or `listen`.
    #[error(
        "listening on {address} failed: {source}; check the address and the network configuration"
    )]
    Bind {
        address: SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl EndpointError {
    pub(crate) fn from_bind(address: SocketAddr, source: io::Error) -> EndpointError {
        let port = address.port();
        match source.kind() {
            io::ErrorKind::AddrInUse => EndpointError::AddressInUse { address, port },
            io::ErrorKind::PermissionDenied => EndpointError::PermissionDenied { address, port },
            _ => EndpointError::Bind { address, source },
        }
    }
}
