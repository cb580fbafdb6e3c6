//! Turning the scrapes of a deployment's replicas into series values.
//!
//! Each scrape gives one exposition per replica. Gauges are added up over
//! the replicas, as the deployment's total. Counters are stored as their
//! total too, and as a per-second rate (`NAME:rate`) computed per replica,
//! so that one replica's restart reads as a reset of its own counter rather
//! than as a drop of the total. Histograms give the quantiles of the
//! observations made since the previous scrape (`NAME:p50`, `NAME:p95`,
//! `NAME:p99`), from the growth of their buckets.
//!
//! A sample with labels is stored under its name with the labels, such as
//! `http_requests_total{code="500"}`, and also counts towards the series of
//! the bare name, which sums every label set.

use std::collections::{BTreeMap, HashMap};

use super::exposition::{histogram_quantile, Exposition, MetricKind, Sample};
use super::rate::CounterRate;

/// Most series one scrape of a deployment stores. Series of bare names come
/// first, so that a label with unbounded values cannot crowd them out.
pub const MAX_SERIES: usize = 500;

/// Quantiles computed for each histogram, with their series suffixes.
const QUANTILES: [(f64, &str); 3] = [(0.5, ":p50"), (0.95, ":p95"), (0.99, ":p99")];

/// Replica identity: slot and revision, because during a rollout two
/// replicas can share a slot.
pub type ReplicaKey = (u32, u64);

/// Series values from one scrape of a deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScrapedValues {
    /// Series and their values, bare names first.
    pub values: Vec<(String, f64)>,
    /// Series left out because of [`MAX_SERIES`].
    pub dropped: usize,
}

/// Memory of one deployment's scrapes: the previous value of every counter
/// and the previous buckets of every histogram, per replica.
#[derive(Debug, Default)]
pub struct ScrapeMemory {
    counters: HashMap<(ReplicaKey, String), CounterRate>,
    buckets: HashMap<(ReplicaKey, String), Vec<(f64, f64)>>,
}

/// Sums of one scrape before they become values.
#[derive(Default)]
struct Totals {
    sums: BTreeMap<String, f64>,
    rates: BTreeMap<String, f64>,
    /// Growth of the buckets of each histogram family since the last scrape,
    /// by upper bound, over every replica and label set.
    growth: BTreeMap<String, BTreeMap<u64, (f64, f64)>>,
    /// Summary quantiles cannot be added up, so the highest replica's is kept.
    highest: BTreeMap<String, f64>,
}

impl ScrapeMemory {
    /// Computes the values of a scrape taken at `time_ms` from the
    /// expositions of the replicas that responded.
    pub fn values(&mut self, time_ms: i64, scrapes: &[(ReplicaKey, &Exposition)]) -> ScrapedValues {
        let mut totals = Totals::default();
        let mut counters = HashMap::new();
        let mut buckets = HashMap::new();

        for (replica, exposition) in scrapes {
            let kinds: HashMap<&str, MetricKind> = exposition
                .families
                .iter()
                .map(|family| (family.name.as_str(), family.kind))
                .collect();
            let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();

            for sample in &exposition.samples {
                let kind = kinds
                    .get(sample.family.as_str())
                    .copied()
                    .unwrap_or(MetricKind::Untyped);
                if !sample.value.is_finite() {
                    continue;
                }
                match classify(kind, sample) {
                    Role::Bucket(bound) => {
                        let group = series_key(&sample.family, &sample.labels, Some("le"));
                        groups.entry(group).or_default().push((bound, sample.value));
                    }
                    Role::Quantile => {
                        let key = series_key(&sample.name, &sample.labels, None);
                        let highest = totals.highest.entry(key).or_insert(f64::NEG_INFINITY);
                        *highest = highest.max(sample.value);
                    }
                    Role::Counter => {
                        self.add_counter(*replica, sample, time_ms, &mut totals, &mut counters);
                    }
                    Role::Gauge => add_sum(&mut totals.sums, sample),
                }
            }

            for (group, current) in groups {
                let family = group.split('{').next().unwrap_or(&group).to_owned();
                let key = (*replica, group);
                let growth = bucket_growth(self.buckets.get(&key), &current);
                if let Some(growth) = growth {
                    let merged = totals.growth.entry(family).or_default();
                    for (bound, count) in growth {
                        let slot = merged.entry(bound.to_bits()).or_insert((bound, 0.0));
                        slot.1 += count;
                    }
                }
                buckets.insert(key, current);
            }
        }

        // Replicas that did not respond lose their memory, so their next
        // response starts a new rate instead of spanning the gap.
        self.counters = counters;
        self.buckets = buckets;
        finish(totals)
    }

