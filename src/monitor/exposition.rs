//! Parser for the Prometheus text exposition format, version 0.0.4.
//!
//! Applications expose their own metrics in this format and the agent scrapes
//! them. A scrape may return anything, so parsing never fails as a whole: a
//! line that cannot be read becomes a [`ParseError`] with its line number,
//! and every other line is still read. [`Limits`] bound the samples, families,
//! line length and errors kept from one scrape. The caller must still bound
//! the size of the response body it reads.

mod quantile;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use quantile::histogram_quantile;

/// Default maximum number of samples kept from one scrape.
pub const MAX_SAMPLES: usize = 10_000;

/// Default maximum number of families kept from one scrape.
pub const MAX_FAMILIES: usize = 10_000;

/// Default maximum length of one line in bytes, without its line end.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Default maximum number of line errors listed for one scrape.
pub const MAX_ERRORS: usize = 100;

/// Label pairs of one sample, as `(name, value)`.
type Labels = Vec<(String, String)>;

/// Maximum length of input quoted in an error message, in characters.
const MAX_QUOTED_CHARS: usize = 64;

/// Bounds on what one parse keeps. Whatever goes over a bound is counted and
/// reported once in [`Exposition::errors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_samples: usize,
    pub max_families: usize,
    pub max_line_bytes: usize,
    pub max_errors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_samples: MAX_SAMPLES,
            max_families: MAX_FAMILIES,
            max_line_bytes: MAX_LINE_BYTES,
            max_errors: MAX_ERRORS,
        }
    }
}

/// Metric type from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricKind {
    /// Parses the type keyword of a `# TYPE` line, which the format writes in
    /// lower case.
    fn from_keyword(keyword: &str) -> Option<Self> {
        match keyword {
            "counter" => Some(Self::Counter),
            "gauge" => Some(Self::Gauge),
            "histogram" => Some(Self::Histogram),
            "summary" => Some(Self::Summary),
            "untyped" => Some(Self::Untyped),
            _ => None,
        }
    }
}

/// Metric family: a name with its type and help text. Samples without a
/// `# TYPE` line get an untyped family of their own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    pub kind: MetricKind,
    /// Help text with its `\\` and `\n` escapes decoded.
    pub help: Option<String>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Name as written, such as `request_seconds_bucket`.
    pub name: String,
    /// Name of the family the sample belongs to. It differs from `name` for
    /// the `_bucket`, `_sum` and `_count` samples of a histogram and the
    /// `_sum` and `_count` samples of a summary.
    pub family: String,
    /// Labels sorted by name, with escapes in their values decoded.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line gives one.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// Returns the value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Result of parsing one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Families in the order they first appear.
    pub families: Vec<Family>,
    /// Samples in input order.
    pub samples: Vec<Sample>,
    /// Lines that could not be read, then one entry per limit that was hit.
    pub errors: Vec<ParseError>,
}

impl Exposition {
    /// Returns the family called `name`.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|family| family.name == name)
    }
}

/// Line that could not be read, or a limit that dropped input from
/// `line` on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct ParseError {
    /// Line number, starting at 1.
    pub line: usize,
    pub problem: Problem,
}

