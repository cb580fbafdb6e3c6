//! Alert rule evaluation: conditions, per-rule alert states, silences and
//! acknowledgements, with no I/O and no clock.
//!
//! The caller passes each sample and the current time, so the same sequence of
//! calls always gives the same transitions, and the store can keep every state
//! as JSON between agent restarts.
//!
//! The states follow Prometheus alerting rules. A rule whose condition is true
//! is pending until it has been true for the rule's `for` duration, then
//! firing, and resolved on the first sample where it is false. A pending alert whose
//! condition stops holding goes back to inactive without a notification.
//! Silences work as in Alertmanager: they suppress notifications but never
//! state changes.
//!
//! Choices where Prometheus and Alertmanager have no direct equivalent:
//!
//! - A missing sample (`None`, or `NaN` from a rate with no previous point)
//!   keeps the state as it is, so a gap neither fires nor resolves. When no
//!   sample has arrived for longer than the rule's `stale_after`, the alert
//!   ends: a pending alert goes back to inactive, and a firing one resolves.
//!   This plays the part of Prometheus dropping an alert whose series went
//!   stale.
//! - When a silence ends while the alert is still firing, the next sample that
//!   holds sends a `Firing` notification again, because receivers never heard
//!   of this firing or lost track of it during the silence.
//! - A `Resolved` notification goes out only for a firing that was announced,
//!   and not while silenced.
//! - An acknowledged alert sends no `Repeat` and no post-silence `Firing`,
//!   because a person already owns it; its `Resolved` notification still goes
//!   out.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::manifest::{AlertCondition, AlertRuleSpec};

/// How long a firing or pending alert survives without samples when the rule
/// does not set `stale_after`. Five minutes is the default lookback delta of
/// Prometheus queries (`--query.lookback-delta`), after which a series counts
/// as stale there.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(300);

/// Errors from building rules and silences, and from acknowledging alerts.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlertError {
    #[error("condition `{value}` is not valid; use one of gt, gte, lt, lte, eq, ne")]
    InvalidCondition { value: String },

    #[error("severity `{value}` is not valid; use one of low, medium, high, critical")]
    InvalidSeverity { value: String },

    #[error("alert rule name is empty; give the rule a name such as high-cpu")]
    EmptyName,

    #[error(
        "alert rule `{rule}` has an empty metric; name the metric to watch, such as cpu_percentage"
    )]
    EmptyMetric { rule: String },

    #[error("alert rule `{rule}` has threshold {value}, which is not a finite number; use a number such as 80")]
    NonFiniteThreshold { rule: String, value: f64 },

    #[error("alert rule `{rule}` has {field} 0s; use at least 1ms, or leave repeatInterval out to send no reminders")]
    ZeroDuration { rule: String, field: &'static str },

    #[error("silence ends at {until}, which is not after now ({now}); choose a later end time")]
    SilenceEnded {
        until: OffsetDateTime,
        now: OffsetDateTime,
    },

    #[error("silence comment is empty; say why the alerts are muted")]
    EmptySilenceComment,

    #[error("silence author is empty; name who created the silence")]
    EmptySilenceAuthor,

    #[error(
        "cannot acknowledge an alert that is {state}; only a firing alert can be acknowledged"
    )]
    NotFiring { state: &'static str },
}

/// Comparison between a sample and a rule's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Ne,
}

impl Condition {
    /// Compares `value` with `threshold`.
    ///
    /// A `NaN` on either side never holds, for `ne` too. `eq` and `ne` compare
    /// exactly, as PromQL's `==` and `!=` do: the metrics worth an equality
    /// rule (replica counts, request counts) are whole numbers, which `f64`
    /// stores exactly, and a tolerance would make `eq 0` true for small
    /// nonzero values.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        if value.is_nan() || threshold.is_nan() {
            return false;
        }

        match self {
            Self::Gt => value > threshold,
            Self::Gte => value >= threshold,
            Self::Lt => value < threshold,
            Self::Lte => value <= threshold,
            Self::Eq => value == threshold,
            Self::Ne => value != threshold,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::Eq => "eq",
            Self::Ne => "ne",
        }
    }
}

impl From<AlertCondition> for Condition {
    fn from(condition: AlertCondition) -> Self {
        match condition {
            AlertCondition::Gt => Self::Gt,
            AlertCondition::Gte => Self::Gte,
            AlertCondition::Lt => Self::Lt,
            AlertCondition::Lte => Self::Lte,
            AlertCondition::Eq => Self::Eq,
            AlertCondition::Ne => Self::Ne,
        }
    }
}

impl FromStr for Condition {
    type Err = AlertError;

