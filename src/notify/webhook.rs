//! Webhook delivery: one POST of the notification as JSON over http or
//! https, within [`DELIVERY_TIMEOUT`] from connect to the response.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::{tls, ChannelError, DELIVERY_TIMEOUT};
use crate::model::Notification;

/// A webhook URL taken apart for the request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct WebhookUrl {
    pub secure: bool,
    /// The host without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    /// `host[:port]` as written, for the Host header.
    pub authority: String,
    /// The path and query.
    pub target: String,
}

impl WebhookUrl {
    /// Parses and checks a webhook URL. `hyper::Uri` alone is too lenient
    /// for a destination: it reads an invalid port as "no port" (so the
    /// default one), drops a fragment, and takes any text as a host. Each of
    /// those is an error here instead.
    pub fn parse(url: &str) -> Result<Self, ChannelError> {
        let invalid = || ChannelError::Url(url.to_owned());
        if let Some((_, fragment)) = url.split_once('#') {
            return Err(ChannelError::UrlFragment {
                url: url.to_owned(),
                fragment: format!("#{fragment}"),
            });
        }
        let uri: hyper::Uri = url.parse().map_err(|_| invalid())?;
        let secure = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid()),
        };
        let authority = uri.authority().ok_or_else(invalid)?;
        if authority.as_str().contains('@') {
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            return Err(ChannelError::UrlCredentials(host.to_owned()));
        }
        let (host, port) = split_authority(url, authority.as_str())?;
        let host = check_host(url, host)?;
        let port = match port {
            None => default_port(secure),
            Some(text) => parse_port(text).ok_or_else(|| ChannelError::UrlPort {
                url: url.to_owned(),
                port: text.to_owned(),
            })?,
        };
        Ok(Self {
            secure,
            host,
            port,
            authority: authority.as_str().to_owned(),
            target: request_target(&uri),
        })
    }

    /// Formats `scheme://host:port`, without the path and query.
    pub fn origin(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.authority_host(), self.port)
    }

    /// Formats the host as it goes before `:port`, with brackets for IPv6.
    fn authority_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

fn default_port(secure: bool) -> u16 {
    if secure {
        443
    } else {
        80
    }
}