/// Problem found on one line of an exposition, or a limit that was reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(
        "line is {length} bytes, over the limit of {max}, so it was skipped; keep lines shorter"
    )]
    LineTooLong { length: usize, max: usize },

    #[error("invalid metric name {name:?}: use only ASCII letters, digits, '_' and ':', not starting with a digit")]
    InvalidMetricName { name: String },

    #[error("invalid label name {name:?}: use only ASCII letters, digits and '_', not starting with a digit")]
    InvalidLabelName { name: String },

    #[error("duplicate label name {name:?}: give each label at most once per sample")]
    DuplicateLabel { name: String },

    #[error("invalid label set: {detail}")]
    InvalidLabelSet { detail: String },

    #[error("invalid escape \"\\{escaped}\" in the value of label {label:?}: only \\\\, \\\" and \\n are allowed")]
    InvalidEscape { label: String, escaped: char },

    #[error("missing value for sample {name:?}: write the value after the name and labels")]
    MissingValue { name: String },

    #[error("invalid sample value {value:?}: expected a number such as 1.5 or 2e3, or NaN, +Inf or -Inf")]
    InvalidValue { value: String },

    #[error("invalid timestamp {value:?}: expected whole milliseconds since the Unix epoch")]
    InvalidTimestamp { value: String },

    #[error("unexpected text {text:?} after the timestamp: a sample line ends after its value and optional timestamp")]
    TrailingText { text: String },

    #[error("invalid {keyword} line: expected \"# {keyword} metric_name ...\"")]
    InvalidDescriptor { keyword: &'static str },

    #[error("unknown metric type {kind:?} for {name:?}: expected counter, gauge, histogram, summary or untyped")]
    UnknownType { name: String, kind: String },

    #[error("second TYPE line for {name:?}: give each family one TYPE line")]
    DuplicateType { name: String },

    #[error("TYPE line for {name:?} after its samples: move it before the first sample")]
    TypeAfterSamples { name: String },

    #[error("second HELP line for {name:?}: give each family one HELP line")]
    DuplicateHelp { name: String },

    #[error("histogram bucket {name:?} has no valid \"le\" label: set le to the bucket's upper bound, such as \"0.5\" or \"+Inf\"")]
    InvalidBucketBound { name: String },

    #[error("summary sample {name:?} has no valid \"quantile\" label: set quantile to a number such as \"0.99\"")]
    InvalidQuantile { name: String },

    #[error("sample limit of {max} reached, so {dropped} more samples from here on were dropped")]
    TooManySamples { max: usize, dropped: usize },

    #[error("family limit of {max} reached, so {dropped} more HELP and TYPE lines from here on were dropped")]
    TooManyFamilies { max: usize, dropped: usize },

    #[error("error limit of {max} reached, so {dropped} more errors from here on are not listed")]
    TooManyErrors { max: usize, dropped: usize },
}

/// Parses a scrape with the default [`Limits`].
pub fn parse(text: &str) -> Exposition {
    parse_with_limits(text, Limits::default())
}

/// Parses a scrape, keeping at most what `limits` allow.
pub fn parse_with_limits(text: &str, limits: Limits) -> Exposition {
    let mut parser = Parser::new(limits);

    for (index, raw_line) in text.split('\n').enumerate() {
        parser.read_line(index + 1, raw_line);
    }

    parser.finish()
}

/// Parsing state of one family, kept beside [`Exposition::families`].
#[derive(Debug, Clone, Copy)]
struct FamilyState {
    position: usize,
    typed: bool,
    helped: bool,
    sampled: bool,
}

/// Input dropped because a limit was reached: how much, and from which
/// line on.
#[derive(Debug, Clone, Copy, Default)]
struct Dropped {
    count: usize,
    first_line: usize,
}

impl Dropped {
    fn add(&mut self, line: usize) {
        if self.count == 0 {
            self.first_line = line;
        }
        self.count += 1;
    }
}

struct Parser {
    limits: Limits,
    out: Exposition,
    states: HashMap<String, FamilyState>,
    dropped_samples: Dropped,
    dropped_families: Dropped,
    dropped_errors: Dropped,
}

/// Sample line before it is assigned to a family.
struct RawSample<'a> {
    name: &'a str,
    labels: Labels,
    value: f64,
    timestamp_ms: Option<i64>,
}