    fn add_counter(
        &self,
        replica: ReplicaKey,
        sample: &Sample,
        time_ms: i64,
        totals: &mut Totals,
        counters: &mut HashMap<(ReplicaKey, String), CounterRate>,
    ) {
        add_sum(&mut totals.sums, sample);
        if !sample.value.is_finite() {
            return;
        }
        let key = series_key(&sample.name, &sample.labels, None);
        let mut rate = self
            .counters
            .get(&(replica, key.clone()))
            .cloned()
            .unwrap_or_default();
        if let Some(per_second) = rate.push(time_ms, sample.value) {
            *totals.rates.entry(format!("{key}:rate")).or_default() += per_second;
            if !sample.labels.is_empty() {
                *totals
                    .rates
                    .entry(format!("{}:rate", sample.name))
                    .or_default() += per_second;
            }
        }
        counters.insert((replica, key), rate);
    }
}

enum Role {
    Gauge,
    Counter,
    Bucket(f64),
    Quantile,
}

fn classify(kind: MetricKind, sample: &Sample) -> Role {
    let suffix_of_family = sample.name.strip_prefix(sample.family.as_str());
    match (kind, suffix_of_family) {
        (MetricKind::Counter, _) => Role::Counter,
        (MetricKind::Histogram, Some("_bucket")) => sample
            .label("le")
            .and_then(parse_bound)
            .map_or(Role::Gauge, Role::Bucket),
        (MetricKind::Histogram | MetricKind::Summary, Some("_count" | "_sum")) => Role::Counter,
        (MetricKind::Summary, _) if sample.label("quantile").is_some() => Role::Quantile,
        _ => Role::Gauge,
    }
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        _ => text.parse().ok(),
    }
}

/// Adds a sample to the series of its labels and to that of its bare name.
fn add_sum(sums: &mut BTreeMap<String, f64>, sample: &Sample) {
    if !sample.value.is_finite() {
        return;
    }
    *sums.entry(sample.name.clone()).or_default() += sample.value;
    if !sample.labels.is_empty() {
        let key = series_key(&sample.name, &sample.labels, None);
        *sums.entry(key).or_default() += sample.value;
    }
}

/// Writes `name{a="1",b="2"}`, with the labels in the parser's sorted order,
/// leaving out `skip`. Quotes, backslashes and newlines in values are
/// escaped as in the exposition format, so the key reads back unambiguously.
fn series_key(name: &str, labels: &[(String, String)], skip: Option<&str>) -> String {
    let kept: Vec<&(String, String)> = labels
        .iter()
        .filter(|(label, _)| Some(label.as_str()) != skip)
        .collect();
    if kept.is_empty() {
        return name.to_owned();
    }
    let mut key = String::with_capacity(name.len() + 16 * kept.len());
    key.push_str(name);
    key.push('{');
    for (position, (label, value)) in kept.into_iter().enumerate() {
        if position > 0 {
            key.push(',');
        }
        key.push_str(label);
        key.push_str("=\"");
        for character in value.chars() {
            match character {
                '\\' => key.push_str("\\\\"),
                '"' => key.push_str("\\\""),
                '\n' => key.push_str("\\n"),
                other => key.push(other),
            }
        }
        key.push('"');
    }
    key.push('}');
    key
}

