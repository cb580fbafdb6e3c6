//! Plain-sentence explanations of failed TLS handshakes.
//!
//! rustls and webpki format many of their errors with `Debug` (such as
//! `Other(OtherError(CaUsedAsEndEntity))`), which means nothing to an operator.
//! Every variant is mapped here to a sentence that names the host, the
//! reason and the fix, and no error type's `Debug` output reaches a message.

use tokio_rustls::rustls::{self, AlertDescription, CertificateError};

/// The trust a handshake was checked against, which changes the advice.
pub(super) struct Context<'a> {
    pub host: &'a str,
    pub has_channel_ca: bool,
    pub system_problem: Option<&'a str>,
}

/// The command that makes a self-signed certificate that works, shown where
/// a server's self-signed certificate is marked as a CA.
pub(super) const SELF_SIGNED_HINT: &str = "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 365 -subj /CN=HOST -addext subjectAltName=DNS:HOST -addext basicConstraints=critical,CA:FALSE";

/// Explains a failed handshake, given the I/O error tokio-rustls returned.
pub(super) fn handshake(context: &Context<'_>, error: &std::io::Error) -> String {
    let host = context.host;
    let Some(tls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        // Not a TLS error: the connection broke, and io::Error's Display is
        // a plain sentence such as "connection reset by peer".
        return format!("the TLS handshake with {host} failed: {error}");
    };
    tls(context, tls_error)
}

fn tls(context: &Context<'_>, error: &rustls::Error) -> String {
    let host = context.host;
    match error {
        rustls::Error::InvalidCertificate(problem) => certificate(context, problem),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => format!(
            "{host} did not respond with TLS (it sent something that is not a valid TLS handshake message); check that the endpoint serves https on that port, or use an http:// URL"
        ),
        rustls::Error::AlertReceived(alert) => format!(
            "{host} ended the TLS handshake with the alert {}; check the server's TLS settings and its log",
            alert_name(*alert)
        ),
        rustls::Error::PeerIncompatible(_) => format!(
            "{host} has no TLS version, cipher suite or key exchange in common with shipdeck, which uses TLS 1.2 and 1.3 with current ciphers; enable those on the server"
        ),
        rustls::Error::PeerMisbehaved(_) => format!(
            "{host} broke the TLS protocol during the handshake; check the server's TLS software and its log"
        ),
        rustls::Error::NoCertificatesPresented => format!(
            "{host} sent no certificate in the TLS handshake; configure a certificate on the server"
        ),
        rustls::Error::DecryptError => format!(
            "a TLS message from {host} could not be decrypted; check the server's TLS software, or a proxy between here and the server"
        ),
        rustls::Error::PeerSentOversizedRecord => format!(
            "{host} sent a TLS record larger than TLS allows; check the server's TLS software"
        ),
        rustls::Error::NoApplicationProtocol => format!(
            "{host} and shipdeck share no application protocol (ALPN); allow HTTP/1.1 on the server"
        ),
        rustls::Error::General(text) => format!("the TLS handshake with {host} failed: {text}"),
        _ => {
            tracing::debug!(host, ?error, "TLS handshake failed without a specific explanation");
            format!(
                "the TLS handshake with {host} failed for a reason shipdeck cannot describe; check the server's TLS settings (the agent's debug log has the details)"
            )
        }
    }
}

fn certificate(context: &Context<'_>, problem: &CertificateError) -> String {
    let host = context.host;
    match problem {
        CertificateError::UnknownIssuer => unknown_issuer(context),
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
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("the certificate of {host} has expired; renew it on the server")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
            "the certificate of {host} is not valid yet; check the clocks of this host and the server"
        ),
        CertificateError::BadEncoding => malformed(host),
        CertificateError::Revoked => format!(
            "the certificate of {host} has been revoked by its CA; install a new certificate on the server"
        ),
        CertificateError::UnhandledCriticalExtension => format!(
            "the certificate of {host} has a critical extension that cannot be checked; issue the certificate without it"
        ),
        CertificateError::UnknownRevocationStatus
        | CertificateError::ExpiredRevocationList
        | CertificateError::ExpiredRevocationListContext { .. }
        | CertificateError::InvalidOcspResponse => format!(
            "the revocation status of the certificate of {host} could not be checked; check the server's OCSP stapling"
        ),
        CertificateError::BadSignature => format!(
            "a signature in the certificate chain of {host} does not match its issuer's key; check that the server sends its own certificate with the chain of the CA that signed it"
        ),
        // Deprecated, but older rustls-webpki versions still produce it.
        #[allow(deprecated)]
        CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => format!(
            "the certificate of {host} is signed with an algorithm that is not supported; issue it with RSA (2048 bits or more), ECDSA P-256 or P-384, or Ed25519, signed with SHA-256 or stronger"
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            wrong_purpose(host)
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(error) => webpki_error(context, error),
            None => generic_rejection(host),
        },
        _ => generic_rejection(host),
    }
}

