//! Parser for the Prometheus text exposition format (0.0.4), pure.
//!
//! Written here rather than taken from a crate: the crates we looked at either match samples
//! with a line regex that breaks on `}` or `,` inside quoted label values and drops `:` from
//! metric names (`prometheus-parse`), or are LGPL (`openmetrics-parser`). The format is small:
//! `# HELP` / `# TYPE` lines, and `name{label="value",...} value [timestamp_ms]` samples.
//!
//! Like Prometheus, one malformed line fails the whole scrape (the target reports `up = 0`)
//! rather than silently delivering part of it. OpenMetrics' `# EOF` and `# UNIT` lines are
//! tolerated so a target that ignores our `Accept` header still parses.
//!
//! Cost is linear in the input: duplicate label names are found with a hash set once a line has
//! more than a few labels, and [`Limits`] stop a line as soon as it exceeds them (a line with
//! 10⁵ labels is refused at the `label_limit`-th). Error messages quote at most
//! [`QUOTE_LIMIT`] characters of the input, so a hostile body cannot flood the logs.

use std::collections::{HashMap, HashSet};

/// Longest piece of scraped text quoted in an error message, in characters.
pub const QUOTE_LIMIT: usize = 100;

pub use collector_config::prometheus::Limits;

/// `s` cut to [`QUOTE_LIMIT`] characters (`…` marks the cut), for error messages and logs.
pub fn truncate(s: &str) -> std::borrow::Cow<'_, str> {
    truncate_to(s, QUOTE_LIMIT)
}

/// `s` cut to `max` characters (`…` marks the cut).
pub fn truncate_to(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => s.into(),
        Some((i, _)) => format!("{}…", &s[..i]).into(),
    }
}

/// A metric family's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// `# TYPE x counter`.
    Counter,
    /// `# TYPE x gauge`.
    Gauge,
    /// `# TYPE x histogram`: `x_bucket{le=..}`, `x_sum`, `x_count`.
    Histogram,
    /// `# TYPE x summary`: `x{quantile=..}`, `x_sum`, `x_count`.
    Summary,
    /// `untyped`, `unknown`, or no `# TYPE` line.
    Unknown,
}

impl MetricType {
    /// The name upstream puts in the `prometheus.type` metric metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::Unknown => "unknown",
        }
    }
}

/// `# TYPE` and `# HELP` of one family.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Declared type.
    pub kind: MetricType,
    /// Unescaped help text ("" when absent).
    pub help: String,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as written (`x_bucket`, not the family name).
    pub name: String,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value; `NaN` and `±Inf` included.
    pub value: f64,
    /// Explicit timestamp in milliseconds since the epoch, if the line has one.
    pub timestamp_ms: Option<i64>,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    /// Samples in the order they appeared.
    pub samples: Vec<Sample>,
    /// Metadata by family name.
    pub metadata: HashMap<String, Metadata>,
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was expected.
    pub message: String,
}

/// Parses a whole exposition body without per-series limits.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    parse_with(text, &Limits::default())
}

/// Parses a whole exposition body; the first series over `limits` fails it.
pub fn parse_with(text: &str, limits: &Limits) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let err = |message: String| ParseError { line: i + 1, message };
        let line = raw.trim_start_matches([' ', '\t']).trim_end_matches(['\r', ' ', '\t']);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            parse_comment(comment, &mut out.metadata).map_err(err)?;
            continue;
        }
        out.samples.push(parse_sample(line, limits).map_err(err)?);
    }
    Ok(out)
}

