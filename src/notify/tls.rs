//! TLS for https webhooks: the roots a webhook's certificate is checked
//! against, a channel's private CA, and errors that say what to do.
//!
//! Certificates are always verified, names included; there is deliberately
//! no switch to turn that off. A channel whose server uses a private CA
//! trusts that CA with `--ca-file` instead.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    client::WebPkiServerVerifier,
    pki_types::{pem::PemObject, CertificateDer, ServerName, UnixTime},
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::tls_explain;

/// A reason that PEM text given as a channel's CA cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("it holds no PEM certificate (a block starting with -----BEGIN CERTIFICATE-----); if it is DER, convert it with `openssl x509 -inform der -in FILE -out FILE.pem`")]
    NoCertificates,
    #[error("its PEM text is malformed ({0}); export the CA certificate again")]
    Pem(String),
    #[error("certificate {index} in it is not a CA certificate shipdeck can use ({reason}); give the certificate of the CA that signed the webhook's certificate")]
    Certificate { index: usize, reason: String },
}

/// Parses and checks PEM CA certificates, as `notify add --ca-file` gives
/// them.
pub fn parse_ca_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| CaError::Pem(error.to_string()))?;
    if certificates.is_empty() {
        return Err(CaError::NoCertificates);
    }
    let mut store = RootCertStore::empty();
    for (index, certificate) in certificates.iter().enumerate() {
        store
            .add(certificate.clone())
            .map_err(|error| CaError::Certificate {
                index: index + 1,
                reason: error.to_string(),
            })?;
    }
    Ok(certificates)
}

/// The system's trust store, loaded once per process.
struct SystemRoots {
    store: Arc<RootCertStore>,
    /// Set when no certificate loaded, to be named in "not trusted" errors.
    problem: Option<String>,
}

static SYSTEM_ROOTS: OnceLock<SystemRoots> = OnceLock::new();

fn load_system_roots() -> SystemRoots {
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(loaded.certs);
    let problem = (added == 0).then(|| {
        let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        let detail = if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join("; "))
        };
        format!("no CA certificate loaded from the system's trust store{detail}; install the ca-certificates package, or set SSL_CERT_FILE or SSL_CERT_DIR in the agent's environment")
    });
    if let Some(problem) = &problem {
        tracing::warn!(%problem, "https webhooks trust only their channels' CA files");
    }
    SystemRoots {
        store: Arc::new(store),
        problem,
    }
}

/// Reads the system's trust store on first use, on a blocking thread
/// because it reads files.
async fn system_roots() -> &'static SystemRoots {
    if let Some(roots) = SYSTEM_ROOTS.get() {
        return roots;
    }
    let loaded = tokio::task::spawn_blocking(load_system_roots)
        .await
        .unwrap_or_else(|_| load_system_roots());
    SYSTEM_ROOTS.get_or_init(|| loaded)
}

/// The TLS client configuration of one webhook connection, with the context
/// that a failed handshake is explained in.
pub struct Trust {
    pub config: Arc<ClientConfig>,
    has_channel_ca: bool,
    system_problem: Option<&'static str>,
}

/// Builds the client configuration for a channel: the system's roots plus
/// the channel's own CA, if it has one.
pub async fn trust(channel_ca: Option<&str>) -> Result<Trust, String> {
    let system = system_roots().await;
    let (roots, pinned) = match channel_ca {
        None => (Arc::clone(&system.store), Vec::new()),
        Some(pem) => {
            let mut store = (*system.store).clone();
            let certificates = parse_ca_pem(pem.as_bytes())
                .map_err(|error| format!("the channel's CA certificates are not usable: {error}; add the channel again with a valid --ca-file"))?;
            store.add_parsable_certificates(certificates.clone());
            (Arc::new(store), certificates)
        }
    };
    if roots.is_empty() {
        let problem = system.problem.as_deref().unwrap_or("no CA certificate");
        return Err(format!(
            "{problem}, or pass --ca-file with the CA that signed the webhook's certificate"
        ));
    }
    // rustls 0.23.48 deprecates ring's provider because it lacks post-quantum
    // key exchange, which only aws-lc-rs offers. aws-lc-rs needs cmake and
    // builds slowly, and classical key exchange is enough for notifications.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|error| format!("setting up certificate checks failed: {error}"))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("setting up TLS failed: {error}"))?;
    let config = if pinned.is_empty() {
        builder.with_webpki_verifier(webpki).with_no_client_auth()
    } else {
        // "dangerous" is rustls's name for any custom verifier. This one
        // runs webpki's checks first and relaxes only one (see PinningVerifier).
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinningVerifier { webpki, pinned }))
            .with_no_client_auth()
    };
    Ok(Trust {
        config: Arc::new(config),
        has_channel_ca: channel_ca.is_some(),
        system_problem: system.problem.as_deref(),
    })
}

