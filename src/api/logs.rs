//! The logs route: a query that returns a JSON array, or, with
//! `follow=true`, the newest matches followed by new ones as a
//! newline-delimited JSON stream.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use super::server::{ApiError, Shared};
use crate::logs::{
    parse_time_bound, FollowItem, Follower, Level, LogEntry, LogQuery, Page, MAX_CONTEXT,
};

/// Entries returned when the request names no page.
pub const DEFAULT_TAIL: usize = 100;

/// Maximum number of entries in one response, so that a careless `limit` cannot make the
/// agent build a response of gigabytes. Page with `after` or `offset` for more.
pub const MAX_PAGE: usize = 100_000;

/// Parameters of `GET /v1/deployments/{name}/logs`, read as text so that each
/// bad value gets an error naming it.
struct LogParams {
    env: Option<String>,
    query: LogQuery,
    page: Page,
    follow: bool,
}

pub async fn logs(
    State(state): State<Shared>,
    Path(name): Path<String>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let params = parse(&raw)?;
    if !params.follow {
        let entries =
            state
                .engine
                .logs(&name, params.env.as_deref(), &params.query, params.page)?;
        return Ok(axum::Json(entries).into_response());
    }

    let tail = match params.page {
        Page::Tail(count) => count,
        Page::Range { .. } | Page::After { .. } | Page::Before { .. } => 0,
    };
    let (follower, recent) =
        state
            .engine
            .follow_logs(&name, params.env.as_deref(), &params.query, tail)?;
    Ok(stream_response(follower, recent, state.closing.clone()))
}