    fn from_str(text: &str) -> Result<Self, AlertError> {
        let all = [Self::Gt, Self::Gte, Self::Lt, Self::Lte, Self::Eq, Self::Ne];
        all.into_iter()
            .find(|condition| condition.as_str() == text)
            .ok_or_else(|| AlertError::InvalidCondition {
                value: text.to_owned(),
            })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Urgency of an alert, ordered from `low` to `critical` so that `>=` compares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl FromStr for Severity {
    type Err = AlertError;

    fn from_str(text: &str) -> Result<Self, AlertError> {
        let all = [Self::Low, Self::Medium, Self::High, Self::Critical];
        all.into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| AlertError::InvalidSeverity {
                value: text.to_owned(),
            })
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A validated alert rule. Durations are stored as text such as `2m` and keep
/// millisecond resolution, like manifest durations.
///
/// NOTE: deserializing does not rerun the checks of `from_spec`, so only JSON
/// written from a built rule should be read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRule {
    pub name: String,
    pub metric: String,
    pub condition: Condition,
    pub threshold: f64,
    /// Time the condition must stay true before the alert fires. Zero fires on
    /// the first sample where it is true.
    #[serde(rename = "for", with = "duration_text")]
    pub for_duration: Duration,
    /// Time between reminders while firing; `None` sends no reminders.
    #[serde(default, with = "optional_duration_text")]
    pub repeat_interval: Option<Duration>,
    /// Time without samples after which a pending or firing alert ends.
    #[serde(with = "duration_text")]
    pub stale_after: Duration,
    pub severity: Severity,
    /// Names of the notification channels to send to.
    #[serde(default)]
    pub notifications: Vec<String>,
}

impl AlertRule {
    /// Builds a rule from a manifest entry, with reminders at its
    /// `repeatInterval` and [`DEFAULT_STALE_AFTER`]. A rule without a severity is `medium`.
    pub fn from_spec(spec: &AlertRuleSpec) -> Result<Self, AlertError> {
        check_rule_text(&spec.name, &spec.metric)?;
        if !spec.threshold.is_finite() {
            return Err(AlertError::NonFiniteThreshold {
                rule: spec.name.clone(),
                value: spec.threshold,
            });
        }

        let severity = match &spec.severity {
            Some(text) => text.parse()?,
            None => Severity::Medium,
        };
        let for_duration = spec
            .for_duration
            .map_or(Duration::ZERO, |duration| duration.as_std());

        let rule = Self {
            name: spec.name.clone(),
            // Labels in any order name the same stored series.
            metric: crate::monitor::scrape::canonical_series(spec.metric.trim())
                .unwrap_or_else(|_| spec.metric.clone()),
            condition: spec.condition.into(),
            threshold: spec.threshold,
            for_duration,
            repeat_interval: None,
            stale_after: DEFAULT_STALE_AFTER,
            severity,
            notifications: spec.notifications.clone(),
        };
        match spec.repeat_interval {
            Some(interval) => rule.with_repeat_interval(interval.as_std()),
            None => Ok(rule),
        }
    }

    /// Sets the time between reminders while firing; zero is rejected because
    /// it would send a reminder on every sample.
    pub fn with_repeat_interval(mut self, interval: Duration) -> Result<Self, AlertError> {
        self.repeat_interval = Some(self.nonzero(interval, "repeatInterval")?);
        Ok(self)
    }

    /// Sets how long an alert survives without samples; the agent should use a
    /// few collection intervals.
    pub fn with_stale_after(mut self, stale_after: Duration) -> Result<Self, AlertError> {
        self.stale_after = self.nonzero(stale_after, "staleAfter")?;
        Ok(self)
    }

    fn nonzero(&self, duration: Duration, field: &'static str) -> Result<Duration, AlertError> {
        if duration.is_zero() {
            return Err(AlertError::ZeroDuration {
                rule: self.name.clone(),
                field,
            });
        }
        Ok(duration)
    }
}

fn check_rule_text(name: &str, metric: &str) -> Result<(), AlertError> {
    if name.trim().is_empty() {
        return Err(AlertError::EmptyName);
    }
    if metric.trim().is_empty() {
        return Err(AlertError::EmptyMetric {
            rule: name.to_owned(),
        });
    }
    Ok(())
}

/// Record of who acknowledged a firing alert, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Acknowledgement {
    pub author: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// The state of one rule for one deployment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum AlertState {
    /// The condition does not hold, or the rule has never been evaluated.
    #[default]
    Inactive,
    /// The condition holds, but not yet for the rule's `for` duration.
    Pending {
        /// Time of the first sample of this run where the condition was true.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        /// Time of the latest sample, for staleness.
        #[serde(with = "time::serde::rfc3339")]
        last_sample: OffsetDateTime,
    },
    Firing {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        last_sample: OffsetDateTime,
        /// Time of the latest `Firing` or `Repeat` notification; `None` while
        /// this firing has never been announced.
        #[serde(default, with = "time::serde::rfc3339::option")]
        last_notified: Option<OffsetDateTime>,
        /// Whether a silence covered a sample since the latest notification,
        /// so the end of the silence sends `Firing` again.
        #[serde(default)]
        muted: bool,
        #[serde(default)]
        acknowledged: Option<Acknowledgement>,
    },
    /// The alert fired and then stopped. It stays here until the condition is
    /// true again.
    Resolved {
        /// Time the alert started firing.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// A change that should be sent to the rule's notification channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum AlertTransition {
    /// The alert started firing, or is still firing after a silence ended.
    Firing {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        value: f64,
    },
    /// A reminder after the rule's repeat interval.
    Repeat {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        value: f64,
    },
    /// The alert stopped firing; `value` is `None` when it ended because no
    /// samples arrived for `stale_after`.
    Resolved {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        value: Option<f64>,
    },
}

impl AlertState {
    /// Applies one sample taken at `now` and returns the notifications to
    /// send. The list is empty while `silenced`, but the state still changes.
    ///
    /// `value` is `None` when the collector has no sample, and a `NaN` sample
    /// is treated the same way, because a rate with no previous point must
    /// not resolve an alert. Either keeps the state unless the last sample is
    /// older than the rule's `stale_after`.
    pub fn evaluate(
        &mut self,
        rule: &AlertRule,
        value: Option<f64>,
        now: OffsetDateTime,
        silenced: bool,
    ) -> Vec<AlertTransition> {
        let mut transitions = Vec::new();
        self.expire_if_stale(rule, now, silenced, &mut transitions);

        let Some(value) = value.filter(|value| !value.is_nan()) else {
            return transitions;
        };

        if rule.condition.holds(value, rule.threshold) {
            self.apply_holding(rule, value, now, silenced, &mut transitions);
        } else {
            self.apply_clear(value, now, silenced, &mut transitions);
        }
        transitions
    }

    /// Marks a firing alert as owned by `author`, which stops its reminders
    /// until it resolves. Acknowledging twice keeps the first record.
    pub fn acknowledge(&mut self, author: &str, now: OffsetDateTime) -> Result<(), AlertError> {
        let Self::Firing { acknowledged, .. } = self else {
            return Err(AlertError::NotFiring { state: self.name() });
        };

        if acknowledged.is_none() {
            *acknowledged = Some(Acknowledgement {
                author: author.to_owned(),
                at: now,
            });
        }
        Ok(())
    }

    /// Returns the state's name as it appears in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending { .. } => "pending",
            Self::Firing { .. } => "firing",
            Self::Resolved { .. } => "resolved",
        }
    }

