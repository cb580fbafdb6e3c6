//! Pages by id and with context against a real store: every way of paging
//! through a view returns the same entries, and context matches a brute
//! force over the whole log.

use super::super::{CaptureTarget, LogHub, LogQuery, Retention, Stream};
use super::*;

const DEPLOYMENT: &str = "d-web";

fn target() -> CaptureTarget {
    CaptureTarget {
        deployment_id: DEPLOYMENT.to_owned(),
        source: "web-0".to_owned(),
        stream: Stream::Stdout,
        revision: 1,
        build: false,
    }
}

/// Returns line `index` of the fixture: every seventh one contains `match`, the others `plain`.
fn line(index: usize) -> String {
    if index % 7 == 3 {
        format!("match {index}")
    } else {
        format!("plain {index}")
    }
}

/// Starts a hub over a fresh store and writes 120 lines: 100 stored in
/// blocks of 25, and 20 still pending, so that scans cross both.
async fn hub_with_lines(dir: &std::path::Path) -> LogHub {
    let store = Store::open(dir).unwrap();
    let hub = LogHub::start(store);
    hub.set_retention(
        DEPLOYMENT,
        Retention {
            max_lines: 200,
            ..Retention::default()
        },
    );
    let stored: String = (0..100).map(|index| line(index) + "\n").collect();
    hub.write_text(target(), stored.as_bytes()).await;
    hub.flush().await;
    let pending: String = (100..120).map(|index| line(index) + "\n").collect();
    hub.write_text(target(), pending.as_bytes()).await;
    // The writer thread appends them soon after; no flush, so that they
    // stay pending.
    let everything = LogFilter::everything();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let newest = hub.query(DEPLOYMENT, &everything, Page::Tail(1)).unwrap();
        if newest
            .first()
            .is_some_and(|entry| entry.message == "plain 119")
        {
            return hub;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "line 119 never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn filter(context: usize, invert: bool) -> LogFilter {
    LogFilter::new(&LogQuery {
        search: Some("match".to_owned()),
        context,
        invert,
        ..LogQuery::default()
    })
    .unwrap()
}

fn texts(entries: &[LogEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| {
            format!(
                "{}{}",
                entry.message,
                if entry.context { " (c)" } else { "" }
            )
        })
        .collect()
}

/// Computes the view by brute force: selected lines, and lines within `context` of one.
fn expected(context: usize, invert: bool) -> Vec<String> {
    let selected = |index: usize| line(index).starts_with("match") != invert;
    (0..120usize)
        .filter_map(|index| {
            let low = index.saturating_sub(context);
            let high = (index + context).min(119);
            if selected(index) {
                Some(line(index))
            } else if (low..=high).any(selected) {
                Some(format!("{} (c)", line(index)))
            } else {
                None
            }
        })
        .collect()
}

fn all(hub: &LogHub, filter: &LogFilter) -> Vec<LogEntry> {
    let page = Page::Range {
        offset: 0,
        limit: usize::MAX,
    };
    hub.query(DEPLOYMENT, filter, page).unwrap()
}

#[tokio::test]
async fn context_matches_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_lines(dir.path()).await;
    for (context, invert) in [(0, false), (1, false), (2, false), (4, true), (30, false)] {
        let shown = all(&hub, &filter(context, invert));
        assert_eq!(
            texts(&shown),
            expected(context, invert),
            "context {context}, invert {invert}"
        );
    }
}

#[tokio::test]
async fn pages_by_id_join_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_lines(dir.path()).await;
    for (context, size) in [(0, 7), (2, 5), (3, 1), (2, 64)] {
        let filter = filter(context, false);
        let whole = all(&hub, &filter);

        let mut forward = Vec::new();
        let mut anchor = 0;
        loop {
            let page = Page::After {
                id: anchor,
                limit: size,
            };
            let got = hub.query(DEPLOYMENT, &filter, page).unwrap();
            let Some(last) = got.last() else { break };
            anchor = last.id;
            forward.extend(got);
        }
        assert_eq!(
            texts(&forward),
            texts(&whole),
            "forward, context {context}, pages of {size}"
        );

        let mut backward = Vec::new();
        let mut anchor = u64::MAX;
        loop {
            let page = Page::Before {
                id: anchor,
                limit: size,
            };
            let mut got = hub.query(DEPLOYMENT, &filter, page).unwrap();
            let Some(first) = got.first() else { break };
            anchor = first.id;
            got.append(&mut backward);
            backward = got;
        }
        assert_eq!(
            texts(&backward),
            texts(&whole),
            "backward, context {context}, pages of {size}"
        );

        let tail = hub.query(DEPLOYMENT, &filter, Page::Tail(size)).unwrap();
        let start = whole.len().saturating_sub(size);
        assert_eq!(
            texts(&tail),
            texts(&whole[start..]),
            "tail, context {context}"
        );
    }
}

#[tokio::test]
async fn page_after_an_id_continues_its_context() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_lines(dir.path()).await;
    let everything = all(&hub, &LogFilter::everything());
    // Line 3 matches; a page after it starts with its two lines of context.
    let page = Page::After {
        id: everything[3].id,
        limit: 3,
    };
    let got = hub.query(DEPLOYMENT, &filter(2, false), page).unwrap();
    assert_eq!(texts(&got), ["plain 4 (c)", "plain 5 (c)", "plain 8 (c)"]);
}

#[tokio::test]
async fn range_offset_counts_shown_entries() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_lines(dir.path()).await;
    let filter = filter(1, false);
    let whole = all(&hub, &filter);
    let page = Page::Range {
        offset: 4,
        limit: 5,
    };
    let got = hub.query(DEPLOYMENT, &filter, page).unwrap();
    assert_eq!(texts(&got), texts(&whole[4..9]));
}

#[tokio::test]
async fn follower_continues_context_from_its_first_page() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hub_with_lines(dir.path()).await;
    // Line 115 is the newest match: with one line of context, 116 shows
    // after it, and 119 is held in case a match follows.
    let (mut follower, first) = hub.follow_tail(DEPLOYMENT, filter(1, false), 2).unwrap();
    assert_eq!(texts(&first), ["match 115", "plain 116 (c)"]);

    let more = "match new\nplain a\nplain b\n";
    hub.write_text(target(), more.as_bytes()).await;
    let mut followed = Vec::new();
    for _ in 0..3 {
        let item = tokio::time::timeout(std::time::Duration::from_secs(5), follower.next())
            .await
            .unwrap();
        match item {
            super::super::FollowItem::Entry(entry) => followed.push(entry),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        texts(&followed),
        ["plain 119 (c)", "match new", "plain a (c)"],
        "119 shows as context before the new match"
    );
}