/// Splits `host[:port]` (with an IPv6 host in brackets) into the host as
/// written and the text after the colon, if there is a colon.
fn split_authority<'a>(
    url: &str,
    authority: &'a str,
) -> Result<(&'a str, Option<&'a str>), ChannelError> {
    if authority.starts_with('[') {
        let Some(end) = authority.find(']') else {
            return Err(ChannelError::UrlHost {
                url: url.to_owned(),
                host: authority.to_owned(),
                reason: "the IPv6 address has no closing ']'; write it as [2001:db8::1]",
            });
        };
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err(ChannelError::UrlHost {
                url: url.to_owned(),
                host: authority.to_owned(),
                reason: "only ':PORT' may follow the ']' of an IPv6 address",
            }),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// Reads a port: 1 to 5 decimal digits with a value from 1 to 65535. Signs,
/// letters and an empty port are rejected rather than read as the default.
fn parse_port(text: &str) -> Option<u16> {
    let digits_only =
        !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// Checks the host and returns it without IPv6 brackets. It must be an
/// IPv6 address in brackets, a dotted-quad IPv4 address, or a DNS name.
/// Shorthand IPv4 forms such as `127.1` or `0x7f.1` are rejected, because
/// the system's resolver would read them as some other address.
fn check_host(url: &str, host: &str) -> Result<String, ChannelError> {
    let invalid = |reason| ChannelError::UrlHost {
        url: url.to_owned(),
        host: host.to_owned(),
        reason,
    };
    if let Some(inside) = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
    {
        return match inside.parse::<std::net::Ipv6Addr>() {
            Ok(_) => Ok(inside.to_owned()),
            Err(_) if inside.contains('%') => Err(invalid(
                "an IPv6 zone such as %eth0 is not supported; use a global or loopback address",
            )),
            Err(_) => Err(invalid(
                "it is not a valid IPv6 address; write one such as [2001:db8::1]",
            )),
        };
    }
    if host.is_empty() {
        return Err(invalid(
            "the host is empty; write the server's name or address after ://",
        ));
    }
    let last_label = host.rsplit('.').next().unwrap_or_default();
    let numeric_last = last_label.bytes().all(|b| b.is_ascii_digit())
        || last_label.to_ascii_lowercase().starts_with("0x");
    if numeric_last {
        return match host.parse::<std::net::Ipv4Addr>() {
            Ok(_) => Ok(host.to_owned()),
            Err(_) => Err(invalid(
                "it is not a valid IPv4 address; write four numbers from 0 to 255, such as 192.0.2.1",
            )),
        };
    }
    let valid_label = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if host.len() > 253 || !host.split('.').all(valid_label) {
        return Err(invalid(
            "a host name is made of labels of 1 to 63 letters, digits, '-' or '_', separated by single dots",
        ));
    }
    Ok(host.to_owned())
}

/// Returns the request target: the path and query, with the `/` that a URL
/// such as `http://host?x=1` leaves out.
fn request_target(uri: &hyper::Uri) -> String {
    match uri.path_and_query().map(|target| target.as_str()) {
        None | Some("") => "/".to_owned(),
        Some(target) if target.starts_with('/') => target.to_owned(),
        Some(target) => format!("/{target}"),
    }
}

/// POSTs `notification` to the webhook at `url`, trusting `channel_ca`
/// besides the system's roots for https.
pub(crate) async fn post(
    url: &str,
    channel_ca: Option<&str>,
    notification: &Notification,
) -> Result<(), String> {
    let url = WebhookUrl::parse(url).map_err(|error| error.to_string())?;
    let body = serde_json::to_vec(notification).map_err(|error| error.to_string())?;
    // One deadline for every step, so a slow connect leaves less time for
    // the handshake and the response, and the error names the step that ran out.
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    let seconds = DELIVERY_TIMEOUT.as_secs();
    let address = format!("{}:{}", url.authority_host(), url.port);
    // What https trusts is settled before connecting, so that a channel
    // that cannot be checked fails without opening a connection.
    let trust = if url.secure {
        Some(trust_for(&url, channel_ca).await?)
    } else {
        None
    };
    let stream = timeout_at(deadline, TcpStream::connect((url.host.as_str(), url.port)))
        .await
        .map_err(|_| format!("connecting to {address} did not finish within {seconds} s"))?
        .map_err(|error| format!("connecting to {address} failed: {error}"))?;
    match trust {
        None => exchange(stream, &url, body, deadline).await,
        Some(trust) => {
            let stream = tls_handshake(stream, &url, &trust, deadline).await?;
            exchange(stream, &url, body, deadline).await
        }
    }
}

async fn trust_for(url: &WebhookUrl, channel_ca: Option<&str>) -> Result<tls::Trust, String> {
    tls::trust(channel_ca).await.map_err(|problem| {
        format!(
            "the certificate of {} cannot be checked: {problem}",
            url.host
        )
    })
}

/// Runs the TLS handshake with SNI and certificate checks by the host name
/// or IP address of the URL.
async fn tls_handshake(
    stream: TcpStream,
    url: &WebhookUrl,
    trust: &tls::Trust,
    deadline: Instant,
) -> Result<TlsStream<TcpStream>, String> {
    let server_name = ServerName::try_from(url.host.clone())
        .map_err(|error| format!("{:?} is not a valid TLS server name: {error}", url.host))?;
    let connector = TlsConnector::from(std::sync::Arc::clone(&trust.config));
    timeout_at(deadline, connector.connect(server_name, stream))
        .await
        .map_err(|_| {
            format!(
                "the TLS handshake with {} did not finish within {} s (handshake timeout); check that {}:{} serves https",
                url.host,
                DELIVERY_TIMEOUT.as_secs(),
                url.authority_host(),
                url.port
            )
        })?
        .map_err(|error| trust.explain(&url.host, &error))
}

/// Sends the request on an open connection and reads the response.
async fn exchange<S>(
    stream: S,
    url: &WebhookUrl,
    body: Vec<u8>,
    deadline: Instant,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let attempt = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| http_failure(url, &error))?;
        tokio::spawn(connection);
        let request = hyper::Request::post(url.target.as_str())
            .header("host", url.authority.as_str())
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("shipdeck/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| error.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| http_failure(url, &error))?;
        let status = response.status();
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "the webhook at {}:{} answered {status}",
                url.authority_host(),
                url.port
            ))
        }
    };
    timeout_at(deadline, attempt).await.map_err(|_| {
        format!(
            "the webhook at {}:{} did not answer within {} s",
            url.authority_host(),
            url.port,
            DELIVERY_TIMEOUT.as_secs()
        )
    })?
}