    fn expire_if_stale(
        &mut self,
        rule: &AlertRule,
        now: OffsetDateTime,
        silenced: bool,
        transitions: &mut Vec<AlertTransition>,
    ) {
        let last_sample = match self {
            Self::Pending { last_sample, .. } | Self::Firing { last_sample, .. } => *last_sample,
            Self::Inactive | Self::Resolved { .. } => return,
        };
        if !has_elapsed_beyond(last_sample, now, rule.stale_after) {
            return;
        }

        match self {
            Self::Firing { .. } => self.resolve(None, now, silenced, transitions),
            _ => *self = Self::Inactive,
        }
    }

    fn apply_holding(
        &mut self,
        rule: &AlertRule,
        value: f64,
        now: OffsetDateTime,
        silenced: bool,
        transitions: &mut Vec<AlertTransition>,
    ) {
        let pending_since = match self {
            Self::Inactive | Self::Resolved { .. } => now,
            Self::Pending { since, .. } => *since,
            Self::Firing { last_sample, .. } => {
                *last_sample = now;
                self.notify_firing(rule, value, now, silenced, transitions);
                return;
            }
        };

        if has_elapsed(pending_since, now, rule.for_duration) {
            *self = Self::Firing {
                since: now,
                last_sample: now,
                last_notified: None,
                muted: false,
                acknowledged: None,
            };
            self.notify_firing(rule, value, now, silenced, transitions);
        } else {
            *self = Self::Pending {
                since: pending_since,
                last_sample: now,
            };
        }
    }

    /// Decides which notification, if any, a firing alert sends for a sample
    /// where the condition is true.
    fn notify_firing(
        &mut self,
        rule: &AlertRule,
        value: f64,
        now: OffsetDateTime,
        silenced: bool,
        transitions: &mut Vec<AlertTransition>,
    ) {
        let Self::Firing {
            since,
            last_notified,
            muted,
            acknowledged,
            ..
        } = self
        else {
            return;
        };

        if silenced {
            *muted = true;
            return;
        }
        if acknowledged.is_some() {
            return;
        }

        let since = *since;
        let transition = match *last_notified {
            None => AlertTransition::Firing { since, value },
            Some(_) if *muted => AlertTransition::Firing { since, value },
            Some(previous) if is_repeat_due(rule, previous, now) => {
                AlertTransition::Repeat { since, value }
            }
            Some(_) => return,
        };
        *last_notified = Some(now);
        *muted = false;
        transitions.push(transition);
    }

    fn apply_clear(
        &mut self,
        value: f64,
        now: OffsetDateTime,
        silenced: bool,
        transitions: &mut Vec<AlertTransition>,
    ) {
        match self {
            Self::Pending { .. } => *self = Self::Inactive,
            Self::Firing { .. } => self.resolve(Some(value), now, silenced, transitions),
            Self::Inactive | Self::Resolved { .. } => {}
        }
    }

    fn resolve(
        &mut self,
        value: Option<f64>,
        now: OffsetDateTime,
        silenced: bool,
        transitions: &mut Vec<AlertTransition>,
    ) {
        let Self::Firing {
            since,
            last_notified,
            ..
        } = *self
        else {
            return;
        };

        if last_notified.is_some() && !silenced {
            transitions.push(AlertTransition::Resolved { since, value });
        }
        *self = Self::Resolved { since, at: now };
    }
}

