//! What the logs tab asks of its worker, and what the worker reads back.

use std::path::PathBuf;

use crate::logs::{Level, LogEntry};
use crate::model::DeploymentKey;

/// The conditions the agent applies, as its query parameters name them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LogsQuery {
    pub replica: Option<u32>,
    pub level: Option<Level>,
    pub search: Option<String>,
    pub regex: bool,
    pub invert: bool,
    pub context: usize,
}

/// The follow stream the tab needs: the newest page, then new lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogsWatch {
    pub key: DeploymentKey,
    pub query: LogsQuery,
    pub generation: u64,
}

/// A page or a search the tab requests from the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogsFetch {
    pub key: DeploymentKey,
    pub query: LogsQuery,
    pub generation: u64,
    pub kind: FetchKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchKind {
    /// The page before the line with this id.
    Older { before: u64 },
    /// The page after the line with this id.
    Newer { after: u64 },
    /// The oldest page.
    First,
    /// Half a page on each side of the line with this id.
    Around { id: u64 },
    /// The first line after `after` that matches `search`, with half a
    /// page on each side.
    FindNext {
        after: u64,
        search: String,
        regex: bool,
    },
    /// The last line before `before` that matches `search`, with half a
    /// page on each side.
    FindPrevious {
        before: u64,
        search: String,
        regex: bool,
    },
}

/// Every line of the view, over the whole history, written to `path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogsSave {
    pub key: DeploymentKey,
    pub query: LogsQuery,
    pub path: PathBuf,
}

/// A request from the logs tab to the worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogsEffect {
    /// Follow this stream, replacing the previous one; `None` stops.
    Watch(Option<LogsWatch>),
    Fetch(LogsFetch),
    Save(LogsSave),
}

/// A read of the worker for the logs tab.
#[derive(Debug, Clone, PartialEq)]
pub enum LogsData {
    /// The newest lines, at the start of a follow.
    Tail {
        generation: u64,
        entries: Vec<LogEntry>,
    },
    /// Lines that arrived since.
    Live {
        generation: u64,
        entries: Vec<LogEntry>,
    },
    /// Lines the follow lost because they arrived faster than it read.
    Missed { generation: u64, count: u64 },
    /// A page for [`FetchKind::Older`], [`FetchKind::Newer`] or
    /// [`FetchKind::First`].
    Page {
        generation: u64,
        kind: FetchKind,
        entries: Vec<LogEntry>,
    },
    /// The lines before and from a target line, for a jump: the target is
    /// the first of `after`.
    Around {
        generation: u64,
        kind: FetchKind,
        before: Vec<LogEntry>,
        after: Vec<LogEntry>,
    },
    /// A search found no further match.
    NotFound { generation: u64, kind: FetchKind },
    /// The agent rejected a read; the message is its error.
    Failed { generation: u64, message: String },
    /// A save finished: the lines written, or why it failed.
    Saved {
        path: PathBuf,
        result: Result<u64, String>,
    },
}