/// Describes a failed HTTP exchange with the causes hyper keeps as sources,
/// and the likely fix when an http:// URL points at an https endpoint.
fn http_failure(url: &WebhookUrl, error: &hyper::Error) -> String {
    let mut text = format!("the request to {} failed: {error}", url.authority);
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if !url.secure {
        text.push_str("; if the endpoint serves https, use an https:// URL");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> WebhookUrl {
        WebhookUrl::parse(url).unwrap_or_else(|error| panic!("{url}: {error}"))
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        let plain = parsed("http://example.test/x?y=1");
        assert!(!plain.secure);
        assert_eq!(plain.port, 80);
        assert_eq!(plain.target, "/x?y=1");
        let secure = parsed("https://hooks.example.test");
        assert!(secure.secure);
        assert_eq!(secure.port, 443);
        assert_eq!(secure.target, "/");
        assert_eq!(secure.authority, "hooks.example.test");
        assert_eq!(parsed("https://hooks.example.test:8443/h").port, 8443);
    }

    #[test]
    fn ipv6_literals_lose_their_brackets_for_tls_only() {
        let url = parsed("https://[::1]:9443/hook");
        assert_eq!(url.host, "::1");
        assert_eq!(url.port, 9443);
        assert_eq!(url.authority, "[::1]:9443");
        assert_eq!(url.authority_host(), "[::1]");
        assert!(ServerName::try_from(url.host).is_ok());
    }

    #[test]
    fn url_credentials_rejected_unechoed() {
        let error = WebhookUrl::parse("https://user:hunter2@example.test/h")
            .expect_err("userinfo")
            .to_string();
        assert!(error.contains("example.test"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_refused() {
        for url in [
            "ftp://x/",
            "not a url",
            "http:///nohost",
            "https://",
            "/relative",
        ] {
            assert!(WebhookUrl::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn invalid_ports_are_rejected_and_named() {
        for (url, port) in [
            ("http://127.0.0.1:99999/", "99999"),
            ("http://127.0.0.1:65536/", "65536"),
            ("http://127.0.0.1:8a/", "8a"),
            ("http://127.0.0.1:/", ""),
            ("http://127.0.0.1:0/", "0"),
            ("http://127.0.0.1:+80/", "+80"),
            ("https://[::1]:70000/", "70000"),
            ("https://[::1]:/", ""),
        ] {
            let error = WebhookUrl::parse(url).expect_err(url);
            assert!(
                matches!(&error, ChannelError::UrlPort { port: named, .. } if named == port),
                "{url}: {error}"
            );
            let text = error.to_string();
            assert!(text.contains(&format!("port {port:?}")), "{text}");
            assert!(text.contains("1 to 65535"), "{text}");
        }
        assert_eq!(parsed("http://127.0.0.1:65535/").port, 65535);
        assert_eq!(parsed("http://127.0.0.1:1/").port, 1);
    }

    #[test]
    fn invalid_hosts_are_rejected_and_named() {
        for (url, host) in [
            ("http://[zz]/", "[zz]"),
            ("http://[fe80::1%25eth0]/", "[fe80::1%25eth0]"),
            ("http://127.1/", "127.1"),
            ("http://0x7f.1/", "0x7f.1"),
            ("http://256.0.0.1/", "256.0.0.1"),
            ("http://a!b/", "a!b"),
            ("http://a..b/", "a..b"),
        ] {
            let error = WebhookUrl::parse(url).expect_err(url);
            assert!(
                matches!(&error, ChannelError::UrlHost { host: named, .. } if named == host),
                "{url}: {error}"
            );
        }
        assert_eq!(
            parsed("http://hooks_1.example-2.test/").host,
            "hooks_1.example-2.test"
        );
        assert_eq!(parsed("http://192.0.2.1/").host, "192.0.2.1");
    }

    #[test]
    fn fragments_are_rejected_and_queries_kept() {
        let error = WebhookUrl::parse("https://example.test/hook?a=1#part")
            .expect_err("a fragment")
            .to_string();
        assert!(error.contains("\"#part\""), "{error}");
        assert_eq!(parsed("http://example.test?token=x").target, "/?token=x");
        assert_eq!(parsed("http://example.test/a/b?c=d&e").target, "/a/b?c=d&e");
    }

    fn notification() -> Notification {
        Notification {
            kind: "test".to_owned(),
            title: "t".to_owned(),
            message: "m".to_owned(),
            severity: "low".to_owned(),
            deployment: String::new(),
            environment: String::new(),
            time: time::OffsetDateTime::UNIX_EPOCH,
            alert: None,
            sequence: 0,
        }
    }

    /// Makes a CA of its own, so that these tests do not depend on the system's
    /// trust store.
    fn some_ca() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("CA key");
        params.self_signed(&key).expect("CA certificate").pem()
    }

    #[tokio::test]
    async fn a_plain_http_server_behind_an_https_url_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let url = format!("https://127.0.0.1:{port}/hook");
        let error = post(&url, Some(&some_ca()), &notification())
            .await
            .expect_err("not TLS");
        assert!(
            error.contains("127.0.0.1 did not respond with TLS"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_a_handshake_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        // Accepts and then holds the connection without a word.
        let holder = tokio::spawn(async move { listener.accept().await });
        let url = format!("https://127.0.0.1:{port}/hook");
        let error = post(&url, Some(&some_ca()), &notification())
            .await
            .expect_err("no handshake");
        assert!(error.contains("handshake timeout"), "{error}");
        assert!(error.contains("127.0.0.1"), "{error}");
        holder.abort();
    }
}