fn parse(raw: &HashMap<String, String>) -> Result<LogParams, ApiError> {
    const KNOWN: &[&str] = &[
        "env", "level", "search", "regex", "invert", "context", "since", "until", "replica",
        "build", "revision", "tail", "limit", "offset", "after", "before", "follow",
    ];
    if let Some(unknown) = raw.keys().find(|key| !KNOWN.contains(&key.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{unknown}`; the logs route takes {}",
            KNOWN.join(", ")
        )));
    }

    let now = OffsetDateTime::now_utc();
    let text = |key: &str| raw.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let time = |key: &str| {
        text(key)
            .map(|value| parse_time_bound(value, now))
            .transpose()
            .map_err(|error| ApiError::bad_request(format!("{key}: {error}")))
    };
    let query = LogQuery {
        level: text("level").map(parse_level).transpose()?,
        search: text("search").map(str::to_owned),
        regex: flag(raw, "regex")?,
        invert: flag(raw, "invert")?,
        context: context(raw)?,
        since: time("since")?,
        until: time("until")?,
        replica: text("replica").map(str::to_owned),
        build: flag(raw, "build")?,
        revision: number(raw, "revision")?,
    };

    let tail = number(raw, "tail")?;
    let limit = number(raw, "limit")?;
    let offset = number(raw, "offset")?;
    let anchor = anchor(raw)?;
    let page = page(tail, limit, offset, anchor)?;

    let follow = flag(raw, "follow")?;
    let ends = limit.is_some() || offset.is_some() || anchor.is_some() || query.until.is_some();
    if follow && ends {
        return Err(ApiError::bad_request(
            "a follow takes only tail: limit, offset, after, before and until would end it \
             before new entries arrive; leave them out, or leave out follow=true",
        ));
    }

    Ok(LogParams {
        env: text("env").map(str::to_owned),
        query,
        page,
        follow,
    })
}

/// Chooses the page from the paging parameters, each of which the caller
/// has read as a number.
fn page(
    tail: Option<u64>,
    limit: Option<u64>,
    offset: Option<u64>,
    anchor: Option<Anchor>,
) -> Result<Page, ApiError> {
    if let Some(anchor) = anchor {
        if tail.is_some() || offset.is_some() {
            return Err(ApiError::bad_request(
                "after and before page by entry id and cannot be combined with tail or \
                 offset; use after=ID or before=ID with limit=N",
            ));
        }
        let limit = page_size("limit", limit.unwrap_or(DEFAULT_TAIL as u64))?;
        return Ok(anchor.page(limit));
    }
    match (tail, limit, offset) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::bad_request(
            "tail cannot be combined with limit or offset; use tail for the newest entries, \
             or limit and offset to page from the oldest",
        )),
        (_, None, Some(_)) => Err(ApiError::bad_request("offset needs a limit; add limit=N")),
        (tail, None, None) => Ok(Page::Tail(page_size(
            "tail",
            tail.unwrap_or(DEFAULT_TAIL as u64),
        )?)),
        (None, Some(limit), offset) => Ok(Page::Range {
            offset: usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX),
            limit: page_size("limit", limit)?,
        }),
    }
}

/// The entry id a page starts from.
#[derive(Clone, Copy)]
enum Anchor {
    After(u64),
    Before(u64),
}

impl Anchor {
    fn page(self, limit: usize) -> Page {
        match self {
            Self::After(id) => Page::After { id, limit },
            Self::Before(id) => Page::Before { id, limit },
        }
    }
}

fn anchor(raw: &HashMap<String, String>) -> Result<Option<Anchor>, ApiError> {
    match (number(raw, "after")?, number(raw, "before")?) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "after and before cannot be combined; page one way at a time, or use since and \
             until for a range of times",
        )),
        (Some(id), None) => Ok(Some(Anchor::After(id))),
        (None, Some(id)) => Ok(Some(Anchor::Before(id))),
        (None, None) => Ok(None),
    }
}

fn context(raw: &HashMap<String, String>) -> Result<usize, ApiError> {
    let lines = number(raw, "context")?.unwrap_or(0);
    match usize::try_from(lines) {
        Ok(lines) if lines <= MAX_CONTEXT => Ok(lines),
        _ => Err(ApiError::bad_request(format!(
            "context={lines} is more than the {MAX_CONTEXT} lines accepted; ask for fewer"
        ))),
    }
}

fn parse_level(value: &str) -> Result<Level, ApiError> {
    value
        .parse()
        .map_err(|error: crate::logs::ParseLevelError| ApiError::bad_request(error.to_string()))
}

fn flag(raw: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match raw.get(key).map(String::as_str) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{key}={other:?} is not a boolean; write {key}=true or {key}=false"
        ))),
    }
}

fn number(raw: &HashMap<String, String>, key: &str) -> Result<Option<u64>, ApiError> {
    raw.get(key)
        .map(|value| {
            value.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "{key}={value:?} is not a whole number; write for example {key}=100"
                ))
            })
        })
        .transpose()
}

fn page_size(key: &str, value: u64) -> Result<usize, ApiError> {
    match usize::try_from(value) {
        Ok(size) if size <= MAX_PAGE => Ok(size),
        _ => Err(ApiError::bad_request(format!(
            "{key}={value} is more than the {MAX_PAGE} entries one answer holds; \
             page through with limit and offset"
        ))),
    }
}

/// Lines of the follow stream waiting to be written to the client. When the
/// client reads slowly this fills, the follower's queue in the log hub fills
/// after it, and the hub drops the oldest and reports them as missed.
const STREAM_LINES: usize = 256;

fn stream_response(
    mut follower: Follower,
    recent: Vec<LogEntry>,
    mut closing: watch::Receiver<bool>,
) -> Response {
    let (sender, receiver) = mpsc::channel::<Bytes>(STREAM_LINES);
    tokio::spawn(async move {
        for entry in recent {
            if sender
                .send(ndjson(&FollowItem::Entry(entry)))
                .await
                .is_err()
            {
                return;
            }
        }
        loop {
            let item = tokio::select! {
                item = follower.next() => item,
                () = sender.closed() => return,
                _ = closing.wait_for(|closing| *closing) => return,
            };
            if sender.send(ndjson(&item)).await.is_err() {
                return;
            }
        }
    });

    let body = axum::body::Body::new(LineStream { receiver });
    ([(CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

fn ndjson(item: &FollowItem) -> Bytes {
    let mut line = serde_json::to_vec(item).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// A response body fed line by line from a channel.
pub(super) struct LineStream {
    pub(super) receiver: mpsc::Receiver<Bytes>,
}

impl http_body::Body for LineStream {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.receiver
            .poll_recv(cx)
            .map(|line| line.map(|line| Ok(Frame::data(line))))
    }
}