fn is_repeat_due(rule: &AlertRule, last_notified: OffsetDateTime, now: OffsetDateTime) -> bool {
    rule.repeat_interval
        .is_some_and(|interval| has_elapsed(last_notified, now, interval))
}

/// Returns whether at least `span` lies between `from` and `now`. A clock that
/// went backwards counts as no time elapsed.
fn has_elapsed(from: OffsetDateTime, now: OffsetDateTime, span: Duration) -> bool {
    Duration::try_from(now - from).is_ok_and(|elapsed| elapsed >= span)
}

fn has_elapsed_beyond(from: OffsetDateTime, now: OffsetDateTime, span: Duration) -> bool {
    Duration::try_from(now - from).is_ok_and(|elapsed| elapsed > span)
}

/// Scope of a silence. Silences are kept per deployment, so `Deployment`
/// means every rule of the deployment that owns the silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SilenceTarget {
    Rule(String),
    Deployment,
}

/// A time-limited mute of notifications, with the reason and who set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Short random id, by which an operator ends the silence early. Silences
    /// stored before ids existed get one when they are loaded.
    #[serde(default)]
    pub id: String,
    pub target: SilenceTarget,
    /// End of the silence, exclusive: at this instant it no longer applies.
    #[serde(with = "time::serde::rfc3339")]
    pub until: OffsetDateTime,
    pub comment: String,
    pub author: String,
}

impl Silence {
    /// Builds a silence, rejecting one that has already ended or lacks a
    /// comment or author.
    pub fn new(
        target: SilenceTarget,
        until: OffsetDateTime,
        comment: &str,
        author: &str,
        now: OffsetDateTime,
    ) -> Result<Self, AlertError> {
        if until <= now {
            return Err(AlertError::SilenceEnded { until, now });
        }
        if comment.trim().is_empty() {
            return Err(AlertError::EmptySilenceComment);
        }
        if author.trim().is_empty() {
            return Err(AlertError::EmptySilenceAuthor);
        }

        Ok(Self {
            id: new_silence_id(),
            target,
            until,
            comment: comment.to_owned(),
            author: author.to_owned(),
        })
    }

    /// Returns whether this silence mutes the rule named `rule` at `now`.
    pub fn covers(&self, rule: &str, now: OffsetDateTime) -> bool {
        if now >= self.until {
            return false;
        }

        match &self.target {
            SilenceTarget::Deployment => true,
            SilenceTarget::Rule(name) => name == rule,
        }
    }
}

/// Returns eight random hexadecimal digits; a failing random source gives
/// the time instead, which is unique enough among one deployment's silences.
pub fn new_silence_id() -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        bytes = (nanos as u32).to_be_bytes();
    }
    hex::encode(bytes)
}

/// Serde for a `Duration` as manifest duration text such as `1m30s`.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::manifest::ManifestDuration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        to_manifest(*duration).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        ManifestDuration::deserialize(deserializer).map(ManifestDuration::as_std)
    }

    /// Drops any fraction of a millisecond, which no rule can act on.
    pub fn to_manifest(duration: Duration) -> ManifestDuration {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        ManifestDuration::from_millis(millis)
    }
}

mod optional_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::manifest::ManifestDuration;

    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        duration
            .map(super::duration_text::to_manifest)
            .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let duration = Option::<ManifestDuration>::deserialize(deserializer)?;
        Ok(duration.map(ManifestDuration::as_std))
    }
}

/// One rule's alert of one deployment, for listings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    pub deployment: String,
    pub environment: String,
    pub rule: String,
    pub silenced: bool,
    /// End of the latest silence that covers the rule now.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub silenced_until: Option<OffsetDateTime>,
    #[serde(flatten)]
    pub state: AlertState,
}

