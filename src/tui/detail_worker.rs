//! The task that reads what the open detail tab shows.
//!
//! It reads only the tab on screen, and a path again only when the change
//! stream marks it stale or its kind's refresh time has passed. The
//! event loop replaces the request through a watch channel, so requests
//! that follow each other quickly collapse into the latest.

use std::collections::HashMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use super::action::Action;
use super::app::{DetailData, DetailRequest, DetailTab, DETAIL_SERIES, RECENT_EVENTS};
use super::worker::{classify, Pulse, Read};
use crate::api::client::{encode, Client};
use crate::autoscale::AutoscaleView;
use crate::model::{
    AlertRuleView, DeploymentKey, DeploymentView, Event, HealthView, HistoryEntry, Revision,
    SeriesView,
};
use crate::monitor::alerts::{AlertView, SilenceView};

/// How often the task looks for reads that are due; the health, which
/// changes with every probe and has no notice, is read this often.
const READ_INTERVAL: Duration = Duration::from_secs(1);

/// Decisions the autoscale tab reads, newest first: 25 minutes at the
/// default 15 s evaluation interval.
pub const AUTOSCALE_DECISIONS: usize = 100;

/// Events the timeline reads.
/// NOTE: a deployment with more stored events shows only the newest ones.
pub const TIMELINE_LIMIT: usize = 10_000;

/// One read: the API path and how its response becomes [`DetailData`].
struct Fetch {
    path: String,
    what: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Deployment,
    Health,
    RecentEvents,
    Metrics(super::app::MetricsWindow),
    History,
    Revision,
    AlertRules,
    Alerts,
    Silences,
    Timeline,
    Autoscale,
}