/// Explains the webpki errors that rustls passes on as `Other`.
fn webpki_error(context: &Context<'_>, error: &webpki::Error) -> String {
    use webpki::Error as E;
    let host = context.host;
    match error {
        E::CaUsedAsEndEntity => ca_as_server_certificate(context),
        E::EndEntityUsedAsCa => format!(
            "a certificate in the chain that {host} sends is used as a CA, but it is marked as not being one (basicConstraints CA:FALSE); have the server send the certificates of the CA chain that signed its certificate"
        ),
        E::PathLenConstraintViolated
        | E::NameConstraintViolation
        | E::CertDistrusted
        | E::MaximumPathDepthExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumNameConstraintComparisonsExceeded => format!(
            "the certificate chain of {host} breaks a limit that a CA in it sets (path length or name constraints), or is too long to check; have the certificate issued by a CA allowed to issue it, with a shorter chain"
        ),
        // Deprecated, but older rustls-webpki versions still produce it.
        #[allow(deprecated)]
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            wrong_purpose(host)
        }
        E::UnsupportedCertVersion => format!(
            "the certificate of {host} is not an X.509 version 3 certificate; issue a version 3 certificate"
        ),
        E::UnsupportedCriticalExtension => format!(
            "the certificate of {host} has a critical extension that cannot be checked; issue the certificate without it"
        ),
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::InvalidCertValidity
        | E::MalformedDnsIdentifier
        | E::MalformedExtensions
        | E::MalformedNameConstraint
        | E::ExtensionValueInvalid
        | E::InvalidSerialNumber
        | E::SignatureAlgorithmMismatch => malformed(host),
        E::UnsupportedNameType => format!(
            "the certificate of {host} names its host in a form that cannot be checked; issue it with subjectAltName DNS or IP entries"
        ),
        _ => generic_rejection(host),
    }
}

fn unknown_issuer(context: &Context<'_>) -> String {
    let checked = if context.has_channel_ca {
        "the system's trust store or in the channel's --ca-file"
    } else {
        "the system's trust store"
    };
    let system = context
        .system_problem
        .map(|problem| format!(" ({problem})"))
        .unwrap_or_default();
    format!(
        "the certificate of {} is not trusted: it is not signed by a CA in {checked}{system}; pass --ca-file with the CA that signed it (PEM), or have the server send its full certificate chain",
        context.host
    )
}

fn ca_as_server_certificate(context: &Context<'_>) -> String {
    let host = context.host;
    let advice = if context.has_channel_ca {
        "the channel's --ca-file does not contain this exact certificate, so it is not trusted as the server's own; pass the server's certificate file itself with --ca-file"
    } else {
        "pass that same certificate file with --ca-file to trust it for this channel"
    };
    format!(
        "the certificate of {host} is a CA certificate (basicConstraints CA:TRUE, as `openssl req -x509` makes by default) used as the server's own; {advice}, or give the server a certificate signed by a CA, or make a self-signed one that is not a CA: `{SELF_SIGNED_HINT}`"
    )
}

fn wrong_purpose(host: &str) -> String {
    format!(
        "the certificate of {host} is not for TLS servers (its extended key usage lacks serverAuth); issue it with extendedKeyUsage=serverAuth, or without that extension"
    )
}

fn malformed(host: &str) -> String {
    format!(
        "the certificate of {host} is malformed and cannot be read; issue the server's certificate again"
    )
}

fn generic_rejection(host: &str) -> String {
    format!(
        "the certificate of {host} was rejected by a check that shipdeck cannot describe; inspect it with `openssl x509 -noout -text -in FILE` and issue it again"
    )
}

/// Names a TLS alert as RFC 8446 spells it, or by number when rustls does
/// not know it.
fn alert_name(alert: AlertDescription) -> String {
    let name = match alert {
        AlertDescription::CloseNotify => "close_notify",
        AlertDescription::UnexpectedMessage => "unexpected_message",
        AlertDescription::BadRecordMac => "bad_record_mac",
        AlertDescription::RecordOverflow => "record_overflow",
        AlertDescription::HandshakeFailure => {
            "handshake_failure (no TLS version or cipher suite in common)"
        }
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::IllegalParameter => "illegal_parameter",
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::AccessDenied => "access_denied",
        AlertDescription::DecodeError => "decode_error",
        AlertDescription::DecryptError => "decrypt_error",
        AlertDescription::ProtocolVersion => "protocol_version (no TLS version in common)",
        AlertDescription::InsufficientSecurity => "insufficient_security",
        AlertDescription::InternalError => "internal_error",
        AlertDescription::InappropriateFallback => "inappropriate_fallback",
        AlertDescription::UserCanceled => "user_canceled",
        AlertDescription::MissingExtension => "missing_extension",
        AlertDescription::UnsupportedExtension => "unsupported_extension",
        AlertDescription::UnrecognisedName => {
            "unrecognized_name (the server has no certificate for that host name)"
        }
        AlertDescription::CertificateRequired => {
            "certificate_required (the server requires a client certificate, which shipdeck does not send)"
        }
        AlertDescription::NoApplicationProtocol => "no_application_protocol",
        other => return format!("number {}", u8::from(other)),
    };
    name.to_owned()
}