/// A silence as listings show it, with the deployment it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceView {
    pub deployment: String,
    pub environment: String,
    #[serde(flatten)]
    pub silence: Silence,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestDuration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2025-01-01 00:00:00 UTC);

    fn at(seconds: i64) -> OffsetDateTime {
        T0 + time::Duration::seconds(seconds)
    }

    fn spec(condition: AlertCondition, threshold: f64, for_millis: u64) -> AlertRuleSpec {
        AlertRuleSpec {
            name: "high-cpu".to_owned(),
            metric: "cpu_percentage".to_owned(),
            condition,
            threshold,
            for_duration: Some(ManifestDuration::from_millis(for_millis)),
            repeat_interval: None,
            severity: Some("high".to_owned()),
            notifications: vec!["ops-webhook".to_owned()],
        }
    }

    #[test]
    fn repeat_interval_comes_from_the_manifest() {
        let mut with_repeat = spec(AlertCondition::Gt, 50.0, 0);
        with_repeat.repeat_interval = Some(ManifestDuration::from_millis(30_000));
        let rule = AlertRule::from_spec(&with_repeat).unwrap();
        assert_eq!(rule.repeat_interval, Some(Duration::from_secs(30)));

        with_repeat.repeat_interval = Some(ManifestDuration::from_millis(0));
        assert!(
            AlertRule::from_spec(&with_repeat).is_err(),
            "a zero interval is rejected"
        );
    }

    /// `cpu_percentage gt 50`, pending for `for_secs` seconds, no reminders.
    fn rule(for_secs: u64) -> AlertRule {
        AlertRule::from_spec(&spec(AlertCondition::Gt, 50.0, for_secs * 1000)).unwrap()
    }

    /// Feeds `(second, value, silenced)` samples and returns each sample's
    /// transitions and resulting state name.
    fn run(
        state: &mut AlertState,
        rule: &AlertRule,
        samples: &[(i64, Option<f64>, bool)],
    ) -> Vec<(i64, Vec<AlertTransition>, &'static str)> {
        samples
            .iter()
            .map(|&(second, value, silenced)| {
                let transitions = state.evaluate(rule, value, at(second), silenced);
                (second, transitions, state.name())
            })
            .collect()
    }

    fn kinds(transitions: &[AlertTransition]) -> Vec<&'static str> {
        transitions
            .iter()
            .map(|transition| match transition {
                AlertTransition::Firing { .. } => "firing",
                AlertTransition::Repeat { .. } => "repeat",
                AlertTransition::Resolved { .. } => "resolved",
            })
            .collect()
    }

    /// Runs the samples and returns the seconds and kinds of all transitions.
    fn notified(
        state: &mut AlertState,
        rule: &AlertRule,
        samples: &[(i64, Option<f64>, bool)],
    ) -> Vec<(i64, &'static str)> {
        run(state, rule, samples)
            .into_iter()
            .flat_map(|(second, transitions, _)| {
                kinds(&transitions)
                    .into_iter()
                    .map(move |kind| (second, kind))
            })
            .collect()
    }

    #[test]
    fn condition_table() {
        use Condition::*;
        let cases = [
            (Gt, 51.0, true),
            (Gt, 50.0, false),
            (Gt, 49.0, false),
            (Gt, f64::INFINITY, true),
            (Gte, 51.0, true),
            (Gte, 50.0, true),
            (Gte, 49.0, false),
            (Lt, 51.0, false),
            (Lt, 50.0, false),
            (Lt, 49.0, true),
            (Lt, f64::NEG_INFINITY, true),
            (Lte, 51.0, false),
            (Lte, 50.0, true),
            (Lte, 49.0, true),
            (Eq, 50.0, true),
            (Eq, 50.000_000_1, false),
            (Eq, 49.0, false),
            (Ne, 50.0, false),
            (Ne, 50.000_000_1, true),
            (Ne, 49.0, true),
        ];
        for (condition, value, expected) in cases {
            assert_eq!(
                condition.holds(value, 50.0),
                expected,
                "{value} {condition} 50"
            );
        }
    }

    #[test]
    fn condition_nan_never_holds() {
        for condition in ["gt", "gte", "lt", "lte", "eq", "ne"] {
            let condition: Condition = condition.parse().unwrap();
            assert!(!condition.holds(f64::NAN, 50.0), "NaN {condition} 50");
            assert!(!condition.holds(50.0, f64::NAN), "50 {condition} NaN");
            assert!(!condition.holds(f64::NAN, f64::NAN), "NaN {condition} NaN");
        }
    }

    #[test]
    fn condition_parse_and_display() {
        for text in ["gt", "gte", "lt", "lte", "eq", "ne"] {
            let condition: Condition = text.parse().unwrap();
            assert_eq!(condition.to_string(), text);
        }

        let error = "greater".parse::<Condition>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "condition `greater` is not valid; use one of gt, gte, lt, lte, eq, ne"
        );
    }

    #[test]
    fn severity_parse_and_order() {
        for text in ["low", "medium", "high", "critical"] {
            let severity: Severity = text.parse().unwrap();
            assert_eq!(severity.to_string(), text);
        }
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Medium > Severity::Low);

        let error = "urgent".parse::<Severity>().unwrap_err();
        assert!(error.to_string().contains("`urgent`"), "{error}");
    }

    #[test]
    fn rule_from_spec_keeps_fields() {
        let rule = AlertRule::from_spec(&spec(AlertCondition::Lte, 2.5, 120_000)).unwrap();

        assert_eq!(rule.name, "high-cpu");
        assert_eq!(rule.metric, "cpu_percentage");
        assert_eq!(rule.condition, Condition::Lte);
        assert_eq!(rule.threshold, 2.5);
        assert_eq!(rule.for_duration, Duration::from_secs(120));
        assert_eq!(rule.repeat_interval, None);
        assert_eq!(rule.stale_after, DEFAULT_STALE_AFTER);
        assert_eq!(rule.severity, Severity::High);
        assert_eq!(rule.notifications, ["ops-webhook"]);
    }

    #[test]
    fn rule_from_spec_defaults() {
        let mut minimal = spec(AlertCondition::Gt, 1.0, 0);
        minimal.for_duration = None;
        minimal.severity = None;

        let rule = AlertRule::from_spec(&minimal).unwrap();

        assert_eq!(rule.for_duration, Duration::ZERO);
        assert_eq!(rule.severity, Severity::Medium);
    }

    #[test]
    fn rule_from_spec_rejects_bad_input() {
        let mut bad_severity = spec(AlertCondition::Gt, 1.0, 0);
        bad_severity.severity = Some("warning".to_owned());
        let mut empty_name = spec(AlertCondition::Gt, 1.0, 0);
        empty_name.name = " ".to_owned();
        let mut empty_metric = spec(AlertCondition::Gt, 1.0, 0);
        empty_metric.metric = String::new();

        let cases = [
            (bad_severity, "severity `warning` is not valid"),
            (empty_name, "alert rule name is empty"),
            (empty_metric, "`high-cpu` has an empty metric"),
            (spec(AlertCondition::Gt, f64::NAN, 0), "threshold NaN"),
            (spec(AlertCondition::Gt, f64::INFINITY, 0), "threshold inf"),
        ];
        for (spec, expected) in cases {
            let error = AlertRule::from_spec(&spec).unwrap_err().to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn rule_rejects_zero_durations() {
        let error = rule(0).with_repeat_interval(Duration::ZERO).unwrap_err();
        assert!(error.to_string().contains("repeatInterval 0s"), "{error}");

        let error = rule(0).with_stale_after(Duration::ZERO).unwrap_err();
        assert!(error.to_string().contains("staleAfter 0s"), "{error}");
    }

    #[test]
    fn pending_fires_after_exactly_for() {
        let rule = rule(3);
        let mut state = AlertState::default();

        let steps = run(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (1, Some(60.0), false),
                (2, Some(60.0), false),
                (3, Some(60.0), false),
                (4, Some(60.0), false),
            ],
        );

        let names: Vec<_> = steps.iter().map(|(_, _, name)| *name).collect();
        assert_eq!(names, ["pending", "pending", "pending", "firing", "firing"]);
        assert_eq!(
            steps[3].1,
            [AlertTransition::Firing {
                since: at(3),
                value: 60.0
            }]
        );
        assert!(steps[4].1.is_empty(), "{:?}", steps[4].1);
    }

    #[test]
    fn pending_one_millisecond_short() {
        let rule = rule(3);
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        let early = at(3) - time::Duration::milliseconds(1);
        let transitions = state.evaluate(&rule, Some(60.0), early, false);

        assert!(transitions.is_empty(), "{transitions:?}");
        assert_eq!(state.name(), "pending");
    }

    #[test]
    fn zero_for_fires_on_first_sample() {
        let rule = rule(0);
        let mut state = AlertState::default();

        let transitions = state.evaluate(&rule, Some(51.0), at(0), false);

        assert_eq!(
            transitions,
            [AlertTransition::Firing {
                since: at(0),
                value: 51.0
            }]
        );
        assert_eq!(state.name(), "firing");
    }

    #[test]
    fn flapping_within_for_never_fires() {
        let rule = rule(3);
        let mut state = AlertState::default();
        let samples: Vec<_> = (0..30)
            .map(|second| {
                let value = if second % 3 == 2 { 10.0 } else { 90.0 };
                (second, Some(value), false)
            })
            .collect();

        let steps = run(&mut state, &rule, &samples);

        for (second, transitions, name) in steps {
            assert!(transitions.is_empty(), "second {second}: {transitions:?}");
            assert_ne!(name, "firing", "second {second}");
        }
    }

    #[test]
    fn pending_clears_without_notification() {
        let rule = rule(3);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[(0, Some(60.0), false), (1, Some(40.0), false)],
        );

        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(state, AlertState::Inactive);
    }

    #[test]
    fn resolves_once() {
        let rule = rule(0);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (1, Some(40.0), false),
                (2, Some(40.0), false),
                (3, Some(40.0), false),
            ],
        );

        assert_eq!(notes, [(0, "firing"), (1, "resolved")]);
        assert_eq!(
            state,
            AlertState::Resolved {
                since: at(0),
                at: at(1)
            }
        );
    }

    #[test]
    fn resolved_value_is_reported() {
        let rule = rule(0);
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        let transitions = state.evaluate(&rule, Some(12.5), at(1), false);

        assert_eq!(
            transitions,
            [AlertTransition::Resolved {
                since: at(0),
                value: Some(12.5)
            }]
        );
    }

    #[test]
    fn fires_again_after_resolving() {
        let rule = rule(2);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (2, Some(60.0), false),
                (3, Some(40.0), false),
                (4, Some(60.0), false),
                (5, Some(60.0), false),
                (6, Some(60.0), false),
            ],
        );

        assert_eq!(notes, [(2, "firing"), (3, "resolved"), (6, "firing")]);
    }

    #[test]
    fn repeats_at_interval_not_before() {
        let rule = rule(0)
            .with_repeat_interval(Duration::from_secs(10))
            .unwrap();
        let mut state = AlertState::default();
        let samples: Vec<_> = (0..=25).map(|second| (second, Some(60.0), false)).collect();

        let notes = notified(&mut state, &rule, &samples);

        assert_eq!(notes, [(0, "firing"), (10, "repeat"), (20, "repeat")]);
    }

    #[test]
    fn no_repeat_without_interval() {
        let rule = rule(0);
        let mut state = AlertState::default();
        let samples: Vec<_> = (0..=100)
            .map(|second| (second, Some(60.0), false))
            .collect();

        let notes = notified(&mut state, &rule, &samples);

        assert_eq!(notes, [(0, "firing")]);
    }

    #[test]
    fn silence_mutes_but_state_moves() {
        let rule = rule(2)
            .with_repeat_interval(Duration::from_secs(2))
            .unwrap();
        let mut state = AlertState::default();

        let steps = run(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), true),
                (2, Some(60.0), true),
                (4, Some(60.0), true),
                (6, Some(40.0), true),
                (7, Some(40.0), false),
            ],
        );

        let names: Vec<_> = steps.iter().map(|(_, _, name)| *name).collect();
        assert_eq!(
            names,
            ["pending", "firing", "firing", "resolved", "resolved"]
        );
        for (second, transitions, _) in &steps {
            assert!(transitions.is_empty(), "second {second}: {transitions:?}");
        }
    }

    #[test]
    fn silence_end_sends_firing() {
        let rule = rule(0)
            .with_repeat_interval(Duration::from_secs(10))
            .unwrap();
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (5, Some(60.0), true),
                (15, Some(60.0), true),
                (16, Some(60.0), false),
                (25, Some(60.0), false),
                (26, Some(60.0), false),
                (27, Some(40.0), false),
            ],
        );

        assert_eq!(
            notes,
            [
                (0, "firing"),
                (16, "firing"),
                (26, "repeat"),
                (27, "resolved")
            ]
        );
    }

    #[test]
    fn silence_end_announces_muted_firing() {
        let rule = rule(0);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), true),
                (1, Some(60.0), false),
                (2, Some(60.0), false),
            ],
        );

        assert_eq!(notes, [(1, "firing")]);
    }

    #[test]
    fn silenced_resolve_is_not_sent() {
        let rule = rule(0);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (1, Some(40.0), true),
                (2, Some(40.0), false),
            ],
        );

        assert_eq!(notes, [(0, "firing")]);
        assert_eq!(state.name(), "resolved");
    }

    #[test]
    fn unannounced_firing_resolves_quietly() {
        let rule = rule(0);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[(0, Some(60.0), true), (1, Some(40.0), false)],
        );

        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(state.name(), "resolved");
    }

    #[test]
    fn acknowledged_sends_no_repeats() {
        let rule = rule(0)
            .with_repeat_interval(Duration::from_secs(10))
            .unwrap();
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        state.acknowledge("alice", at(1)).unwrap();
        let mut samples: Vec<_> = (2..=40).map(|second| (second, Some(60.0), false)).collect();
        samples.push((41, Some(40.0), false));
        let notes = notified(&mut state, &rule, &samples);

        assert_eq!(notes, [(41, "resolved")]);
    }

    #[test]
    fn acknowledgement_ends_on_resolve() {
        let rule = rule(0)
            .with_repeat_interval(Duration::from_secs(10))
            .unwrap();
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        state.acknowledge("alice", at(1)).unwrap();
        state.evaluate(&rule, Some(40.0), at(2), false);
        let notes = notified(
            &mut state,
            &rule,
            &[(3, Some(60.0), false), (13, Some(60.0), false)],
        );

        assert_eq!(notes, [(3, "firing"), (13, "repeat")]);
    }

    #[test]
    fn acknowledge_keeps_first_author() {
        let rule = rule(0);
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        state.acknowledge("alice", at(1)).unwrap();
        state.acknowledge("bob", at(2)).unwrap();

        let AlertState::Firing { acknowledged, .. } = &state else {
            panic!("expected firing, got {state:?}");
        };
        let expected = Acknowledgement {
            author: "alice".to_owned(),
            at: at(1),
        };
        assert_eq!(acknowledged.as_ref(), Some(&expected));
    }

    #[test]
    fn acknowledge_rejects_other_states() {
        let rule = rule(3);
        let mut state = AlertState::default();

        let error = state.acknowledge("alice", at(0)).unwrap_err();
        assert_eq!(error, AlertError::NotFiring { state: "inactive" });

        state.evaluate(&rule, Some(60.0), at(0), false);
        let error = state.acknowledge("alice", at(1)).unwrap_err();
        assert_eq!(error, AlertError::NotFiring { state: "pending" });
    }

    #[test]
    fn gap_keeps_firing_state() {
        let rule = rule(0).with_stale_after(Duration::from_secs(40)).unwrap();
        let mut state = AlertState::default();

        let steps = run(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (10, None, false),
                (20, Some(f64::NAN), false),
                (30, None, false),
                (31, Some(60.0), false),
            ],
        );

        let names: Vec<_> = steps.iter().map(|(_, _, name)| *name).collect();
        assert_eq!(names, ["firing", "firing", "firing", "firing", "firing"]);
        let later: Vec<_> = steps[1..].iter().map(|(_, t, _)| t.clone()).collect();
        assert!(later.iter().all(Vec::is_empty), "{later:?}");
    }

    #[test]
    fn gap_keeps_pending_timer() {
        let rule = rule(3).with_stale_after(Duration::from_secs(30)).unwrap();
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (1, None, false),
                (3, Some(60.0), false),
            ],
        );

        assert_eq!(notes, [(3, "firing")]);
    }

    #[test]
    fn stale_firing_resolves() {
        let rule = rule(0).with_stale_after(Duration::from_secs(30)).unwrap();
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        let transitions = state.evaluate(&rule, None, at(31), false);

        assert_eq!(
            transitions,
            [AlertTransition::Resolved {
                since: at(0),
                value: None
            }]
        );
        assert_eq!(
            state,
            AlertState::Resolved {
                since: at(0),
                at: at(31)
            }
        );
    }

    #[test]
    fn stale_pending_goes_inactive() {
        let rule = rule(60).with_stale_after(Duration::from_secs(30)).unwrap();
        let mut state = AlertState::default();

        state.evaluate(&rule, Some(60.0), at(0), false);
        let transitions = state.evaluate(&rule, None, at(31), false);

        assert!(transitions.is_empty(), "{transitions:?}");
        assert_eq!(state, AlertState::Inactive);
    }

    #[test]
    fn sample_after_stale_gap_restarts() {
        let rule = rule(3).with_stale_after(Duration::from_secs(30)).unwrap();
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[
                (0, Some(60.0), false),
                (3, Some(60.0), false),
                (100, Some(60.0), false),
                (102, Some(60.0), false),
                (103, Some(60.0), false),
            ],
        );

        assert_eq!(notes, [(3, "firing"), (100, "resolved"), (103, "firing")]);
    }

    #[test]
    fn gap_alone_never_fires() {
        let rule = rule(0);
        let mut state = AlertState::default();

        let notes = notified(
            &mut state,
            &rule,
            &[(0, None, false), (1, Some(f64::NAN), false)],
        );

        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(state, AlertState::Inactive);
    }

    #[test]
    fn silence_covers_target_until_end() {
        let rule_silence = Silence::new(
            SilenceTarget::Rule("high-cpu".to_owned()),
            at(60),
            "load test",
            "alice",
            at(0),
        )
        .unwrap();
        let deployment_silence = Silence::new(
            SilenceTarget::Deployment,
            at(60),
            "maintenance",
            "bob",
            at(0),
        )
        .unwrap();

        assert!(rule_silence.covers("high-cpu", at(0)));
        assert!(rule_silence.covers("high-cpu", at(59)));
        assert!(!rule_silence.covers("high-cpu", at(60)));
        assert!(!rule_silence.covers("low-memory", at(0)));
        assert!(deployment_silence.covers("high-cpu", at(30)));
        assert!(deployment_silence.covers("low-memory", at(30)));
        assert!(!deployment_silence.covers("low-memory", at(61)));
    }

    #[test]
    fn silence_rejects_bad_input() {
        let target = SilenceTarget::Deployment;

        let ended = Silence::new(target.clone(), at(0), "why", "alice", at(0)).unwrap_err();
        let no_comment = Silence::new(target.clone(), at(9), " ", "alice", at(0)).unwrap_err();
        let no_author = Silence::new(target, at(9), "why", "", at(0)).unwrap_err();

        assert!(matches!(ended, AlertError::SilenceEnded { .. }), "{ended}");
        assert_eq!(no_comment, AlertError::EmptySilenceComment);
        assert_eq!(no_author, AlertError::EmptySilenceAuthor);
    }

    #[test]
    fn state_json_round_trip() {
        let rule = rule(0);
        let mut state = AlertState::default();
        state.evaluate(&rule, Some(60.0), at(0), false);
        state.acknowledge("alice", at(1)).unwrap();

        let json = serde_json::to_value(&state).unwrap();

        assert_eq!(json["state"], "firing");
        assert_eq!(json["since"], "2025-01-01T00:00:00Z");
        assert_eq!(json["lastSample"], "2025-01-01T00:00:00Z");
        assert_eq!(json["lastNotified"], "2025-01-01T00:00:00Z");
        assert_eq!(json["acknowledged"]["author"], "alice");
        let back: AlertState = serde_json::from_value(json).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn rule_json_round_trip() {
        let rule = rule(90)
            .with_repeat_interval(Duration::from_secs(3600))
            .unwrap();

        let json = serde_json::to_value(&rule).unwrap();

        assert_eq!(json["for"], "1m30s");
        assert_eq!(json["repeatInterval"], "1h");
        assert_eq!(json["staleAfter"], "5m");
        assert_eq!(json["condition"], "gt");
        assert_eq!(json["severity"], "high");
        let back: AlertRule = serde_json::from_value(json).unwrap();
        assert_eq!(back, rule);
    }

    #[test]
    fn silence_json_round_trip() {
        let silences = [
            Silence::new(SilenceTarget::Deployment, at(60), "deploy", "bob", at(0)).unwrap(),
            Silence::new(
                SilenceTarget::Rule("high-cpu".to_owned()),
                at(60),
                "load test",
                "alice",
                at(0),
            )
            .unwrap(),
        ];

        let json = serde_json::to_value(&silences).unwrap();

        assert_eq!(json[0]["target"], "deployment");
        assert_eq!(json[1]["target"]["rule"], "high-cpu");
        assert_eq!(json[1]["until"], "2025-01-01T00:01:00Z");
        let back: Vec<Silence> = serde_json::from_value(json).unwrap();
        assert_eq!(back, silences);
    }
}