fn parse_comment(comment: &str, metadata: &mut HashMap<String, Metadata>) -> Result<(), String> {
    let mut parts = comment.trim_start().splitn(2, [' ', '\t']);
    let keyword = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("").trim_start();
    match keyword {
        "HELP" | "TYPE" => {
            let (name, tail) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
            if !is_metric_name(name) {
                return Err(format!("# {keyword}: invalid metric name {:?}", truncate(name)));
            }
            let entry =
                metadata.entry(name.to_owned()).or_insert(Metadata { kind: MetricType::Unknown, help: String::new() });
            if keyword == "HELP" {
                entry.help = unescape_help(tail.trim_start());
            } else {
                entry.kind = match tail.trim() {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "summary" => MetricType::Summary,
                    "untyped" | "unknown" => MetricType::Unknown,
                    other => return Err(format!("# TYPE {name}: unknown type {:?}", truncate(other))),
                };
            }
            Ok(())
        }
        // Other comments, OpenMetrics' `# UNIT` and `# EOF` carry nothing we use.
        _ => Ok(()),
    }
}

/// HELP text escapes only `\\` and `\n`.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A cursor over one sample line.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.pos += 1;
        }
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        &self.s[start..self.pos]
    }
    fn expect(&mut self, want: char, what: &str) -> Result<(), String> {
        match self.bump() {
            Some(c) if c == want => Ok(()),
            Some(c) => Err(format!("expected {what} {want:?}, found {c:?} at column {}", self.pos)),
            None => Err(format!("expected {what} {want:?}, found end of line")),
        }
    }
}

/// Below this many labels a linear scan finds duplicates faster than hashing.
const LINEAR_DUPLICATE_SCAN: usize = 8;

fn parse_sample(line: &str, limits: &Limits) -> Result<Sample, String> {
    let mut c = Cursor { s: line, pos: 0 };
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
    if !is_metric_name(name) {
        return Err(format!("invalid metric name at the start of {:?}", truncate(line)));
    }
    c.skip_ws();
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    if c.peek() == Some('{') {
        c.bump();
        loop {
            c.skip_ws();
            if c.peek() == Some('}') {
                c.bump();
                break;
            }
            let lname = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if lname.is_empty() || lname.starts_with(|ch: char| ch.is_ascii_digit()) {
                return Err(format!("invalid label name in {:?}", truncate(line)));
            }
            c.skip_ws();
            c.expect('=', "after label name")?;
            c.skip_ws();
            c.expect('"', "to open the label value")?;
            let value = parse_label_value(&mut c)?;
            // Names borrowed from the line: a linear scan for the first few, a hash set beyond
            // (seeded once), so the check stays linear however many labels a line has.
            let duplicate = if names.len() < LINEAR_DUPLICATE_SCAN {
                names.contains(&lname)
            } else {
                if seen.is_empty() {
                    seen.extend(names.iter().copied());
                }
                !seen.insert(lname)
            };
            if duplicate {
                // Prometheus' wording (tsdb's appender), so users find it in upstream's docs.
                return Err(format!("label name {:?} is not unique: invalid sample", truncate(lname)));
            }
            names.push(lname);
            check_limits(name, lname, &value, labels.len() + 2, limits)?;
            labels.push((lname.to_owned(), value));
            c.skip_ws();
            match c.bump() {
                Some(',') => continue,
                Some('}') => break,
                other => return Err(format!("expected ',' or '}}' after a label value, found {other:?}")),
            }
        }
        c.skip_ws();
    }
    let value_text = c.take_while(|ch| ch != ' ' && ch != '\t');
    if value_text.is_empty() {
        return Err(format!("missing value for {}", truncate(name)));
    }
    let value = parse_value(value_text)
        .ok_or_else(|| format!("invalid value {:?} for {}", truncate(value_text), truncate(name)))?;
    c.skip_ws();
    let ts_text = c.take_while(|ch| ch != ' ' && ch != '\t');
    let timestamp_ms = if ts_text.is_empty() {
        None
    } else {
        Some(
            ts_text
                .parse::<i64>()
                .map_err(|_| format!("invalid timestamp {:?} for {}", truncate(ts_text), truncate(name)))?,
        )
    };
    c.skip_ws();
    if c.peek().is_some() {
        return Err(format!("unexpected text after the sample: {:?}", truncate(&line[c.pos..])));
    }
    Ok(Sample { name: name.to_owned(), labels, value, timestamp_ms })
}

