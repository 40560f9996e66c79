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

use std::collections::HashMap;

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

/// Parses a whole exposition body.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
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
        out.samples.push(parse_sample(line).map_err(err)?);
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
                return Err(format!("# {keyword}: invalid metric name {name:?}"));
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
                    other => return Err(format!("# TYPE {name}: unknown type {other:?}")),
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

fn parse_sample(line: &str) -> Result<Sample, String> {
    let mut c = Cursor { s: line, pos: 0 };
    let name = c.take_while(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
    if !is_metric_name(name) {
        return Err(format!("invalid metric name at the start of {line:?}"));
    }
    c.skip_ws();
    let mut labels = Vec::new();
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
                return Err(format!("invalid label name in {line:?}"));
            }
            c.skip_ws();
            c.expect('=', "after label name")?;
            c.skip_ws();
            c.expect('"', "to open the label value")?;
            let value = parse_label_value(&mut c)?;
            if labels.iter().any(|(k, _): &(String, String)| k == lname) {
                return Err(format!("duplicate label {lname:?}"));
            }
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
        return Err(format!("missing value for {name}"));
    }
    let value = parse_value(value_text).ok_or_else(|| format!("invalid value {value_text:?} for {name}"))?;
    c.skip_ws();
    let ts_text = c.take_while(|ch| ch != ' ' && ch != '\t');
    let timestamp_ms = if ts_text.is_empty() {
        None
    } else {
        Some(ts_text.parse::<i64>().map_err(|_| format!("invalid timestamp {ts_text:?} for {name}"))?)
    };
    c.skip_ws();
    if c.peek().is_some() {
        return Err(format!("unexpected text after the sample: {:?}", &line[c.pos..]));
    }
    Ok(Sample { name: name.to_owned(), labels, value, timestamp_ms })
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
            ("x{a=\"1\",a=\"2\"} 1", "line 1: duplicate label"),
            ("# TYPE x countr", "line 1: # TYPE x: unknown type"),
            ("x{1a=\"1\"} 1", "line 1: invalid label name"),
            ("x", "line 1: missing value"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn openmetrics_markers_are_tolerated() {
        let e = parse("# TYPE a gauge\n# UNIT a seconds\na 1\n# EOF\n").expect("valid");
        assert_eq!(e.samples.len(), 1);
    }
}
