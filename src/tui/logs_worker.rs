//! The tasks that read what the logs tab shows: a follow stream of new
//! lines, and pages, searches and saves one at a time.
//!
//! The stream opens before the newest page is read, so that no line falls
//! between the two: lines the page holds come again on the stream, and the
//! tab drops them by id. Lines are sent on in batches, so that a chatty
//! application costs one action (and at most one frame) per batch rather
//! than per line.

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::action::Action;
use super::app::{FetchKind, LogsData, LogsFetch, LogsQuery, LogsSave, LogsWatch, PAGE_LINES};
use crate::api::client::{encode, Client, ClientError, ResponseLines};
use crate::logs::{format_time, sanitize_for_terminal, FollowItem, LogEntry};
use crate::model::DeploymentKey;

/// Most lines sent in one action.
const BATCH_LINES: usize = 1000;

/// Maximum time a line waits for more to join its batch.
const BATCH_WAIT: Duration = Duration::from_millis(50);

/// Wait before opening a stream again after it ended or failed.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Lines read per request when saving.
const SAVE_PAGE: usize = 10_000;

/// A request for the jobs task.
#[derive(Debug)]
pub enum LogsJob {
    Fetch(LogsFetch),
    Save(LogsSave),
}

/// The reason a follow stream stopped.
enum Ended {
    /// The event loop is gone.
    Closed,
    /// The agent ended or broke the stream, or rejected it.
    Stream,
}