/// Takes a name of a certificate out of the form webpki reports it in,
/// `DnsName("host")` or `IpAddress(192.0.2.1)`.
pub(super) fn plain_name(presented: &str) -> &str {
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
    use std::sync::Arc;

    use super::*;
    use tokio_rustls::rustls::OtherError;

    fn context(has_channel_ca: bool) -> Context<'static> {
        Context {
            host: "hooks.example.test",
            has_channel_ca,
            system_problem: None,
        }
    }

    #[test]
    fn presented_names_lose_their_wrapping() {
        assert_eq!(
            plain_name("DnsName(\"hooks.example.test\")"),
            "hooks.example.test"
        );
        assert_eq!(plain_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(plain_name("something else"), "something else");
    }

    /// Every webpki error that rustls wraps in `Other` reads as a sentence
    /// that names the host, never as the error's `Debug` form.
    #[test]
    fn webpki_errors_have_no_debug_text() {
        use webpki::Error as E;
        let errors = [
            E::BadDer,
            E::BadDerTime,
            E::CaUsedAsEndEntity,
            E::CertDistrusted,
            E::EmptyEkuExtension,
            E::EndEntityUsedAsCa,
            E::ExtensionValueInvalid,
            E::InvalidCertValidity,
            E::InvalidSerialNumber,
            E::MalformedDnsIdentifier,
            E::MalformedExtensions,
            E::MalformedNameConstraint,
            E::MaximumNameConstraintComparisonsExceeded,
            E::MaximumPathBuildCallsExceeded,
            E::MaximumPathDepthExceeded,
            E::MaximumSignatureChecksExceeded,
            E::NameConstraintViolation,
            E::PathLenConstraintViolated,
            E::SignatureAlgorithmMismatch,
            E::UnsupportedCertVersion,
            E::UnsupportedCriticalExtension,
            E::UnsupportedNameType,
            E::UnknownIssuer,
            E::CertRevoked,
        ];
        for error in errors {
            let debug = format!("{error:?}");
            let wrapped = CertificateError::Other(OtherError(Arc::new(error)));
            let text = certificate(&context(false), &wrapped);
            assert!(text.contains("hooks.example.test"), "{text}");
            assert!(!text.contains(&debug), "{debug}: {text}");
            assert!(!text.contains("Other("), "{text}");
        }
    }

    #[test]
    fn certificate_errors_have_no_debug_text() {
        let errors = [
            CertificateError::BadEncoding,
            CertificateError::Expired,
            CertificateError::NotValidYet,
            CertificateError::Revoked,
            CertificateError::UnhandledCriticalExtension,
            CertificateError::UnknownIssuer,
            CertificateError::UnknownRevocationStatus,
            CertificateError::ExpiredRevocationList,
            CertificateError::BadSignature,
            CertificateError::NotValidForName,
            CertificateError::InvalidPurpose,
            CertificateError::InvalidOcspResponse,
            CertificateError::ApplicationVerificationFailure,
        ];
        for error in errors {
            let debug = format!("{error:?}");
            let text = certificate(&context(true), &error);
            assert!(text.contains("hooks.example.test"), "{text}");
            assert!(!text.contains(&debug), "{debug}: {text}");
        }
    }

    #[test]
    fn handshake_errors_have_no_debug_text() {
        let errors = [
            rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
            rustls::Error::AlertReceived(AlertDescription::Unknown(200)),
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
            rustls::Error::PeerMisbehaved(rustls::PeerMisbehaved::IllegalMiddleboxChangeCipherSpec),
            rustls::Error::NoCertificatesPresented,
            rustls::Error::DecryptError,
            rustls::Error::HandshakeNotComplete,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::MissingData("x")),
        ];
        for error in errors {
            let text = tls(&context(false), &error);
            assert!(text.contains("hooks.example.test"), "{text}");
            for debug_word in [
                "HandshakeFailure",
                "Unknown(",
                "NoCipherSuitesInCommon",
                "IllegalMiddlebox",
                "MissingData",
            ] {
                assert!(!text.contains(debug_word), "{text}");
            }
        }
    }

    #[test]
    fn ca_as_server_certificate_shows_a_working_command() {
        let wrapped =
            CertificateError::Other(OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        let without = certificate(&context(false), &wrapped);
        assert!(without.contains("CA:TRUE"), "{without}");
        assert!(without.contains("--ca-file"), "{without}");
        assert!(
            without.contains("basicConstraints=critical,CA:FALSE"),
            "{without}"
        );
        let with = certificate(&context(true), &wrapped);
        assert!(
            with.contains("does not contain this exact certificate"),
            "{with}"
        );
    }
}
