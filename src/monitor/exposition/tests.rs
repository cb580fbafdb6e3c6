use super::*;

/// Output in the style of the Go client library: a summary with quantiles,
/// a labelled counter, a histogram, and values in Go's float formatting.
const GO_STYLE: &str = r#"# HELP worker_gc_pause_seconds Pause time of garbage collection cycles.
# TYPE worker_gc_pause_seconds summary
worker_gc_pause_seconds{quantile="0"} 2.8e-05
worker_gc_pause_seconds{quantile="0.5"} 6.1e-05
worker_gc_pause_seconds{quantile="1"} 0.000412
worker_gc_pause_seconds_sum 0.0093
worker_gc_pause_seconds_count 88
# HELP worker_threads Number of threads the worker runs.
# TYPE worker_threads gauge
worker_threads 23
# HELP orders_handled_total Orders handled, by outcome.
# TYPE orders_handled_total counter
orders_handled_total{outcome="accepted",region="eu-west"} 14209
orders_handled_total{outcome="rejected",region="eu-west"} 37
# HELP order_latency_seconds Time from receipt to acknowledgement.
# TYPE order_latency_seconds histogram
order_latency_seconds_bucket{le="0.01"} 902
order_latency_seconds_bucket{le="0.05"} 1311
order_latency_seconds_bucket{le="0.25"} 1402
order_latency_seconds_bucket{le="1"} 1410
order_latency_seconds_bucket{le="+Inf"} 1412
order_latency_seconds_sum 29.807
order_latency_seconds_count 1412
# HELP worker_start_time_seconds Start time of the process since the Unix epoch.
# TYPE worker_start_time_seconds gauge
worker_start_time_seconds 1.71834562941e+09
"#;

/// Output in the style of the Python client library: `.0` on whole values,
/// `_created` gauges beside counters, an info-style gauge with many labels.
const PYTHON_STYLE: &str = r#"# HELP runtime_info Runtime version details
# TYPE runtime_info gauge
runtime_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0
# HELP uploads_total Files uploaded
# TYPE uploads_total counter
uploads_total{bucket="avatars"} 52.0
uploads_total{bucket="reports"} 3.0
# HELP uploads_created Files uploaded
# TYPE uploads_created gauge
uploads_created{bucket="avatars"} 1.7183411020527e+09
uploads_created{bucket="reports"} 1.7183411020531e+09
# HELP upload_size_bytes Size of uploaded files
# TYPE upload_size_bytes histogram
upload_size_bytes_bucket{le="1024.0"} 9.0
upload_size_bytes_bucket{le="65536.0"} 48.0
upload_size_bytes_bucket{le="+Inf"} 55.0
upload_size_bytes_count 55.0
upload_size_bytes_sum 1.9841e+06
"#;

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn only_sample(text: &str) -> Sample {
    let exposition = parse(text);
    assert_eq!(exposition.errors, vec![], "input {text:?}");
    assert_eq!(exposition.samples.len(), 1, "input {text:?}");
    exposition.samples[0].clone()
}

fn only_problem(text: &str) -> Problem {
    let exposition = parse(text);
    assert_eq!(exposition.errors.len(), 1, "input {text:?}: {exposition:?}");
    exposition.errors[0].problem.clone()
}

#[test]
fn go_style_families() {
    let exposition = parse(GO_STYLE);
    assert_eq!(exposition.errors, vec![]);

    let kinds: Vec<(&str, MetricKind)> = exposition
        .families
        .iter()
        .map(|family| (family.name.as_str(), family.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("worker_gc_pause_seconds", MetricKind::Summary),
            ("worker_threads", MetricKind::Gauge),
            ("orders_handled_total", MetricKind::Counter),
            ("order_latency_seconds", MetricKind::Histogram),
            ("worker_start_time_seconds", MetricKind::Gauge),
        ]
    );

    let threads = exposition.family("worker_threads").expect("family");
    assert_eq!(
        threads.help.as_deref(),
        Some("Number of threads the worker runs.")
    );
}