impl Trust {
    /// Turns a failed TLS handshake with `host` (as in the URL) into an
    /// error that names the host, the reason and what to do.
    pub fn explain(&self, host: &str, error: &std::io::Error) -> String {
        let context = tls_explain::Context {
            host,
            has_channel_ca: self.has_channel_ca,
            system_problem: self.system_problem,
        };
        tls_explain::handshake(&context, error)
    }
}

/// Verifies like webpki, and also accepts a server certificate that is
/// byte for byte one of the channel's `--ca-file` certificates when webpki's
/// only objection is that it is a CA certificate (`CaUsedAsEndEntity`).
///
/// `openssl req -x509` marks a self-signed certificate CA:TRUE by default,
/// and webpki never accepts a CA certificate as a server's own, even as its
/// own trust anchor. Trusting the exact certificate the operator gave for
/// this channel is pinning, which is as strict as a CA: nothing but that
/// certificate, and so that private key, passes. The names are still
/// checked here. Its validity period was already checked, because webpki
/// checks the dates before the basic constraints (rustls-webpki 0.103; a
/// test with an expired pinned certificate keeps that true). The handshake
/// signature is checked by the webpki verifier as for any server.
#[derive(Debug)]
struct PinningVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(error) if is_ca_used_as_end_entity(&error) && self.is_pinned(end_entity) => {
                check_pinned_names(end_entity, server_name)
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls12_signature(message, certificate, signature)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki
            .verify_tls13_signature(message, certificate, signature)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

impl PinningVerifier {
    fn is_pinned(&self, certificate: &CertificateDer<'_>) -> bool {
        self.pinned
            .iter()
            .any(|pinned| pinned.as_ref() == certificate.as_ref())
    }
}

fn is_ca_used_as_end_entity(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

fn check_pinned_names(
    certificate: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
) -> Result<ServerCertVerified, rustls::Error> {
    let parsed = webpki::EndEntityCert::try_from(certificate)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    match parsed.verify_is_valid_for_subject_name(server_name) {
        Ok(()) => Ok(ServerCertVerified::assertion()),
        Err(webpki::Error::CertNotValidForName(context)) => Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: context.expected,
                presented: context.presented,
            },
        )),
        Err(_) => Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("CA key");
        params.self_signed(&key).expect("CA certificate").pem()
    }

    #[test]
    fn a_pem_ca_certificate_is_accepted() {
        let pem = test_ca_pem();
        assert_eq!(parse_ca_pem(pem.as_bytes()).expect("valid CA").len(), 1);
        let two = format!("{pem}{pem}");
        assert_eq!(parse_ca_pem(two.as_bytes()).expect("a bundle").len(), 2);
    }

    #[test]
    fn text_without_certificates_is_refused() {
        let key = rcgen::KeyPair::generate().expect("key").serialize_pem();
        for text in ["", "not a certificate\n", key.as_str()] {
            let error = parse_ca_pem(text.as_bytes()).expect_err(text);
            assert!(matches!(error, CaError::NoCertificates), "{error}");
            assert!(error.to_string().contains("BEGIN CERTIFICATE"), "{error}");
        }
    }

    #[test]
    fn broken_certificate_blocks_are_refused() {
        let truncated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert!(matches!(
            parse_ca_pem(truncated.as_bytes()),
            Err(CaError::Pem(_))
        ));
        let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
        let error = parse_ca_pem(garbage.as_bytes()).expect_err("not X.509");
        assert!(
            matches!(error, CaError::Certificate { index: 1, .. }),
            "{error}"
        );
    }
}