/// Reads the detail request's paths: each when the request first needs
/// it, when the change stream marks it stale, and at least every
/// [`Kind::refresh`]. Ends when the event loop drops the request's sender.
#[tracing::instrument(skip_all)]
pub(super) async fn read_detail(
    client: Client,
    mut wanted: watch::Receiver<Option<DetailRequest>>,
    mut pulses: broadcast::Receiver<Pulse>,
    actions: mpsc::Sender<Action>,
) {
    let mut interval = tokio::time::interval(READ_INTERVAL);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_read: HashMap<String, Instant> = HashMap::new();
    loop {
        let pulse = tokio::select! {
            _ = interval.tick() => None,
            changed = wanted.changed() => {
                if changed.is_err() {
                    return;
                }
                None
            }
            pulse = pulses.recv() => match pulse {
                Ok(pulse) => Some(pulse),
                Err(broadcast::error::RecvError::Lagged(_)) => Some(Pulse::Everything),
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let Some(request) = wanted.borrow_and_update().clone() else {
            last_read.clear();
            continue;
        };
        let fetches = fetches(&request);
        last_read.retain(|path, _| fetches.iter().any(|fetch| fetch.path == *path));
        if let Some(pulse) = pulse {
            for fetch in &fetches {
                if fetch.kind.stale_after(&pulse, &request.key) {
                    last_read.remove(&fetch.path);
                }
            }
        }
        for fetch in fetches {
            let due = last_read
                .get(&fetch.path)
                .is_none_or(|read| read.elapsed() >= fetch.kind.refresh());
            if !due {
                continue;
            }
            last_read.insert(fetch.path.clone(), Instant::now());
            let action = match read(&client, &fetch).await {
                Read::Data(data) => Action::Detail {
                    key: request.key.clone(),
                    data,
                },
                Read::Failed(message) => {
                    tracing::debug!(path = %fetch.path, %message, "a detail read failed");
                    Action::Detail {
                        key: request.key.clone(),
                        data: DetailData::Failed {
                            what: fetch.what.to_owned(),
                            message,
                        },
                    }
                }
                // The follow task reports the lost connection.
                Read::Unreachable(_) => break,
            };
            if actions.send(action).await.is_err() {
                tracing::debug!("the dashboard closed; the detail reader stops");
                return;
            }
        }
    }
}

impl Kind {
    /// Returns the maximum time between two reads of this kind, for what changes
    /// without a notice on the change stream: probe results, alerts that
    /// turn pending, and the metric window moving on.
    fn refresh(self) -> Duration {
        match self {
            Self::Health => READ_INTERVAL,
            Self::Alerts => Duration::from_secs(5),
            // A stored revision never changes.
            Self::Revision => Duration::MAX,
            // The agent announces a decision only when it scales, so those
            // that keep the count show within one default evaluation
            // interval.
            Self::Autoscale => Duration::from_secs(crate::autoscale::DEFAULT_INTERVAL_SECONDS),
            _ => Duration::from_secs(30),
        }
    }

    /// Returns whether `pulse` makes what this read returned for `key` stale.
    fn stale_after(self, pulse: &Pulse, key: &DeploymentKey) -> bool {
        match pulse {
            Pulse::Everything => true,
            Pulse::Deployment(of) => {
                of == key
                    && matches!(
                        self,
                        Self::Deployment | Self::History | Self::Health | Self::Autoscale
                    )
            }
            Pulse::Metrics(of) => of == key && matches!(self, Self::Metrics(_)),
            Pulse::Event { key: of, alerts } => {
                of.as_ref() == Some(key)
                    && match self {
                        Self::RecentEvents | Self::Timeline | Self::History | Self::Autoscale => {
                            true
                        }
                        Self::AlertRules | Self::Alerts | Self::Silences => *alerts,
                        _ => false,
                    }
            }
        }
    }
}

async fn read(client: &Client, fetch: &Fetch) -> Read<DetailData> {
    let path = fetch.path.as_str();
    match fetch.kind {
        Kind::Deployment => {
            typed::<DeploymentView>(client, path, |view| DetailData::Deployment(Box::new(view)))
                .await
        }
        Kind::Health => typed::<HealthView>(client, path, DetailData::Health).await,
        // The API lists events oldest first; the tabs show the newest on top.
        Kind::RecentEvents => {
            typed::<Vec<Event>>(client, path, |events| {
                DetailData::RecentEvents(newest_first(events))
            })
            .await
        }
        Kind::Metrics(window) => {
            typed::<Vec<SeriesView>>(client, path, |series| DetailData::Metrics {
                window,
                series,
            })
            .await
        }
        Kind::History => typed::<Vec<HistoryEntry>>(client, path, DetailData::History).await,
        Kind::Revision => {
            typed::<Revision>(client, path, |revision| {
                DetailData::Revision(Box::new(revision))
            })
            .await
        }
        Kind::AlertRules => typed::<Vec<AlertRuleView>>(client, path, DetailData::AlertRules).await,
        Kind::Alerts => typed::<Vec<AlertView>>(client, path, DetailData::Alerts).await,
        Kind::Silences => typed::<Vec<SilenceView>>(client, path, DetailData::Silences).await,
        Kind::Timeline => {
            typed::<Vec<Event>>(client, path, |events| {
                DetailData::Timeline(newest_first(events))
            })
            .await
        }
        Kind::Autoscale => {
            typed::<AutoscaleView>(client, path, |view| DetailData::Autoscale(Box::new(view))).await
        }
    }
}

fn newest_first(mut events: Vec<Event>) -> Vec<Event> {
    events.reverse();
    events
}

async fn typed<T: DeserializeOwned>(
    client: &Client,
    path: &str,
    wrap: impl FnOnce(T) -> DetailData,
) -> Read<DetailData> {
    match classify(client.get::<T>(path).await) {
        Read::Data(value) => Read::Data(wrap(value)),
        Read::Failed(message) => Read::Failed(message),
        Read::Unreachable(reason) => Read::Unreachable(reason),
    }
}

/// Lists the reads the request's tab needs.
fn fetches(request: &DetailRequest) -> Vec<Fetch> {
    let key = &request.key;
    let one = |what: &'static str, suffix: &str, kind: Kind| Fetch {
        path: deployment_path(key, suffix, ""),
        what,
        kind,
    };
    let mut list = match request.tab {
        DetailTab::Overview => vec![
            one("the deployment", "", Kind::Deployment),
            one("the deployment's health", "/health", Kind::Health),
            Fetch {
                path: events_path(key, RECENT_EVENTS),
                what: "the deployment's events",
                kind: Kind::RecentEvents,
            },
        ],
        // The deployment view gives the reason the CPU and memory series may be empty.
        DetailTab::Metrics => vec![
            one("the deployment", "", Kind::Deployment),
            Fetch {
                path: deployment_path(
                    key,
                    "/metrics",
                    &format!(
                        "&{}&metric={}",
                        request.window.query(),
                        encode(&DETAIL_SERIES.join(","))
                    ),
                ),
                what: "the deployment's metrics",
                kind: Kind::Metrics(request.window),
            },
        ],
        DetailTab::History => vec![one("the deployment's history", "/history", Kind::History)],
        DetailTab::Alerts => vec![
            one("the alert rules", "/alert-rules", Kind::AlertRules),
            Fetch {
                path: filtered_path("/v1/alerts", key),
                what: "the deployment's alerts",
                kind: Kind::Alerts,
            },
            Fetch {
                path: filtered_path("/v1/silences", key),
                what: "the deployment's silences",
                kind: Kind::Silences,
            },
        ],
        DetailTab::Timeline => vec![Fetch {
            path: events_path(key, TIMELINE_LIMIT),
            what: "the deployment's events",
            kind: Kind::Timeline,
        }],
        // The lines come from the logs worker; the deployment names the
        // replicas the tab cycles through.
        DetailTab::Logs => vec![one("the deployment", "", Kind::Deployment)],
        // The agent returns 404 while autoscaling is off, so the tab reads
        // nothing and shows that from the deployments list.
        DetailTab::Autoscale if !request.autoscaled => Vec::new(),
        DetailTab::Autoscale => vec![Fetch {
            path: deployment_path(key, "/autoscale", &format!("&limit={AUTOSCALE_DECISIONS}")),
            what: "the deployment's autoscaling",
            kind: Kind::Autoscale,
        }],
    };
    for revision in &request.revisions {
        list.push(one(
            "a revision",
            &format!("/revisions/{revision}"),
            Kind::Revision,
        ));
    }
    list
}

/// Builds `/v1/deployments/NAME{suffix}?env=ENV{query}`.
fn deployment_path(key: &DeploymentKey, suffix: &str, query: &str) -> String {
    format!(
        "/v1/deployments/{}{suffix}?env={}{query}",
        encode(&key.name),
        encode(&key.environment)
    )
}

fn filtered_path(base: &str, key: &DeploymentKey) -> String {
    format!(
        "{base}?deployment={}&env={}",
        encode(&key.name),
        encode(&key.environment)
    )
}

fn events_path(key: &DeploymentKey, limit: usize) -> String {
    format!("{}&limit={limit}", filtered_path("/v1/events", key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::MetricsWindow;

    fn request(tab: DetailTab, revisions: Vec<u64>) -> DetailRequest {
        DetailRequest {
            key: DeploymentKey::new("web shop", "staging"),
            tab,
            window: MetricsWindow::OneHour,
            revisions,
            autoscaled: true,
        }
    }

    fn paths(request: &DetailRequest) -> Vec<String> {
        fetches(request)
            .into_iter()
            .map(|fetch| fetch.path)
            .collect()
    }

    #[test]
    fn overview_reads_deployment_health_events() {
        assert_eq!(
            paths(&request(DetailTab::Overview, vec![4])),
            [
                "/v1/deployments/web%20shop?env=staging",
                "/v1/deployments/web%20shop/health?env=staging",
                "/v1/events?deployment=web%20shop&env=staging&limit=20",
                "/v1/deployments/web%20shop/revisions/4?env=staging",
            ]
        );
    }

    #[test]
    fn metrics_reads_window_series() {
        assert_eq!(
            paths(&request(DetailTab::Metrics, vec![])),
            [
                "/v1/deployments/web%20shop?env=staging",
                "/v1/deployments/web%20shop/metrics?env=staging&since=1h&step=1m&metric=cpu_percentage%2Cmemory_usage%2Cnetwork_bytes_in%2Cnetwork_bytes_out%2Crequests_per_second%2Cresponse_time_p95",
            ]
        );
    }

    #[test]
    fn alerts_and_timeline_paths() {
        assert_eq!(
            paths(&request(DetailTab::Alerts, vec![])),
            [
                "/v1/deployments/web%20shop/alert-rules?env=staging",
                "/v1/alerts?deployment=web%20shop&env=staging",
                "/v1/silences?deployment=web%20shop&env=staging",
            ]
        );
        assert_eq!(
            paths(&request(DetailTab::Timeline, vec![])),
            ["/v1/events?deployment=web%20shop&env=staging&limit=10000"]
        );
    }

    #[test]
    fn autoscale_reads_only_while_on() {
        let mut on = request(DetailTab::Autoscale, vec![]);
        assert_eq!(
            paths(&on),
            ["/v1/deployments/web%20shop/autoscale?env=staging&limit=100"]
        );
        on.autoscaled = false;
        assert!(paths(&on).is_empty());
    }

    #[test]
    fn pulse_staleness_by_kind() {
        let web = DeploymentKey::new("web", "staging");
        let api = DeploymentKey::new("api", "staging");
        let event = |key: &DeploymentKey, alerts| Pulse::Event {
            key: Some(key.clone()),
            alerts,
        };

        assert!(Kind::Timeline.stale_after(&event(&web, false), &web));
        assert!(!Kind::Timeline.stale_after(&event(&api, false), &web));
        assert!(!Kind::Alerts.stale_after(&event(&web, false), &web));
        assert!(Kind::Silences.stale_after(&event(&web, true), &web));
        assert!(Kind::Deployment.stale_after(&Pulse::Deployment(web.clone()), &web));
        assert!(!Kind::Timeline.stale_after(&Pulse::Deployment(web.clone()), &web));
        let window = MetricsWindow::FiveMinutes;
        assert!(Kind::Metrics(window).stale_after(&Pulse::Metrics(web.clone()), &web));
        assert!(!Kind::Metrics(window).stale_after(&Pulse::Metrics(api.clone()), &web));
        assert!(Kind::Revision.stale_after(&Pulse::Everything, &web));
        assert!(Kind::Autoscale.stale_after(&Pulse::Deployment(web.clone()), &web));
        assert!(Kind::Autoscale.stale_after(&event(&web, false), &web));
        assert!(!Kind::Autoscale.stale_after(&Pulse::Metrics(web.clone()), &web));
        let agent_wide = Pulse::Event {
            key: None,
            alerts: true,
        };
        assert!(!Kind::Alerts.stale_after(&agent_wide, &web));
    }

    #[test]
    fn refresh_without_notice() {
        assert_eq!(Kind::Health.refresh(), READ_INTERVAL);
        assert!(Kind::Timeline.refresh() >= Duration::from_secs(30));
        assert_eq!(Kind::Revision.refresh(), Duration::MAX);
    }
}