/// Follows the stream the tab wants until the event loop drops the sender
/// of `wanted`. A stream that ends is opened again after [`RETRY_AFTER`].
#[tracing::instrument(skip_all)]
pub(super) async fn follow_logs(
    client: Client,
    mut wanted: watch::Receiver<Option<LogsWatch>>,
    actions: mpsc::Sender<Action>,
) {
    loop {
        let current = wanted.borrow_and_update().clone();
        let Some(request) = current else {
            if wanted.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            ended = follow(&client, &request, &actions) => match ended {
                Ended::Closed => return,
                Ended::Stream => {
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                        changed = wanted.changed() => if changed.is_err() { return },
                    }
                }
            },
            changed = wanted.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Opens one stream, sends the newest page, then the new lines.
async fn follow(client: &Client, request: &LogsWatch, actions: &mpsc::Sender<Action>) -> Ended {
    let generation = request.generation;
    let base = base_path(&request.key, &request.query);
    let mut lines = match client
        .get_lines(&format!("{base}&follow=true&tail=0"))
        .await
    {
        Ok(lines) => lines,
        Err(error) => return report(error, request, actions).await,
    };
    let tail = match client
        .get::<Vec<LogEntry>>(&format!("{base}&tail={PAGE_LINES}"))
        .await
    {
        Ok(entries) => entries,
        Err(error) => return report(error, request, actions).await,
    };
    let data = LogsData::Tail {
        generation,
        entries: tail,
    };
    if send(actions, &request.key, data).await.is_err() {
        return Ended::Closed;
    }
    loop {
        let batch = match read_batch(&mut lines).await {
            Ok(Some(batch)) => batch,
            Ok(None) => return Ended::Stream,
            Err(error) => {
                tracing::debug!(%error, "the log stream broke");
                return Ended::Stream;
            }
        };
        if batch.missed > 0 {
            let data = LogsData::Missed {
                generation,
                count: batch.missed,
            };
            if send(actions, &request.key, data).await.is_err() {
                return Ended::Closed;
            }
        }
        let data = LogsData::Live {
            generation,
            entries: batch.entries,
        };
        if send(actions, &request.key, data).await.is_err() {
            return Ended::Closed;
        }
    }
}

/// Sends the agent's rejection to the tab; a lost connection is the
/// poller's to report.
async fn report(error: ClientError, request: &LogsWatch, actions: &mpsc::Sender<Action>) -> Ended {
    if error.is_unreachable() {
        return Ended::Stream;
    }
    tracing::warn!(key = %request.key, %error, "reading the logs failed");
    let data = LogsData::Failed {
        generation: request.generation,
        message: error.to_string(),
    };
    match send(actions, &request.key, data).await {
        Ok(()) => Ended::Stream,
        Err(()) => Ended::Closed,
    }
}

#[derive(Default)]
struct Batch {
    entries: Vec<LogEntry>,
    missed: u64,
}

/// Waits for a line, then gathers those that follow within [`BATCH_WAIT`].
/// Returns `None` when the stream ended.
///
/// # Cancel safety
///
/// `ResponseLines::next_line` keeps what it read in its buffer, so the
/// timeout that ends a batch loses no line.
async fn read_batch(lines: &mut ResponseLines) -> Result<Option<Batch>, ClientError> {
    let mut batch = Batch::default();
    let Some(first) = lines.next_line().await? else {
        return Ok(None);
    };
    add_item(&mut batch, &first);
    let deadline = Instant::now() + BATCH_WAIT;
    while batch.entries.len() < BATCH_LINES {
        match tokio::time::timeout_at(deadline, lines.next_line()).await {
            Err(_) => break,
            Ok(line) => match line? {
                Some(line) => add_item(&mut batch, &line),
                None => break,
            },
        }
    }
    Ok(Some(batch))
}

fn add_item(batch: &mut Batch, line: &[u8]) {
    match serde_json::from_slice::<FollowItem>(line) {
        Ok(FollowItem::Entry(entry)) => batch.entries.push(entry),
        Ok(FollowItem::Missed { missed }) => batch.missed += missed,
        Err(error) => tracing::warn!(%error, "skipped an unreadable line of the log stream"),
    }
}

async fn send(
    actions: &mpsc::Sender<Action>,
    key: &DeploymentKey,
    data: LogsData,
) -> Result<(), ()> {
    let action = Action::Logs {
        key: key.clone(),
        data: Box::new(data),
    };
    actions.send(action).await.map_err(|_| {
        tracing::debug!("the dashboard closed; the log reader stops");
    })
}

/// Runs fetches in order, and starts each save as a task of its own so
/// that paging goes on while a long history is written.
#[tracing::instrument(skip_all)]
pub(super) async fn run_jobs(
    client: Client,
    mut jobs: mpsc::UnboundedReceiver<LogsJob>,
    actions: mpsc::Sender<Action>,
) {
    while let Some(job) = jobs.recv().await {
        match job {
            LogsJob::Fetch(fetch) => {
                let data = match read(&client, &fetch).await {
                    Ok(data) => data,
                    Err(error) => {
                        tracing::warn!(key = %fetch.key, kind = ?fetch.kind, %error, "reading a page of logs failed");
                        LogsData::Failed {
                            generation: fetch.generation,
                            message: error.to_string(),
                        }
                    }
                };
                if send(&actions, &fetch.key, data).await.is_err() {
                    return;
                }
            }
            LogsJob::Save(save) => {
                let client = client.clone();
                let actions = actions.clone();
                tokio::spawn(async move {
                    let key = save.key.clone();
                    let data = save_view(&client, save).await;
                    let _ = send(&actions, &key, data).await;
                });
            }
        }
    }
}

/// Reads the page or search that `fetch` requests.
async fn read(client: &Client, fetch: &LogsFetch) -> Result<LogsData, ClientError> {
    let generation = fetch.generation;
    let base = base_path(&fetch.key, &fetch.query);
    let page = |anchor: String| {
        let path = format!("{base}&{anchor}&limit={PAGE_LINES}");
        async move { client.get::<Vec<LogEntry>>(&path).await }
    };
    let entries = match &fetch.kind {
        FetchKind::Older { before } => page(format!("before={before}")).await?,
        FetchKind::Newer { after } => page(format!("after={after}")).await?,
        FetchKind::First => page("after=0".to_owned()).await?,
        FetchKind::Around { id } => return around(client, fetch, *id).await,
        FetchKind::FindNext { after, .. } | FetchKind::FindPrevious { before: after, .. } => {
            let Some(found) = find(client, fetch, *after).await? else {
                return Ok(LogsData::NotFound {
                    generation,
                    kind: fetch.kind.clone(),
                });
            };
            return around(client, fetch, found).await;
        }
    };
    Ok(LogsData::Page {
        generation,
        kind: fetch.kind.clone(),
        entries,
    })
}

/// Reads half a page before entry `id` and half a page from it on.
async fn around(client: &Client, fetch: &LogsFetch, id: u64) -> Result<LogsData, ClientError> {
    let base = base_path(&fetch.key, &fetch.query);
    let half = PAGE_LINES / 2;
    let before = client
        .get::<Vec<LogEntry>>(&format!("{base}&before={id}&limit={half}"))
        .await?;
    let from = id.saturating_sub(1);
    let after = client
        .get::<Vec<LogEntry>>(&format!("{base}&after={from}&limit={half}"))
        .await?;
    Ok(LogsData::Around {
        generation: fetch.generation,
        kind: fetch.kind.clone(),
        before,
        after,
    })
}

/// Returns the id of the first match after (or last before) `anchor`,
/// among the lines of the replica and level shown.
async fn find(client: &Client, fetch: &LogsFetch, anchor: u64) -> Result<Option<u64>, ClientError> {
    let (search, regex, direction) = match &fetch.kind {
        FetchKind::FindNext { search, regex, .. } => (search, *regex, "after"),
        FetchKind::FindPrevious { search, regex, .. } => (search, *regex, "before"),
        _ => return Ok(None),
    };
    let query = LogsQuery {
        search: Some(search.clone()),
        regex,
        invert: false,
        context: 0,
        ..fetch.query.clone()
    };
    let path = format!(
        "{}&{direction}={anchor}&limit=1",
        base_path(&fetch.key, &query)
    );
    let found = client.get::<Vec<LogEntry>>(&path).await?;
    Ok(found.first().map(|entry| entry.id))
}

/// Writes every line of the view to the save's path, oldest first, and
/// returns the count or an error that names the path.
async fn save_view(client: &Client, save: LogsSave) -> LogsData {
    let path = std::path::absolute(&save.path).unwrap_or_else(|_| save.path.clone());
    let result = write_all(client, &save, &path).await;
    if let Err(message) = &result {
        tracing::warn!(key = %save.key, path = %path.display(), %message, "saving the logs failed");
    }
    LogsData::Saved { path, result }
}

async fn write_all(client: &Client, save: &LogsSave, path: &Path) -> Result<u64, String> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(|error| create_error(path, &error))?;
    let base = base_path(&save.key, &save.query);
    let mut written = 0u64;
    let mut after = 0u64;
    loop {
        let page_path = format!("{base}&after={after}&limit={SAVE_PAGE}");
        let entries = client
            .get::<Vec<LogEntry>>(&page_path)
            .await
            .map_err(|error| {
                format!(
                "saving to {} stopped after {written} lines: {error}; the file holds those lines",
                path.display()
            )
            })?;
        let Some(last) = entries.last() else { break };
        after = last.id;
        let text: String = entries.iter().map(format_line).collect();
        file.write_all(text.as_bytes()).await.map_err(|error| {
            format!(
                "writing {} failed after {written} lines: {error}; free some space or choose another path",
                path.display()
            )
        })?;
        written += entries.len() as u64;
        if entries.len() < SAVE_PAGE {
            break;
        }
    }
    file.flush()
        .await
        .map_err(|error| format!("writing {} failed: {error}", path.display()))?;
    Ok(written)
}

fn create_error(path: &Path, error: &std::io::Error) -> String {
    let display = path.display();
    match error.kind() {
        std::io::ErrorKind::AlreadyExists => {
            format!("{display} already exists; save to another path, or remove that file first")
        }
        std::io::ErrorKind::NotFound => {
            format!("cannot create {display}: its directory does not exist; create it or choose another path")
        }
        _ => format!("cannot create {display}: {error}; choose a directory you can write to"),
    }
}

/// Formats an entry as `shipdeck logs` prints it without colours: time,
/// source, level and the message with its escape sequences removed.
fn format_line(entry: &LogEntry) -> String {
    format!(
        "{} {} {:<5} {}\n",
        format_time(entry.time),
        sanitize_for_terminal(&entry.source),
        entry.level.as_str().to_uppercase(),
        sanitize_for_terminal(&entry.message)
    )
}

/// Builds `/v1/deployments/NAME/logs?env=ENV` with the query's conditions.
pub fn base_path(key: &DeploymentKey, query: &LogsQuery) -> String {
    let mut path = format!(
        "/v1/deployments/{}/logs?env={}",
        encode(&key.name),
        encode(&key.environment)
    );
    if let Some(replica) = query.replica {
        path.push_str(&format!("&replica={replica}"));
    }
    if let Some(level) = query.level {
        path.push_str(&format!("&level={}", level.as_str()));
    }
    if let Some(search) = &query.search {
        path.push_str(&format!("&search={}", encode(search)));
        if query.regex {
            path.push_str("&regex=true");
        }
        if query.invert {
            path.push_str("&invert=true");
        }
        if query.context > 0 {
            path.push_str(&format!("&context={}", query.context));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::logs::Level;

    #[test]
    fn base_path_carries_every_condition() {
        let key = DeploymentKey::new("web shop", "staging");
        assert_eq!(
            base_path(&key, &LogsQuery::default()),
            "/v1/deployments/web%20shop/logs?env=staging"
        );
        let query = LogsQuery {
            replica: Some(2),
            level: Some(Level::Warn),
            search: Some("time out".to_owned()),
            regex: true,
            invert: true,
            context: 3,
        };
        assert_eq!(
            base_path(&key, &query),
            "/v1/deployments/web%20shop/logs?env=staging&replica=2&level=warn&search=time%20out&regex=true&invert=true&context=3"
        );
    }

    #[test]
    fn create_errors_name_the_path_and_the_fix() {
        let path = PathBuf::from("/tmp/x/web.log");
        let exists = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
        let message = create_error(&path, &exists);
        assert!(
            message.contains("/tmp/x/web.log already exists"),
            "{message}"
        );
        assert!(message.contains("another path"), "{message}");
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(create_error(&path, &missing).contains("directory does not exist"));
    }
}
