//! The client of the agent's API, used by the CLI (and later the TUI).
//!
//! One HTTP/1.1 connection per request over the Unix socket: requests are
//! few and short, and a fresh connection never finds a half-closed one.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use super::wire::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the agent at {path}: {source}")]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The agent responded with an error; `message` is its one-line reason.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("the agent's response to {what} could not be read: {detail}; the agent may have stopped (see agent.log in its home) or be another version")]
    Protocol { what: String, detail: String },
}

impl ClientError {
    /// Whether no agent listens (as opposed to one that responded badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.send(Method::GET, path, None).await?;
        decode(path, &body)
    }

    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let body = self.send(Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(Method::POST, path, body).await
    }

    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(Method::PUT, path, body).await
    }

    /// Sends a PUT with `If-None-Match: *`, which creates the resource but
    /// fails if it exists.
    pub async fn put_if_absent<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|error| protocol(path, error))?;
        let headers = [("if-none-match", "*")];
        let body = self
            .open_with(Method::PUT, path, Some(json), &headers)
            .await?;
        let bytes = collect(path, body).await?;
        decode(path, &bytes)
    }

    /// Sends a PUT with `If-Match: *`, which replaces the resource but
    /// fails if it does not exist.
    pub async fn put_if_present<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|error| protocol(path, error))?;
        let headers = [("if-match", "*")];
        let body = self
            .open_with(Method::PUT, path, Some(json), &headers)
            .await?;
        let bytes = collect(path, body).await?;
        decode(path, &bytes)
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send_json(Method::PATCH, path, body).await
    }

    async fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let json = serde_json::to_vec(body).map_err(|error| protocol(path, error))?;
        let body = self.send(method, path, Some(json)).await?;
        decode(path, &body)
    }

    /// Sends a DELETE; the response has no body.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, path, None).await.map(|_| ())
    }

    /// Sends a POST whose response has no body worth reading.
    /// Sends a POST with a JSON body whose response has no body worth reading.
    pub async fn post_unit<B: Serialize>(&self, path: &str, body: &B) -> Result<(), ClientError> {
        let json = serde_json::to_vec(body).map_err(|error| protocol(path, error))?;
        self.send(Method::POST, path, Some(json)).await.map(|_| ())
    }

    pub async fn post_empty(&self, path: &str) -> Result<(), ClientError> {
        self.send(Method::POST, path, Some(b"{}".to_vec()))
            .await
            .map(|_| ())
    }

    /// Sends a GET whose response is a stream of lines (such as a log follow)
    /// and returns a reader for them.
    pub async fn get_lines(&self, path: &str) -> Result<ResponseLines, ClientError> {
        let body = self.open(Method::GET, path, None).await?;
        Ok(ResponseLines {
            path: path.to_owned(),
            body,
            buffer: Vec::new(),
            ended: false,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let body = self.open(method, path, body).await?;
        collect(path, body).await
    }

    /// Sends a request and returns the body of a successful response, or the
    /// agent's error.
    async fn open(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Incoming, ClientError> {
        self.open_with(method, path, body, &[]).await
    }

    /// Like [`Client::open`], with extra request headers.
    async fn open_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<Incoming, ClientError> {
        let (_, body) = self.open_response(method, path, body, headers).await?;
        Ok(body)
    }

    /// Sends a PUT that creates or replaces a resource, with
    /// `If-None-Match: *` when `create_only`. Returns the response and
    /// whether the agent created the resource (201) rather than replaced it.
    pub async fn put_created<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        create_only: bool,
    ) -> Result<(T, bool), ClientError> {
        let json = serde_json::to_vec(body).map_err(|error| protocol(path, error))?;
        let headers: &[(&str, &str)] = if create_only {
            &[("if-none-match", "*")]
        } else {
            &[]
        };
        let (status, body) = self
            .open_response(Method::PUT, path, Some(json), headers)
            .await?;
        let bytes = collect(path, body).await?;
        Ok((decode(path, &bytes)?, status == StatusCode::CREATED))
    }

    /// Sends a DELETE whose response is JSON.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let body = self.send(Method::DELETE, path, None).await?;
        decode(path, &body)
    }

    /// Sends a request and returns the status and body of a successful
    /// response, or the agent's error.
    async fn open_response(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Result<(StatusCode, Incoming), ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Unreachable {
                    path: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| protocol(path, error))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "agent connection ended with an error");
            }
        });

        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "shipdeck")
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| protocol(path, error))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| protocol(path, error))?;
        let status = response.status();
        if status.is_success() {
            return Ok((status, response.into_body()));
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|error| protocol(path, error))?
            .to_bytes();
        Err(api_error(status, &bytes))
    }
}

async fn collect(path: &str, body: Incoming) -> Result<Bytes, ClientError> {
    let collected = body
        .collect()
        .await
        .map_err(|error| protocol(path, error))?;
    Ok(collected.to_bytes())
}

fn protocol(path: &str, error: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        what: path.to_owned(),
        detail: error.to_string(),
    }
}

/// The lines of a streamed response, read as they arrive.
pub struct ResponseLines {
    path: String,
    body: Incoming,
    buffer: Vec<u8>,
    ended: bool,
}

impl ResponseLines {
    /// Returns the next line without its newline, or `None` at the end.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                return Ok(Some(line));
            }
            if self.ended {
                let rest = std::mem::take(&mut self.buffer);
                return Ok((!rest.is_empty()).then_some(rest));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(error)) => return Err(protocol(&self.path, error)),
                None => self.ended = true,
            }
        }
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|error| error.error)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body);
            format!("the agent answered {status}: {}", text.trim())
        });
    ClientError::Api {
        status: status.as_u16(),
        message,
    }
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|error| ClientError::Protocol {
        what: path.to_owned(),
        detail: error.to_string(),
    })
}

/// Percent-encodes one query or path component.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}