/// Rewrites a series name as stored: its labels sorted by name, so that
/// `req{path="/",code="200"}` and `req{code="200",path="/"}` name the same
/// series. Accepts `NAME`, `NAME{LABEL="VALUE",...}` and either followed by
/// a suffix such as `:rate` or `:p95`.
pub fn canonical_series(text: &str) -> Result<String, String> {
    let Some(open) = text.find('{') else {
        return check_series_name(text).map(|()| text.to_owned());
    };
    let name = &text[..open];
    check_series_name(name)?;
    let (mut labels, rest) = parse_label_set(&text[open + 1..])?;
    if !rest.is_empty() && !is_suffix(rest) {
        return Err(format!(
            "`{rest}` after the labels is not a suffix such as :rate or :p95"
        ));
    }
    labels.sort();
    for pair in labels.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(format!("label `{}` is given twice", pair[0].0));
        }
    }
    Ok(format!("{}{rest}", series_key(name, &labels, None)))
}

fn check_series_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':');
    if starts_well && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a metric name: use letters, digits, '_' and ':', not starting with a digit"
        ))
    }
}

fn is_suffix(text: &str) -> bool {
    text.strip_prefix(':').is_some_and(|suffix| {
        !suffix.is_empty()
            && suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Label pairs of a series name, as `(name, value)`.
type Labels = Vec<(String, String)>;

/// Parses `a="1",b="2"}` up to and including the closing brace, and returns
/// the pairs with their values unescaped, and the text after the brace.
fn parse_label_set(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let equals = text
            .find('=')
            .ok_or_else(|| "a label is missing its `=\"value\"`".to_owned())?;
        let label = text[..equals].trim();
        if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{label}` is not a label name"));
        }
        let quoted = text[equals + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of label `{label}` must be in double quotes"))?;
        let (value, rest) = unescape_value(quoted)
            .ok_or_else(|| format!("the value of label `{label}` has no closing quote"))?;
        labels.push((label.to_owned(), value));
        text = rest.trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

/// Reads a label value up to its closing quote, decoding `\\`, `\"` and `\n`.
fn unescape_value(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, character)) = chars.next() {
        match character {
            '"' => return Some((value, &text[index + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

/// Returns how much each bucket grew since `previous`. A bucket that shrank
/// means the application restarted, so the current counts are the growth.
/// Without a previous scrape there is no growth to report.
fn bucket_growth(
    previous: Option<&Vec<(f64, f64)>>,
    current: &[(f64, f64)],
) -> Option<Vec<(f64, f64)>> {
    let previous = previous?;
    let before = |bound: f64| {
        previous
            .iter()
            .find(|(other, _)| other.to_bits() == bound.to_bits())
            .map(|(_, count)| *count)
    };
    let reset = current
        .iter()
        .any(|(bound, count)| before(*bound).is_some_and(|old| *count < old));
    Some(
        current
            .iter()
            .map(|(bound, count)| {
                let grown = if reset {
                    *count
                } else {
                    count - before(*bound).unwrap_or(0.0)
                };
                (*bound, grown)
            })
            .collect(),
    )
}

fn finish(totals: Totals) -> ScrapedValues {
    let mut values: Vec<(String, f64)> = Vec::new();
    values.extend(totals.sums);
    values.extend(totals.rates);
    values.extend(totals.highest);
    for (family, growth) in totals.growth {
        let buckets: Vec<(f64, f64)> = growth.into_values().collect();
        for (q, suffix) in QUANTILES {
            let quantile = histogram_quantile(q, &buckets).filter(|value| value.is_finite());
            if let Some(value) = quantile {
                values.push((format!("{family}{suffix}"), value));
            }
        }
    }

    // A control character cannot be part of a stored series name.
    let before = values.len();
    values.retain(|(name, _)| !name.chars().any(char::is_control));
    let unnamed = before - values.len();

    // Bare names first, then labelled series, each group in name order.
    values.sort_by(|(a, _), (b, _)| (a.contains('{'), a).cmp(&(b.contains('{'), b)));
    let dropped = values.len().saturating_sub(MAX_SERIES) + unnamed;
    values.truncate(MAX_SERIES);
    ScrapedValues { values, dropped }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::exposition::parse;

    fn value(values: &ScrapedValues, name: &str) -> Option<f64> {
        values
            .values
            .iter()
            .find(|(series, _)| series == name)
            .map(|(_, value)| *value)
    }

    const FIRST: &str = "\
# TYPE app_requests_total counter
app_requests_total{code=\"200\"} 10
app_requests_total{code=\"500\"} 2
# TYPE app_queue gauge
app_queue 7
# TYPE app_seconds histogram
app_seconds_bucket{le=\"0.1\"} 5
app_seconds_bucket{le=\"1\"} 9
app_seconds_bucket{le=\"+Inf\"} 10
app_seconds_sum 3.5
app_seconds_count 10
";

    #[test]
    fn scrape_totals_gauges_and_counters() {
        let exposition = parse(FIRST);
        let mut memory = ScrapeMemory::default();
        let values = memory.values(1_000, &[((0, 1), &exposition)]);

        assert_eq!(value(&values, "app_queue"), Some(7.0));
        assert_eq!(value(&values, "app_requests_total"), Some(12.0));
        assert_eq!(
            value(&values, "app_requests_total{code=\"500\"}"),
            Some(2.0)
        );
        assert_eq!(value(&values, "app_seconds_count"), Some(10.0));
        assert_eq!(
            value(&values, "app_requests_total:rate"),
            None,
            "no rate from one sample"
        );
        assert_eq!(
            value(&values, "app_seconds:p95"),
            None,
            "no growth from one sample"
        );
        assert_eq!(values.dropped, 0);
    }

    #[test]
    fn scrape_rates_and_quantiles_use_growth() {
        let second = FIRST
            .replace("code=\"200\"} 10", "code=\"200\"} 30")
            .replace("le=\"1\"} 9", "le=\"1\"} 19")
            .replace("le=\"+Inf\"} 10", "le=\"+Inf\"} 20")
            .replace("app_seconds_count 10", "app_seconds_count 20");
        let mut memory = ScrapeMemory::default();
        memory.values(1_000, &[((0, 1), &parse(FIRST))]);
        let values = memory.values(3_000, &[((0, 1), &parse(&second))]);

        assert_eq!(value(&values, "app_requests_total:rate"), Some(10.0));
        assert_eq!(
            value(&values, "app_requests_total{code=\"200\"}:rate"),
            Some(10.0)
        );
        assert_eq!(
            value(&values, "app_requests_total{code=\"500\"}:rate"),
            Some(0.0)
        );
        // All ten new observations fell in (0.1, 1], so the median is halfway.
        let median = value(&values, "app_seconds:p50").unwrap();
        assert!((median - 0.55).abs() < 1e-9, "median {median}");
    }

    #[test]
    fn scrape_replica_restart_resets_its_counter() {
        let before = parse("# TYPE c counter\nc 100\n");
        let other = parse("# TYPE c counter\nc 50\n");
        let restarted = parse("# TYPE c counter\nc 4\n");
        let later = parse("# TYPE c counter\nc 60\n");
        let mut memory = ScrapeMemory::default();
        memory.values(0, &[((0, 1), &before), ((1, 1), &other)]);
        let values = memory.values(2_000, &[((0, 1), &restarted), ((1, 1), &later)]);

        assert_eq!(value(&values, "c"), Some(64.0));
        // Replica 0 restarted: 4 new, replica 1: 10 new, over 2 s.
        assert_eq!(value(&values, "c:rate"), Some(7.0));
    }

    #[test]
    fn scrape_missed_replica_starts_new_rate() {
        let first = parse("# TYPE c counter\nc 10\n");
        let third = parse("# TYPE c counter\nc 30\n");
        let mut memory = ScrapeMemory::default();
        memory.values(0, &[((0, 1), &first)]);
        memory.values(1_000, &[]);
        let values = memory.values(2_000, &[((0, 1), &third)]);

        assert_eq!(value(&values, "c"), Some(30.0));
        assert_eq!(value(&values, "c:rate"), None);
    }

    #[test]
    fn scrape_nan_and_infinity_leave_gaps() {
        let exposition = parse("g NaN\nh +Inf\nh2 -Inf\ni 3\n");
        let values = ScrapeMemory::default().values(0, &[((0, 1), &exposition)]);

        assert_eq!(value(&values, "g"), None);
        assert_eq!(value(&values, "h"), None);
        assert_eq!(value(&values, "h2"), None);
        assert_eq!(value(&values, "i"), Some(3.0));
    }

    #[test]
    fn summary_quantiles_keep_the_highest_replica() {
        let a = parse("# TYPE s summary\ns{quantile=\"0.99\"} 0.2\ns_count 4\ns_sum 1\n");
        let b = parse("# TYPE s summary\ns{quantile=\"0.99\"} 0.7\ns_count 6\ns_sum 2\n");
        let values = ScrapeMemory::default().values(0, &[((0, 1), &a), ((1, 1), &b)]);

        assert_eq!(value(&values, "s{quantile=\"0.99\"}"), Some(0.7));
        assert_eq!(value(&values, "s_count"), Some(10.0));
    }

    #[test]
    fn scrape_cap_drops_labelled_series_first() {
        let mut text = String::from("# TYPE wide gauge\n");
        for index in 0..(MAX_SERIES + 20) {
            text.push_str(&format!("wide{{id=\"{index}\"}} 1\n"));
        }
        text.push_str("zzz_bare 1\n");
        let exposition = parse(&text);
        let values = ScrapeMemory::default().values(0, &[((0, 1), &exposition)]);

        assert_eq!(values.values.len(), MAX_SERIES);
        assert_eq!(
            values.dropped, 22,
            "wide, zzz_bare and 520 labelled, less 500"
        );
        assert_eq!(value(&values, "zzz_bare"), Some(1.0));
        assert_eq!(value(&values, "wide"), Some((MAX_SERIES + 20) as f64));
    }

    #[test]
    fn canonical_series_sorts_labels() {
        assert_eq!(
            canonical_series(r#"req{path="/",code="200"}"#).as_deref(),
            Ok(r#"req{code="200",path="/"}"#)
        );
        assert_eq!(
            canonical_series(r#"req{ path = "/a,b\"c" , code="500" }:rate"#).as_deref(),
            Ok(r#"req{code="500",path="/a,b\"c"}:rate"#)
        );
        assert_eq!(canonical_series("cpu_usage").as_deref(), Ok("cpu_usage"));
        assert_eq!(canonical_series("lat:p95").as_deref(), Ok("lat:p95"));
    }

    #[test]
    fn canonical_series_rejects_malformed_names() {
        for bad in [
            "",
            "9lives",
            "a b",
            r#"req{code=200}"#,
            r#"req{code="200""#,
            r#"req{code="1",code="2"}"#,
            r#"req{code="1"}x"#,
            r#"req{="1"}"#,
        ] {
            assert!(canonical_series(bad).is_err(), "{bad:?} is accepted");
        }
    }

    #[test]
    fn label_values_are_escaped_in_series_names() {
        let exposition = parse("m{path=\"a\\\"b\\\\c\\nd\"} 1\n");
        let values = ScrapeMemory::default().values(0, &[((0, 1), &exposition)]);

        assert_eq!(value(&values, "m{path=\"a\\\"b\\\\c\\nd\"}"), Some(1.0));
    }
}