/// Prometheus' `verifyLabelLimits`, applied as each label is read; `count` includes `__name__`.
fn check_limits(metric: &str, lname: &str, value: &str, count: usize, limits: &Limits) -> Result<(), String> {
    let metric = truncate_to(metric, 50);
    if limits.label_limit > 0 && count as u64 > limits.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {count}, limit: {})",
            limits.label_limit
        ));
    }
    if limits.label_name_length_limit > 0 && lname.len() as u64 > limits.label_name_length_limit {
        return Err(format!(
            "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: {}, limit: {})",
            truncate_to(lname, 50),
            lname.len(),
            limits.label_name_length_limit
        ));
    }
    if limits.label_value_length_limit > 0 && value.len() as u64 > limits.label_value_length_limit {
        return Err(format!(
            "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: {:?}, length: {}, limit: {})",
            truncate_to(lname, 50),
            truncate_to(value, 50),
            value.len(),
            limits.label_value_length_limit
        ));
    }
    Ok(())
}

/// Reads up to the closing quote; `\\`, `\"` and `\n` are escapes, other backslashes are kept.
fn parse_label_value(c: &mut Cursor<'_>) -> Result<String, String> {
    let mut out = String::new();
    loop {
        match c.bump() {
            None => return Err("unterminated label value".into()),
            Some('"') => return Ok(out),
            Some('\\') => match c.bump() {
                Some('n') => out.push('\n'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return Err("unterminated label value".into()),
            },
            Some(ch) => out.push(ch),
        }
    }
}

/// Go's `ParseFloat` spelling: decimal/exponent numbers, `NaN`, `[+-]Inf` (any case), which
/// Rust's float parser accepts as well.
fn parse_value(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
# HELP http_requests_total Total requests.\nSecond line with a \\ backslash.
# TYPE http_requests_total counter
http_requests_total{method="get",code="200"} 1027 1700000000123
http_requests_total{method="post",code="400",} 3
# A plain comment.
# TYPE temperature_celsius gauge
temperature_celsius{room="a\"b\\c\nd, {x}"} 21.5
temperature_celsius { room = "spaces" } -Inf
temperature_celsius{room="nan"} NaN
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 5
latency_seconds_bucket{le="+Inf"} 10
latency_seconds_sum 3.2
latency_seconds_count 10
job:rate5m 1e-3
no_labels{} 7
"#;

    #[test]
    fn parses_samples_metadata_and_escapes() {
        let e = parse(TEXT).expect("valid");
        assert_eq!(e.samples.len(), 11);
        let help = &e.metadata["http_requests_total"];
        assert_eq!(help.kind, MetricType::Counter);
        assert_eq!(help.help, "Total requests.\nSecond line with a \\ backslash.");
        assert_eq!(e.samples[0].labels, vec![("method".into(), "get".into()), ("code".into(), "200".into())]);
        assert_eq!(e.samples[0].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(e.samples[1].labels.len(), 2, "a trailing comma is allowed");
        assert_eq!(e.samples[2].labels[0].1, "a\"b\\c\nd, {x}");
        assert_eq!(e.samples[3].labels[0], ("room".into(), "spaces".into()));
        assert_eq!(e.samples[3].value, f64::NEG_INFINITY);
        assert!(e.samples[4].value.is_nan());
        assert_eq!(e.samples[6].labels, vec![("le".into(), "+Inf".into())]);
        assert_eq!(e.metadata["latency_seconds"].kind, MetricType::Histogram);
        assert_eq!(e.samples[9].name, "job:rate5m");
        assert_eq!(e.samples[9].value, 0.001);
        assert!(e.samples[10].labels.is_empty());
        assert!(!e.metadata.contains_key("no_labels"));
    }

    #[test]
    fn malformed_lines_fail_with_the_line_number() {
        for (text, want) in [
            ("ok 1\nbad{a=\"x} 1\n", "line 2: unterminated label value"),
            ("x{a=b} 1", "line 1: expected to open the label value"),
            ("x 1 2 3", "line 1: unexpected text"),
            ("x abc", "line 1: invalid value"),
            ("x 1 1.5", "line 1: invalid timestamp"),
            ("x{a=\"1\",a=\"2\"} 1", "line 1: label name \"a\" is not unique: invalid sample"),
            ("# TYPE x countr", "line 1: # TYPE x: unknown type"),
            ("x{1a=\"1\"} 1", "line 1: invalid label name"),
            ("x", "line 1: missing value"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    /// `x{l0="v",l1="v",...,l<n-1>="v",l0="v"} 1`: n distinct labels, then a duplicate.
    fn wide_line(n: usize) -> String {
        let mut s = String::from("x{");
        for i in 0..n {
            s.push_str(&format!("l{i}=\"v\","));
        }
        s.push_str("l0=\"v\"} 1\n");
        s
    }

    #[test]
    fn a_line_with_100k_labels_is_refused_quickly_with_upstreams_wording() {
        let timed = |n: usize| {
            let line = wide_line(n);
            let started = std::time::Instant::now();
            let err = parse(&line).expect_err("duplicate").to_string();
            assert_eq!(err, "line 1: label name \"l0\" is not unique: invalid sample");
            started.elapsed()
        };
        // Unlimited: the duplicate at the end is found in one linear pass. Ten times the labels
        // costs about ten times as much (the quadratic scan cost a hundred times as much).
        let (small, large) = (timed(10_000), timed(100_000));
        assert!(large < small * 40, "10^4 labels: {small:?}, 10^5 labels: {large:?}");
        // The 100 ms budget holds for optimised builds; debug builds are ~10x slower.
        let budget = if cfg!(debug_assertions) { 2000 } else { 100 };
        assert!(large < std::time::Duration::from_millis(budget), "10^5 labels took {large:?}");
        let line = wide_line(100_000);
        // With a label limit the line stops at the limit.
        let limits = Limits { label_limit: 64, ..Limits::default() };
        let err = parse_with(&line, &limits).expect_err("over the limit").to_string();
        assert_eq!(err, "line 1: label_limit exceeded (metric: x, number of labels: 65, limit: 64)");
    }

    #[test]
    fn label_length_limits_use_prometheus_names_and_wording() {
        let limits = Limits { label_name_length_limit: 3, label_value_length_limit: 4, ..Limits::default() };
        let err = parse_with("x{abcd=\"1\"} 1", &limits).expect_err("long name").to_string();
        assert_eq!(err, "line 1: label_name_length_limit exceeded (metric: x, label name: abcd, length: 4, limit: 3)");
        let err = parse_with("x{a=\"12345\"} 1", &limits).expect_err("long value").to_string();
        assert_eq!(
            err,
            "line 1: label_value_length_limit exceeded (metric: x, label name: a, value: \"12345\", length: 5, limit: 4)"
        );
        assert!(parse_with("x{abc=\"1234\"} 1", &limits).is_ok());
    }

    #[test]
    fn errors_quote_at_most_a_bounded_piece_of_the_input() {
        let long = format!("9{} 1", "a".repeat(1 << 20));
        let err = parse(&long).expect_err("bad name").to_string();
        assert!(err.len() < 2 * QUOTE_LIMIT + 100, "{} bytes", err.len());
        let value = "v".repeat(1 << 20);
        let err = parse(&format!("x {value}")).expect_err("bad value").to_string();
        assert!(err.len() < 2 * QUOTE_LIMIT + 100, "{} bytes", err.len());
    }

    #[test]
    fn openmetrics_markers_are_tolerated() {
        let e = parse("# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n").expect("valid");
        assert_eq!(e.samples.len(), 1);
    }
}