impl Parser {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            out: Exposition::default(),
            states: HashMap::new(),
            dropped_samples: Dropped::default(),
            dropped_families: Dropped::default(),
            dropped_errors: Dropped::default(),
        }
    }

    fn read_line(&mut self, number: usize, raw_line: &str) {
        // Trimming also removes the '\r' of a CRLF line end.
        let line = raw_line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() {
            return;
        }

        if line.len() > self.limits.max_line_bytes {
            let problem = Problem::LineTooLong {
                length: line.len(),
                max: self.limits.max_line_bytes,
            };
            self.report(number, problem);
            return;
        }

        let outcome = match line.strip_prefix('#') {
            Some(comment) => self.read_comment(number, comment),
            None => self.read_sample(number, line),
        };
        if let Err(problem) = outcome {
            self.report(number, problem);
        }
    }

    fn report(&mut self, line: usize, problem: Problem) {
        if self.out.errors.len() < self.limits.max_errors {
            self.out.errors.push(ParseError { line, problem });
        } else {
            self.dropped_errors.add(line);
        }
    }

    /// Reads a `# HELP` or `# TYPE` line. Any other comment is ignored.
    fn read_comment(&mut self, number: usize, comment: &str) -> Result<(), Problem> {
        let comment = comment.trim_start_matches([' ', '\t']);
        let (keyword, rest) = split_token(comment);

        match keyword {
            "HELP" => self.read_help(number, rest),
            "TYPE" => self.read_type(number, rest),
            _ => Ok(()),
        }
    }

    fn read_help(&mut self, number: usize, rest: &str) -> Result<(), Problem> {
        let (name, text) = split_token(rest);
        if name.is_empty() {
            return Err(Problem::InvalidDescriptor { keyword: "HELP" });
        }
        validate_metric_name(name)?;

        let Some(state) = self.declare_family(number, name) else {
            return Ok(());
        };
        if state.helped {
            return Err(Problem::DuplicateHelp {
                name: name.to_owned(),
            });
        }

        self.out.families[state.position].help = Some(unescape_help(text));
        self.set_state(
            name,
            FamilyState {
                helped: true,
                ..state
            },
        );
        Ok(())
    }

    fn read_type(&mut self, number: usize, rest: &str) -> Result<(), Problem> {
        let (name, keyword) = split_token(rest);
        if name.is_empty() {
            return Err(Problem::InvalidDescriptor { keyword: "TYPE" });
        }
        validate_metric_name(name)?;
        let kind = MetricKind::from_keyword(keyword).ok_or_else(|| Problem::UnknownType {
            name: name.to_owned(),
            kind: quote(keyword),
        })?;

        let Some(state) = self.declare_family(number, name) else {
            return Ok(());
        };
        if state.typed {
            return Err(Problem::DuplicateType {
                name: name.to_owned(),
            });
        }
        if state.sampled {
            return Err(Problem::TypeAfterSamples {
                name: name.to_owned(),
            });
        }

        self.out.families[state.position].kind = kind;
        self.set_state(
            name,
            FamilyState {
                typed: true,
                ..state
            },
        );
        Ok(())
    }

    /// Returns the state of family `name`, creating an untyped family if
    /// there is none yet. Returns `None` when the family limit drops it.
    fn declare_family(&mut self, number: usize, name: &str) -> Option<FamilyState> {
        if let Some(state) = self.states.get(name) {
            return Some(*state);
        }

        if self.out.families.len() >= self.limits.max_families {
            self.dropped_families.add(number);
            return None;
        }

        let state = FamilyState {
            position: self.out.families.len(),
            typed: false,
            helped: false,
            sampled: false,
        };
        self.out.families.push(Family {
            name: name.to_owned(),
            kind: MetricKind::Untyped,
            help: None,
        });
        self.states.insert(name.to_owned(), state);
        Some(state)
    }

    fn set_state(&mut self, name: &str, state: FamilyState) {
        if let Some(slot) = self.states.get_mut(name) {
            *slot = state;
        }
    }

    fn read_sample(&mut self, number: usize, line: &str) -> Result<(), Problem> {
        // Past the limit the line is only counted, so a huge scrape costs
        // no more parsing than a full one.
        if self.out.samples.len() >= self.limits.max_samples {
            self.dropped_samples.add(number);
            return Ok(());
        }

        let raw = parse_sample_line(line)?;
        let family = match self.resolve_family(raw.name) {
            Some(family) => family,
            None => match self.declare_family(number, raw.name) {
                Some(_) => raw.name.to_owned(),
                None => return Ok(()),
            },
        };

        let kind = self.family_kind(&family);
        check_special_labels(&raw, &family, kind)?;
        self.mark_sampled(&family);
        self.out.samples.push(Sample {
            name: raw.name.to_owned(),
            family,
            labels: raw.labels,
            value: raw.value,
            timestamp_ms: raw.timestamp_ms,
        });
        Ok(())
    }

    /// Finds the declared family of a sample name: the family of that exact
    /// name, or a histogram or summary that the name's suffix belongs to.
    fn resolve_family(&self, name: &str) -> Option<String> {
        if self.states.contains_key(name) {
            return Some(name.to_owned());
        }

        for suffix in ["_bucket", "_sum", "_count"] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            let belongs = match self.family_kind(base) {
                MetricKind::Histogram => true,
                MetricKind::Summary => suffix != "_bucket",
                _ => false,
            };
            if belongs && self.states.contains_key(base) {
                return Some(base.to_owned());
            }
        }

        None
    }

    fn family_kind(&self, name: &str) -> MetricKind {
        self.states.get(name).map_or(MetricKind::Untyped, |state| {
            self.out.families[state.position].kind
        })
    }

    fn mark_sampled(&mut self, family: &str) {
        if let Some(state) = self.states.get_mut(family) {
            state.sampled = true;
        }
    }

    fn finish(mut self) -> Exposition {
        let samples = self.dropped_samples;
        if samples.count > 0 {
            let problem = Problem::TooManySamples {
                max: self.limits.max_samples,
                dropped: samples.count,
            };
            self.push_summary(samples.first_line, problem);
        }

        let families = self.dropped_families;
        if families.count > 0 {
            let problem = Problem::TooManyFamilies {
                max: self.limits.max_families,
                dropped: families.count,
            };
            self.push_summary(families.first_line, problem);
        }

        let errors = self.dropped_errors;
        if errors.count > 0 {
            let problem = Problem::TooManyErrors {
                max: self.limits.max_errors,
                dropped: errors.count,
            };
            self.push_summary(errors.first_line, problem);
        }

        self.out
    }

    /// Adds a limit report. These bypass the error limit, because there are
    /// at most three and they describe what the listed errors leave out.
    fn push_summary(&mut self, line: usize, problem: Problem) {
        self.out.errors.push(ParseError { line, problem });
    }
}