#[test]
fn go_style_samples() {
    let exposition = parse(GO_STYLE);
    assert_eq!(exposition.samples.len(), 16);

    let families: Vec<&str> = exposition
        .samples
        .iter()
        .map(|sample| sample.family.as_str())
        .collect();
    assert!(families[..5]
        .iter()
        .all(|family| *family == "worker_gc_pause_seconds"));
    assert!(families[8..15]
        .iter()
        .all(|family| *family == "order_latency_seconds"));

    let median = &exposition.samples[1];
    assert_eq!(median.label("quantile"), Some("0.5"));
    assert_eq!(median.value, 6.1e-05);

    let rejected = &exposition.samples[7];
    assert_eq!(
        rejected.labels,
        labels(&[("outcome", "rejected"), ("region", "eu-west")])
    );
    assert_eq!(rejected.value, 37.0);

    let start = exposition.samples.last().expect("sample");
    assert_eq!(start.value, 1.71834562941e+09);
    assert_eq!(start.timestamp_ms, None);
}

#[test]
fn go_style_histogram_quantile() {
    let exposition = parse(GO_STYLE);
    let buckets: Vec<(f64, f64)> = exposition
        .samples
        .iter()
        .filter(|sample| sample.name == "order_latency_seconds_bucket")
        .map(|sample| {
            let le = sample
                .label("le")
                .expect("le")
                .parse::<f64>()
                .expect("bound");
            (le, sample.value)
        })
        .collect();
    assert_eq!(buckets.len(), 5);

    // Rank 706 of 1412 falls in the first bucket, which contains 902.
    let median = histogram_quantile(0.5, &buckets).expect("median");
    assert!((median - 0.01 * 706.0 / 902.0).abs() < 1e-12, "{median}");
}

#[test]
fn python_style() {
    let exposition = parse(PYTHON_STYLE);
    assert_eq!(exposition.errors, vec![]);
    assert_eq!(exposition.families.len(), 4);
    assert_eq!(exposition.samples.len(), 10);

    let info = &exposition.samples[0];
    assert_eq!(info.family, "runtime_info");
    assert_eq!(info.label("version"), Some("3.12.3"));
    assert_eq!(info.labels.len(), 5);

    let created = &exposition.samples[3];
    assert_eq!(created.family, "uploads_created");
    assert_eq!(
        exposition.family("uploads_created").map(|f| f.kind),
        Some(MetricKind::Gauge)
    );

    let count = &exposition.samples[8];
    assert_eq!(count.name, "upload_size_bytes_count");
    assert_eq!(count.family, "upload_size_bytes");
    assert_eq!(count.value, 55.0);
}

