//! TLS for https webhooks: the roots a webhook's certificate is checked
//! against, a channel's private CA, and errors that say what to do.
//!
//! Certificates are always verified, names included; there is deliberately
//! no switch to turn that off. A channel whose server uses a private CA
//! trusts that CA with `--ca-file` instead.

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::{
    self,
    client::WebPkiServerVerifier,
    pki_types::{pem::PemObject, CertificateDer},
    CertificateError, ClientConfig, RootCertStore,
};

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
    let roots = match channel_ca {
        None => Arc::clone(&system.store),
        Some(pem) => {
            let mut store = (*system.store).clone();
            let certificates = parse_ca_pem(pem.as_bytes())
                .map_err(|error| format!("the channel's CA certificates are not usable: {error}; add the channel again with a valid --ca-file"))?;
            store.add_parsable_certificates(certificates);
            Arc::new(store)
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
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
        .build()
        .map_err(|error| format!("setting up certificate checks failed: {error}"))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("setting up TLS failed: {error}"))?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
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
        let tls_error = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls_error {
            Some(rustls::Error::InvalidCertificate(problem)) => self.explain_certificate(host, problem),
            Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => format!(
                "{host} did not respond with TLS ({error}); check that the endpoint serves https on that port, or use an http:// URL"
            ),
            Some(rustls::Error::AlertReceived(alert)) => format!(
                "{host} refused the TLS handshake with the alert {alert:?}; check the server's TLS settings"
            ),
            _ => format!("the TLS handshake with {host} failed: {error}"),
        }
    }

    fn explain_certificate(&self, host: &str, problem: &CertificateError) -> String {
        match problem {
            CertificateError::UnknownIssuer => {
                let checked = if self.has_channel_ca {
                    "the system's trust store or in the channel's --ca-file"
                } else {
                    "the system's trust store"
                };
                let system = self
                    .system_problem
                    .map(|problem| format!(" ({problem})"))
                    .unwrap_or_default();
                format!("the certificate of {host} is not trusted: it is not signed by a CA in {checked}{system}; pass --ca-file with the CA that signed it (PEM), or have the server send its full certificate chain")
            }
            CertificateError::NotValidForNameContext { presented, .. } if !presented.is_empty() => {
                let names: Vec<&str> = presented.iter().map(|name| plain_name(name)).collect();
                format!(
                    "the certificate of {host} is for {} (name mismatch); use one of those names in the URL, or have the server's certificate issued for {host}",
                    names.join(", ")
                )
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the certificate of {host} is for another name (name mismatch); use the host name the certificate was issued for in the URL"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the certificate of {host} has expired; renew it on the server"
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the certificate of {host} is not valid yet; check the clocks of this host and the server"
            ),
            other => format!(
                "the certificate of {host} was rejected ({other:?}); fix the server's certificate or pass --ca-file with the CA that signed it"
            ),
        }
    }
}

/// Takes a name of a certificate out of the form webpki reports it in,
/// `DnsName("host")` or `IpAddress(192.0.2.1)`.
fn plain_name(presented: &str) -> &str {
    for (prefix, suffix) in [("DnsName(\"", "\")"), ("IpAddress(", ")")] {
        if let Some(name) = presented
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
        {
            return name;
        }
    }
    presented
}

#[cfg(test)]
mod tests {
    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(
            plain_name("DnsName(\"hooks.example.test\")"),
            "hooks.example.test"
        );
        assert_eq!(plain_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(plain_name("something else"), "something else");
    }

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