/// Splits off the first blank-separated token, and returns it with the rest
/// of the text after the blanks that follow it.
fn split_token(text: &str) -> (&str, &str) {
    let end = text.find([' ', '\t']).unwrap_or(text.len());
    let (token, rest) = text.split_at(end);
    (token, rest.trim_start_matches([' ', '\t']))
}

/// Decodes the `\\` and `\n` escapes of help text. Other backslashes are kept
/// as written, because help text is only shown to people.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();

    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }

    out
}

fn parse_sample_line(line: &str) -> Result<RawSample<'_>, Problem> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let (name, rest) = line.split_at(name_end);
    validate_metric_name(name)?;

    let rest = rest.trim_start_matches([' ', '\t']);
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(body) => parse_labels(body)?,
        None => (Vec::new(), rest),
    };

    let (value, timestamp_ms) = parse_value_and_timestamp(name, rest)?;
    Ok(RawSample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses the label pairs after `{` up to and including `}`, and returns
/// them sorted by name with the text after the `}`.
fn parse_labels(body: &str) -> Result<(Labels, &str), Problem> {
    let mut labels = Vec::new();
    let mut rest = body;

    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            sort_labels(&mut labels)?;
            return Ok((labels, after));
        }
        if rest.is_empty() {
            return Err(label_set_error("the label set is not closed with '}'"));
        }

        let (label, after) = parse_label_pair(rest)?;
        labels.push(label);

        rest = after.trim_start_matches([' ', '\t']);
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.is_empty() && !rest.starts_with('}') {
            return Err(label_set_error("expected ',' or '}' after a label value"));
        }
    }
}

/// Parses one `name="value"` pair and returns it with the text after it.
fn parse_label_pair(text: &str) -> Result<((String, String), &str), Problem> {
    let name_end = text.find(['=', ' ', '\t', ',', '}']).unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    validate_label_name(name)?;

    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest
        .strip_prefix('=')
        .ok_or_else(|| label_set_error(&format!("expected '=' after label name {name:?}")))?;

    let rest = rest.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('"').ok_or_else(|| {
        label_set_error(&format!(
            "expected '\"' to open the value of label {name:?}"
        ))
    })?;

    let (value, after) = parse_label_value(name, rest)?;
    Ok(((name.to_owned(), value), after))
}