#[test]
fn label_values_table() {
    let cases: &[(&str, &str)] = &[
        (r#"m{path="/a/b"} 1"#, "/a/b"),
        (r#"m{path="C:\\dir"} 1"#, r"C:\dir"),
        (r#"m{path="say \"hi\""} 1"#, r#"say "hi""#),
        (r#"m{path="two\nlines"} 1"#, "two\nlines"),
        (r#"m{path="\\n"} 1"#, r"\n"),
        (r#"m{path=""} 1"#, ""),
        (r#"m{path="a,b}c=d"} 1"#, "a,b}c=d"),
        (r#"m{path="grüße ✓"} 1"#, "grüße ✓"),
        (r#"m{ path = "spaced" } 1"#, "spaced"),
        (r#"m{path="trailing comma",} 1"#, "trailing comma"),
    ];

    for (line, expected) in cases {
        let sample = only_sample(line);
        assert_eq!(sample.label("path"), Some(*expected), "line {line:?}");
    }
}

#[test]
fn labels_sorted_by_name() {
    let sample = only_sample(r#"m{zone="b",app="a",mode="c"} 1"#);

    assert_eq!(
        sample.labels,
        labels(&[("app", "a"), ("mode", "c"), ("zone", "b")])
    );
}

#[test]
fn empty_label_set() {
    let with_braces = only_sample("up{} 1");
    let without = only_sample("up 1");

    assert_eq!(with_braces.labels, vec![]);
    assert_eq!(with_braces, without);
}

#[test]
fn values_table() {
    let cases: &[(&str, f64)] = &[
        ("m 0", 0.0),
        ("m -3", -3.0),
        ("m 1.5", 1.5),
        ("m 2e3", 2000.0),
        ("m 1.2E-3", 0.0012),
        ("m +Inf", f64::INFINITY),
        ("m -Inf", f64::NEG_INFINITY),
        ("m inf", f64::INFINITY),
        ("m 9007199254740993", 9007199254740992.0),
    ];

    for (line, expected) in cases {
        assert_eq!(only_sample(line).value, *expected, "line {line:?}");
    }
}

#[test]
fn nan_value() {
    for line in ["m NaN", "m nan", r#"m{a="b"} NaN 1000"#] {
        assert!(only_sample(line).value.is_nan(), "line {line:?}");
    }
}

#[test]
fn timestamps_table() {
    let cases: &[(&str, Option<i64>)] = &[
        ("m 1", None),
        ("m 1 1718345629410", Some(1_718_345_629_410)),
        ("m 1 0", Some(0)),
        ("m 1 -5000", Some(-5000)),
        ("m +Inf 1718345629410", Some(1_718_345_629_410)),
        ("m\t1\t42", Some(42)),
    ];

    for (line, expected) in cases {
        assert_eq!(only_sample(line).timestamp_ms, *expected, "line {line:?}");
    }
}

#[test]
fn line_ends_and_whitespace() {
    let text = "# TYPE m counter\r\nm{a=\"x\"} 3 77  \r\n\r\n  \t\r\nm{a=\"y\"} 4\t\r\n";
    let exposition = parse(text);
    assert_eq!(exposition.errors, vec![]);
    assert_eq!(exposition.samples.len(), 2);

    assert_eq!(exposition.samples[0].timestamp_ms, Some(77));
    assert_eq!(exposition.samples[1].value, 4.0);
    assert_eq!(exposition.samples[1].label("a"), Some("y"));
}

#[test]
fn help_text_unescaped() {
    let text = "# HELP m Path C:\\\\tmp\\nsecond line, \\q kept\n";
    let exposition = parse(text);

    assert_eq!(
        exposition.family("m").and_then(|f| f.help.clone()),
        Some("Path C:\\tmp\nsecond line, \\q kept".to_string())
    );
}

#[test]
fn other_comments_ignored() {
    let text = "# just a note\n#HELPLESS m x\n#\n# EOF\nm 1\n";
    let exposition = parse(text);

    assert_eq!(exposition.errors, vec![]);
    assert_eq!(exposition.families.len(), 1);
    assert_eq!(exposition.samples.len(), 1);
}

#[test]
fn untyped_families() {
    let text = "# HELP described Has help but no type.\ndescribed 1\nbare_metric 2\n";
    let exposition = parse(text);

    let kinds: Vec<(&str, MetricKind, bool)> = exposition
        .families
        .iter()
        .map(|f| (f.name.as_str(), f.kind, f.help.is_some()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("described", MetricKind::Untyped, true),
            ("bare_metric", MetricKind::Untyped, false),
        ]
    );
}

#[test]
fn suffix_only_joins_matching_kind() {
    let text = "# TYPE g gauge\ng 1\ng_count 2\n# TYPE s summary\ns_bucket 3\ns_sum 4\n";
    let exposition = parse(text);
    assert_eq!(exposition.errors, vec![]);

    let families: Vec<(&str, &str)> = exposition
        .samples
        .iter()
        .map(|s| (s.name.as_str(), s.family.as_str()))
        .collect();
    assert_eq!(
        families,
        vec![
            ("g", "g"),
            ("g_count", "g_count"),
            ("s_bucket", "s_bucket"),
            ("s_sum", "s"),
        ]
    );
}

#[test]
fn bad_lines_table() {
    let cases: Vec<(&str, Problem)> = vec![
        (
            "2xx_requests 1",
            Problem::InvalidMetricName {
                name: "2xx_requests".into(),
            },
        ),
        (
            "http-requests 1",
            Problem::InvalidMetricName {
                name: "http-requests".into(),
            },
        ),
        (
            "{a=\"b\"} 1",
            Problem::InvalidMetricName { name: "".into() },
        ),
        (
            "m{a=\"1\",a=\"2\"} 1",
            Problem::DuplicateLabel { name: "a".into() },
        ),
        (
            "m{a:b=\"1\"} 1",
            Problem::InvalidLabelName { name: "a:b".into() },
        ),
        (
            "m{9a=\"1\"} 1",
            Problem::InvalidLabelName { name: "9a".into() },
        ),
        (
            "m{a=\"x\\ty\"} 1",
            Problem::InvalidEscape {
                label: "a".into(),
                escaped: 't',
            },
        ),
        (
            "m{a=1} 1",
            Problem::InvalidLabelSet {
                detail: "expected '\"' to open the value of label \"a\"".into(),
            },
        ),
        (
            "m{a} 1",
            Problem::InvalidLabelSet {
                detail: "expected '=' after label name \"a\"".into(),
            },
        ),
        (
            "m{a=\"1\" b=\"2\"} 1",
            Problem::InvalidLabelSet {
                detail: "expected ',' or '}' after a label value".into(),
            },
        ),
        (
            "m{a=\"1\"",
            Problem::InvalidLabelSet {
                detail: "the label set is not closed with '}'".into(),
            },
        ),
        (
            "m{a=\"open} 1",
            Problem::InvalidLabelSet {
                detail: "the value of label \"a\" is not closed with '\"'".into(),
            },
        ),
        ("m", Problem::MissingValue { name: "m".into() }),
        ("m{a=\"b\"}", Problem::MissingValue { name: "m".into() }),
        (
            "m one",
            Problem::InvalidValue {
                value: "one".into(),
            },
        ),
        (
            "m 0x1F",
            Problem::InvalidValue {
                value: "0x1F".into(),
            },
        ),
        (
            "m 1 1.5",
            Problem::InvalidTimestamp {
                value: "1.5".into(),
            },
        ),
        (
            "m 1 99999999999999999999",
            Problem::InvalidTimestamp {
                value: "99999999999999999999".into(),
            },
        ),
        ("m 1 2 3", Problem::TrailingText { text: "3".into() }),
        ("# HELP", Problem::InvalidDescriptor { keyword: "HELP" }),
        ("# TYPE ", Problem::InvalidDescriptor { keyword: "TYPE" }),
        (
            "# TYPE m-x counter",
            Problem::InvalidMetricName { name: "m-x".into() },
        ),
        (
            "# TYPE m timer",
            Problem::UnknownType {
                name: "m".into(),
                kind: "timer".into(),
            },
        ),
        (
            "# TYPE m Counter",
            Problem::UnknownType {
                name: "m".into(),
                kind: "Counter".into(),
            },
        ),
    ];

    for (line, expected) in cases {
        assert_eq!(only_problem(line), expected, "line {line:?}");
    }
}

#[test]
fn bad_line_keeps_others() {
    let text = "good_a 1\nbad-name 2\ngood_b{x=\"1\"} 3\nm{x=\"1\",x=\"2\"} 4\ngood_c 5\n";
    let exposition = parse(text);

    let names: Vec<&str> = exposition.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["good_a", "good_b", "good_c"]);

    let lines: Vec<usize> = exposition.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 4]);
}

#[test]
fn descriptor_order_errors() {
    let text =
        "# TYPE a gauge\n# TYPE a counter\nb 1\n# TYPE b gauge\n# HELP c one\n# HELP c two\n";
    let exposition = parse(text);

    let errors: Vec<(usize, Problem)> = exposition
        .errors
        .iter()
        .map(|e| (e.line, e.problem.clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (2, Problem::DuplicateType { name: "a".into() }),
            (4, Problem::TypeAfterSamples { name: "b".into() }),
            (6, Problem::DuplicateHelp { name: "c".into() }),
        ]
    );

    assert_eq!(
        exposition.family("a").map(|f| f.kind),
        Some(MetricKind::Gauge)
    );
    assert_eq!(
        exposition.family("b").map(|f| f.kind),
        Some(MetricKind::Untyped)
    );
    assert_eq!(
        exposition.family("c").and_then(|f| f.help.clone()),
        Some("one".to_string())
    );
}

#[test]
fn histogram_and_summary_labels() {
    let text = "# TYPE h histogram\n\
                h_bucket{le=\"0.5\"} 1\n\
                h_bucket 2\n\
                h_bucket{le=\"wide\"} 3\n\
                h_sum 4\n\
                # TYPE s summary\n\
                s{quantile=\"0.9\"} 5\n\
                s 6\n\
                s_count 7\n";
    let exposition = parse(text);

    let kept: Vec<&str> = exposition.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(kept, vec!["h_bucket", "h_sum", "s", "s_count"]);

    let errors: Vec<(usize, Problem)> = exposition
        .errors
        .iter()
        .map(|e| (e.line, e.problem.clone()))
        .collect();
    let bucket = || Problem::InvalidBucketBound {
        name: "h_bucket".into(),
    };
    assert_eq!(
        errors,
        vec![
            (3, bucket()),
            (4, bucket()),
            (8, Problem::InvalidQuantile { name: "s".into() }),
        ]
    );
}

#[test]
fn sample_limit_reports_dropped() {
    let text: String = (0..25).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    let limits = Limits {
        max_samples: 10,
        ..Limits::default()
    };
    let exposition = parse_with_limits(&text, limits);

    assert_eq!(exposition.samples.len(), 10);
    assert_eq!(exposition.samples[9].value, 9.0);
    assert_eq!(
        exposition.errors,
        vec![ParseError {
            line: 11,
            problem: Problem::TooManySamples {
                max: 10,
                dropped: 15
            },
        }]
    );
}

#[test]
fn default_sample_limit() {
    let text: String = (0..MAX_SAMPLES + 3).map(|i| format!("m {i}\n")).collect();
    let exposition = parse(&text);

    assert_eq!(exposition.samples.len(), MAX_SAMPLES);
    assert_eq!(
        exposition.errors.last().map(|e| e.problem.clone()),
        Some(Problem::TooManySamples {
            max: MAX_SAMPLES,
            dropped: 3
        })
    );
}

#[test]
fn long_line_skipped() {
    let long_value = "x".repeat(100);
    let text = format!("a 1\nm{{v=\"{long_value}\"}} 2\nb 3\n");
    let limits = Limits {
        max_line_bytes: 64,
        ..Limits::default()
    };
    let exposition = parse_with_limits(&text, limits);

    let names: Vec<&str> = exposition.samples.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["a", "b"]);
    assert_eq!(
        exposition.errors,
        vec![ParseError {
            line: 2,
            problem: Problem::LineTooLong {
                length: 109,
                max: 64
            },
        }]
    );
}

#[test]
fn family_limit_reports_dropped() {
    let text: String = (0..5)
        .map(|i| format!("# TYPE f{i} gauge\nf{i} 1\n"))
        .collect();
    let limits = Limits {
        max_families: 2,
        ..Limits::default()
    };
    let exposition = parse_with_limits(&text, limits);

    assert_eq!(exposition.families.len(), 2);
    assert_eq!(exposition.samples.len(), 2);
    assert_eq!(
        exposition.errors,
        vec![ParseError {
            line: 5,
            problem: Problem::TooManyFamilies { max: 2, dropped: 6 },
        }]
    );
}

#[test]
fn error_limit_reports_dropped() {
    let text = "bad-name 1\n".repeat(7);
    let limits = Limits {
        max_errors: 3,
        ..Limits::default()
    };
    let exposition = parse_with_limits(&text, limits);

    assert_eq!(exposition.errors.len(), 4);
    assert_eq!(
        exposition.errors[3],
        ParseError {
            line: 4,
            problem: Problem::TooManyErrors { max: 3, dropped: 4 },
        }
    );
}

#[test]
fn garbage_gives_errors() {
    let html = "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n";
    let exposition = parse(html);

    assert_eq!(exposition.samples, vec![]);
    assert_eq!(exposition.errors.len(), 2);
    assert_eq!(exposition.errors[0].line, 1);
}

#[test]
fn long_garbage_quoted_short() {
    let token = "y".repeat(500);
    let problem = only_problem(&format!("m {token}"));

    let Problem::InvalidValue { value } = problem else {
        panic!("expected an invalid value, got {problem:?}");
    };
    assert_eq!(value.chars().count(), MAX_QUOTED_CHARS + 3);
    assert!(value.ends_with("..."));
}

#[test]
fn error_message_names_line_and_value() {
    let exposition = parse("ok 1\nm one\n");
    let message = exposition.errors[0].to_string();

    assert!(message.starts_with("line 2: "), "{message}");
    assert!(message.contains("\"one\""), "{message}");
}

#[test]
fn empty_input() {
    for text in ["", "\n", "\r\n\r\n", "   "] {
        assert_eq!(parse(text), Exposition::default(), "input {text:?}");
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_input_never_panics(text in "\\PC{0,400}") {
        let limits = Limits { max_samples: 5, max_families: 5, max_line_bytes: 80, max_errors: 5 };
        let exposition = parse_with_limits(&text, limits);

        proptest::prop_assert!(exposition.samples.len() <= 5);
        proptest::prop_assert!(exposition.families.len() <= 5);
        proptest::prop_assert!(exposition.errors.len() <= 8);
    }

    #[test]
    fn exposition_like_input_never_panics(
        lines in proptest::collection::vec("[a-z_{}=\",# \\\\.0-9+\\-]{0,40}", 0..20)
    ) {
        let text = lines.join("\n");
        let exposition = parse(&text);

        for error in &exposition.errors {
            proptest::prop_assert!(error.line >= 1 && error.line <= lines.len().max(1));
        }
    }
}

/// Case name, quantile, buckets and expected result.
type QuantileCase = (&'static str, f64, &'static [(f64, f64)], Option<f64>);

#[test]
fn quantile_table() {
    const INF: f64 = f64::INFINITY;
    const BUCKETS: &[(f64, f64)] = &[(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (INF, 40.0)];
    let cases: &[QuantileCase] = &[
        ("median", 0.5, BUCKETS, Some(0.1 + 0.4 * 10.0 / 20.0)),
        ("in first bucket", 0.1, BUCKETS, Some(0.1 * 4.0 / 10.0)),
        ("exact bucket edge", 0.25, BUCKETS, Some(0.1)),
        ("top finite bound", 1.0, BUCKETS, Some(1.0)),
        ("zero quantile", 0.0, BUCKETS, Some(0.0)),
        ("below zero", -0.5, BUCKETS, Some(f64::NEG_INFINITY)),
        ("above one", 1.5, BUCKETS, Some(INF)),
        ("NaN quantile", f64::NAN, BUCKETS, None),
        (
            "in +Inf bucket",
            0.99,
            &[(1.0, 5.0), (2.0, 8.0), (INF, 10.0)],
            Some(2.0),
        ),
        ("empty list", 0.5, &[], None),
        ("only +Inf", 0.5, &[(INF, 10.0)], None),
        ("no +Inf bucket", 0.5, &[(1.0, 5.0), (2.0, 10.0)], None),
        ("no observations", 0.5, &[(1.0, 0.0), (INF, 0.0)], None),
        ("NaN count", 0.5, &[(1.0, f64::NAN), (INF, 3.0)], None),
        ("NaN bound", 0.5, &[(f64::NAN, 1.0), (INF, 3.0)], None),
        (
            "unsorted input",
            0.5,
            &[(INF, 40.0), (1.0, 40.0), (0.1, 10.0), (0.5, 30.0)],
            Some(0.3),
        ),
        (
            "negative lowest bound",
            0.1,
            &[(-1.0, 2.0), (0.0, 4.0), (INF, 10.0)],
            Some(-1.0),
        ),
        (
            "zero lowest bound",
            0.5,
            &[(0.0, 4.0), (1.0, 10.0), (INF, 10.0)],
            Some(1.0 / 6.0),
        ),
        (
            "non-monotonic counts",
            0.7,
            &[(1.0, 2.0), (2.0, 6.0), (3.0, 4.0), (4.0, 10.0), (INF, 10.0)],
            Some(3.25),
        ),
        (
            "equal bounds added",
            0.5,
            &[(1.0, 2.0), (1.0, 2.0), (INF, 8.0), (INF, 0.0)],
            Some(1.0),
        ),
        (
            "empty lowest bucket at zero quantile",
            0.0,
            &[(1.0, 0.0), (2.0, 5.0), (INF, 5.0)],
            None,
        ),
    ];

    for (name, q, buckets, expected) in cases {
        let actual = histogram_quantile(*q, buckets);
        match (actual, expected) {
            (Some(a), Some(e)) => assert!(
                a == *e || (a - e).abs() < 1e-12,
                "case {name}: got {a}, expected {e}"
            ),
            _ => assert_eq!(actual, *expected, "case {name}"),
        }
    }
}
