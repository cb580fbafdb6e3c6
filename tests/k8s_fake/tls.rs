//! HTTPS for the fake API server: a test CA, a server certificate for
//! 127.0.0.1 signed by it, and client certificates signed by it, which
//! the server accepts for mutual TLS and records with each request.
//! A client without a certificate is served too, as a real API server
//! serves token clients.

use std::sync::Arc;

use axum::extract::Request;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// The DER of the certificate a client presented, put into each request's
/// extensions for the request log.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub Vec<u8>);

/// A client certificate issued by the test CA.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub certificate_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// The test CA and the server's TLS configuration.
pub struct FakeTls {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    config: Arc<ServerConfig>,
}

impl FakeTls {
    pub fn new() -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "shipdeck fake cluster CA");
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        server_params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        let server_key = KeyPair::generate().expect("server key");
        let server = server_params
            .signed_by(&server_key, &issuer)
            .expect("server certificate");

        let mut roots = RootCertStore::empty();
        roots
            .add(ca.der().clone())
            .expect("the CA as a client root");
        // rustls 0.23.48 deprecates ring's provider for its lack of
        // post-quantum key exchange, which a local test server does not need.
        #[allow(deprecated)]
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .expect("a client certificate verifier");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server.der().clone()], key)
            .expect("the server's TLS configuration");
        FakeTls {
            ca_pem: ca.pem(),
            issuer,
            config: Arc::new(config),
        }
    }

    /// Issues a client certificate for the user `name`.
    pub fn client_certificate(&self, name: &str) -> IssuedCertificate {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("client key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("client certificate");
        IssuedCertificate {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().to_vec(),
        }
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(&self.config))
    }
}

/// Serves `router` over TLS on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, router: axum::Router) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_connection(stream, acceptor.clone(), router.clone()));
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    router: axum::Router,
) {
    // A failed handshake (an untrusted client certificate) ends only this connection.
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let presented = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf: &CertificateDer<'_>| ClientCertificate(leaf.to_vec()));
    let service = WithCertificate { router, presented };
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
        .with_upgrades()
        .await;
}

/// The router, with the client's certificate added to each request.
#[derive(Clone)]
struct WithCertificate {
    router: axum::Router,
    presented: Option<ClientCertificate>,
}

impl Service<Request<hyper::body::Incoming>> for WithCertificate {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <axum::Router as Service<Request>>::Future;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        Service::<Request>::poll_ready(&mut self.router, context)
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let mut request = request.map(axum::body::Body::new);
        if let Some(presented) = &self.presented {
            request.extensions_mut().insert(presented.clone());
        }
        self.router.call(request)
    }
}