/// Decodes a label value up to its closing quote and returns it with the
/// text after the quote.
fn parse_label_value<'a>(label: &str, text: &'a str) -> Result<(String, &'a str), Problem> {
    let mut value = String::new();
    let mut chars = text.char_indices();

    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[index + 1..])),
            '\\' => value.push(decode_escape(label, chars.next().map(|(_, c)| c))?),
            _ => value.push(c),
        }
    }

    Err(label_set_error(&format!(
        "the value of label {label:?} is not closed with '\"'"
    )))
}

fn decode_escape(label: &str, escaped: Option<char>) -> Result<char, Problem> {
    match escaped {
        Some('\\') => Ok('\\'),
        Some('"') => Ok('"'),
        Some('n') => Ok('\n'),
        Some(other) => Err(Problem::InvalidEscape {
            label: label.to_owned(),
            escaped: other,
        }),
        None => Err(label_set_error(&format!(
            "the value of label {label:?} ends in a lone backslash"
        ))),
    }
}

/// Sorts labels by name and rejects a name given twice.
fn sort_labels(labels: &mut [(String, String)]) -> Result<(), Problem> {
    labels.sort_by(|a, b| a.0.cmp(&b.0));

    match labels.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        Some(pair) => Err(Problem::DuplicateLabel {
            name: pair[0].0.clone(),
        }),
        None => Ok(()),
    }
}

fn label_set_error(detail: &str) -> Problem {
    Problem::InvalidLabelSet {
        detail: detail.to_owned(),
    }
}

fn parse_value_and_timestamp(name: &str, text: &str) -> Result<(f64, Option<i64>), Problem> {
    let mut tokens = text.split([' ', '\t']).filter(|token| !token.is_empty());

    let value_text = tokens.next().ok_or_else(|| Problem::MissingValue {
        name: name.to_owned(),
    })?;
    let value = parse_value(value_text)?;

    let timestamp_ms = tokens.next().map(parse_timestamp).transpose()?;
    if let Some(extra) = tokens.next() {
        return Err(Problem::TrailingText { text: quote(extra) });
    }

    Ok((value, timestamp_ms))
}

/// Parses a sample value. Rust's float syntax covers what the format writes,
/// including `NaN`, `+Inf` and `-Inf` in any letter case.
fn parse_value(text: &str) -> Result<f64, Problem> {
    text.parse::<f64>()
        .map_err(|_| Problem::InvalidValue { value: quote(text) })
}

fn parse_timestamp(text: &str) -> Result<i64, Problem> {
    text.parse::<i64>()
        .map_err(|_| Problem::InvalidTimestamp { value: quote(text) })
}

/// Checks the labels that histograms and summaries need: `le` on each bucket
/// and `quantile` on each quantile sample of a summary.
fn check_special_labels(
    raw: &RawSample<'_>,
    family: &str,
    kind: MetricKind,
) -> Result<(), Problem> {
    let has_number = |label: &str| {
        raw.labels
            .iter()
            .any(|(name, value)| name == label && value.parse::<f64>().is_ok())
    };

    let is_bucket = raw.name.strip_suffix("_bucket") == Some(family);
    if kind == MetricKind::Histogram && is_bucket && !has_number("le") {
        return Err(Problem::InvalidBucketBound {
            name: raw.name.to_owned(),
        });
    }

    if kind == MetricKind::Summary && raw.name == family && !has_number("quantile") {
        return Err(Problem::InvalidQuantile {
            name: raw.name.to_owned(),
        });
    }

    Ok(())
}

fn validate_metric_name(name: &str) -> Result<(), Problem> {
    if is_valid_name(name, true) {
        Ok(())
    } else {
        Err(Problem::InvalidMetricName { name: quote(name) })
    }
}

fn validate_label_name(name: &str) -> Result<(), Problem> {
    if is_valid_name(name, false) {
        Ok(())
    } else {
        Err(Problem::InvalidLabelName { name: quote(name) })
    }
}

/// Checks a name against `[a-zA-Z_:][a-zA-Z0-9_:]*` for metrics, or the same
/// without ':' for labels.
fn is_valid_name(name: &str, allow_colon: bool) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || (allow_colon && c == ':');

    match name.chars().next() {
        Some(first) if !first.is_ascii_digit() => name.chars().all(allowed),
        _ => false,
    }
}

/// Returns input text for an error message, cut to [`MAX_QUOTED_CHARS`] so
/// that a scrape of garbage gives short messages.
fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
