//! The commands of the logs tab, which keys bind in the `[logs]` keymap
//! context.

/// The keys of the logs tab, bound in the `[logs]` keymap context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogsCommand {
    ShowTab,
    Search,
    NextMatch,
    PreviousMatch,
    ClearSearch,
    ToggleRegex,
    ToggleFilter,
    ToggleInvert,
    MoreContext,
    LessContext,
    NextLevel,
    NextReplica,
    ToggleFollow,
    ToggleWrap,
    ToggleTimestamps,
    ToggleUtc,
    Save,
    Copy,
}

impl LogsCommand {
    pub const ALL: [LogsCommand; 18] = [
        Self::ShowTab,
        Self::Search,
        Self::NextMatch,
        Self::PreviousMatch,
        Self::ClearSearch,
        Self::ToggleRegex,
        Self::ToggleFilter,
        Self::ToggleInvert,
        Self::MoreContext,
        Self::LessContext,
        Self::NextLevel,
        Self::NextReplica,
        Self::ToggleFollow,
        Self::ToggleWrap,
        Self::ToggleTimestamps,
        Self::ToggleUtc,
        Self::Save,
        Self::Copy,
    ];

    /// Returns the name used in `keymap.toml`, distinct from every other
    /// command's.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShowTab => "tab-logs",
            Self::Search => "search",
            Self::NextMatch => "next-match",
            Self::PreviousMatch => "previous-match",
            Self::ClearSearch => "clear-search",
            Self::ToggleRegex => "regex",
            Self::ToggleFilter => "filter-matches",
            Self::ToggleInvert => "invert-filter",
            Self::MoreContext => "more-context",
            Self::LessContext => "less-context",
            Self::NextLevel => "min-level",
            Self::NextReplica => "replica",
            Self::ToggleFollow => "follow",
            Self::ToggleWrap => "wrap",
            Self::ToggleTimestamps => "timestamps",
            Self::ToggleUtc => "utc",
            Self::Save => "save-logs",
            Self::Copy => "copy-line",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::ShowTab => "show the logs tab",
            Self::Search => "logs: search, highlighting every match",
            Self::NextMatch => "logs: select the next match",
            Self::PreviousMatch => "logs: select the previous match",
            Self::ClearSearch => "logs: clear the search and filter, or go back",
            Self::ToggleRegex => "logs: search a regular expression or plain text",
            Self::ToggleFilter => "logs: show only matching lines, with context",
            Self::ToggleInvert => "logs: show only the lines that do not match",
            Self::MoreContext => "logs: one more line of context around matches",
            Self::LessContext => "logs: one line of context less",
            Self::NextLevel => "logs: raise the minimum level (wraps to all)",
            Self::NextReplica => "logs: show one replica, the next, or all",
            Self::ToggleFollow => "logs: pause, or follow the newest lines",
            Self::ToggleWrap => "logs: wrap long lines, or cut them",
            Self::ToggleTimestamps => "logs: show or hide times",
            Self::ToggleUtc => "logs: times in UTC or local time",
            Self::Save => "logs: save the lines shown (whole history) to a file",
            Self::Copy => "logs: copy the selected line to the clipboard (OSC 52)",
        }
    }
}
