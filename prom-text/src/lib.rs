//! `prom-text`: the one writer of the Prometheus text exposition format (version 0.0.4) in this
//! workspace. Three programs expose metrics in it — the collector's own metrics (`:8888`), the
//! collector's `prometheus` exporter (`:8889`) and the reviews service's `/metrics` — and while
//! each had its own writer they drifted: one forgot to escape newlines in label values, one wrote
//! `-Inf` as `+Inf`, one cast `u64` counters to `i64`. The rules live here once:
//!
//! - `# HELP` text escapes backslash and newline; label values escape backslash, double quote and
//!   newline (the format's only escapes; everything else, UTF-8 included, is written as is).
//! - Integers are written exactly, the whole `u64` and `i64` ranges included; floats as Rust's
//!   shortest round-trip decimal, and the three non-finite values as Prometheus spells them:
//!   `+Inf`, `-Inf`, `NaN` (see [`Value`]).
//! - Histograms are `_bucket` samples with an `le` label ending in `le="+Inf"` (equal to the
//!   count), then `_sum` and `_count`; summaries are samples with a `quantile` label, then `_sum`
//!   and `_count` (see [`Encoder::histogram`], [`Encoder::summary`]).
//!
//! Names (metric and label) are written as given: each producer already makes them valid
//! (the exporter's `naming` module turns OTel names into Prometheus names), and checking them here
//! would mean a second, possibly different, set of naming rules.
//!
//! Why our own crate and not `prometheus-client` (which the operator uses for its own metrics):
//! it writes OpenMetrics, not 0.0.4 — a trailing `# EOF`, floats such as `7.0`, no summaries
//! and no per-sample timestamps — and it is a typed registry of instruments declared up front.
//! The exporter translates arbitrary OTLP metrics, whose names, types and label sets arrive at run
//! time and whose samples carry the data point's timestamp, and its output is pinned byte for byte
//! by its tests; the collector's and the reviews service's metrics have their own registries
//! already. What all three need is the formatting, about two hundred lines with no dependencies.
//!
//! [`promtool::check_metrics`] (cargo feature `promtool`, meant for dev-dependencies) runs text
//! through `promtool check metrics`, so tests can show the output is what Prometheus accepts.

use std::fmt::{self, Write as _};

#[cfg(any(test, feature = "promtool"))]
pub mod promtool;

/// The `Content-Type` of text written by [`Encoder`]: the 0.0.4 text format, in UTF-8.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// An empty label set, for samples without labels (`&[]` alone leaves the label types unknown).
pub const NO_LABELS: &[(&str, &str)] = &[];

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A monotonically increasing value; by convention its name ends in `_total`.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Cumulative buckets plus `_sum` and `_count` (see [`Encoder::histogram`]).
    Histogram,
    /// Quantiles plus `_sum` and `_count` (see [`Encoder::summary`]).
    Summary,
    /// No type information.
    Untyped,
}

impl MetricType {
    /// The word `# TYPE` lines use.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A sample value. Integers stay integers so that counters past 2^53 are written exactly (an `f64`
/// would round them); `Display` writes the value as the text format spells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An unsigned integer (counters, counts).
    Unsigned(u64),
    /// A signed integer (gauges that can go below zero).
    Signed(i64),
    /// A float: `+Inf`, `-Inf` and `NaN` for the non-finite values, otherwise the shortest decimal
    /// that reads back as the same `f64` (Rust's `Display`, which never uses an exponent).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Unsigned(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Signed(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Unsigned(v) => write!(f, "{v}"),
            Value::Signed(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" }),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Appends `s` to `out` with backslash and newline escaped, and double quote too when
/// `escape_quote` (label values are quoted; HELP text is not, so its quotes stay as they are).
fn push_escaped(out: &mut String, s: &str, escape_quote: bool) {
    let mut unwritten_from = 0;
    for (i, byte) in s.bytes().enumerate() {
        let escaped = match byte {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'"' if escape_quote => "\\\"",
            _ => continue,
        };
        // The escaped bytes are ASCII, so `i` is always a char boundary.
        out.push_str(&s[unwritten_from..i]);
        out.push_str(escaped);
        unwritten_from = i + 1;
    }
    out.push_str(&s[unwritten_from..]);
}

/// Writes metric families in the text format into a `String`.
///
/// Call [`family`](Self::family) once per metric name, then add that family's samples, then the
/// next family; the format wants every sample of a family right after its `# TYPE` line.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    text: String,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty encoder with room for `bytes` of text.
    pub fn with_capacity(bytes: usize) -> Self {
        Self { text: String::with_capacity(bytes) }
    }

    /// Starts a family: its `# HELP` (escaped) and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, ty: MetricType) {
        let text = &mut self.text;
        text.push_str("# HELP ");
        text.push_str(name);
        text.push(' ');
        push_escaped(text, help, false);
        let _ = writeln!(text, "\n# TYPE {name} {}", ty.as_str());
    }

    /// One sample line: `name{labels} value [timestamp]`. `labels` are written in the order given;
    /// an empty set writes no braces. `timestamp_ms` is milliseconds since the Unix epoch.
    pub fn sample<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(K, V)],
        value: impl Into<Value>,
        timestamp_ms: Option<i64>,
    ) {
        self.line(name, "", labels, None, value.into(), timestamp_ms);
    }

    /// A histogram's samples: one `name_bucket` per `(upper bound, cumulative count)` of the finite
    /// buckets (in increasing bound order), the `le="+Inf"` bucket with `count`, then `name_sum`
    /// and `name_count`. The `le` label follows `labels`.
    pub fn histogram<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(K, V)],
        cumulative_buckets: impl IntoIterator<Item = (f64, u64)>,
        sum: f64,
        count: u64,
        timestamp_ms: Option<i64>,
    ) {
        for (upper_bound, cumulative_count) in cumulative_buckets {
            let le = Some(("le", Value::Float(upper_bound)));
            self.line(name, "_bucket", labels, le, Value::Unsigned(cumulative_count), timestamp_ms);
        }
        let le = Some(("le", Value::Float(f64::INFINITY)));
        self.line(name, "_bucket", labels, le, Value::Unsigned(count), timestamp_ms);
        self.line(name, "_sum", labels, None, Value::Float(sum), timestamp_ms);
        self.line(name, "_count", labels, None, Value::Unsigned(count), timestamp_ms);
    }

    /// A summary's samples: one `name{quantile="q"}` per `(quantile, value)`, then `name_sum` and
    /// `name_count`. The `quantile` label follows `labels`.
    pub fn summary<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        labels: &[(K, V)],
        quantiles: impl IntoIterator<Item = (f64, f64)>,
        sum: f64,
        count: u64,
        timestamp_ms: Option<i64>,
    ) {
        for (quantile, value) in quantiles {
            let q = Some(("quantile", Value::Float(quantile)));
            self.line(name, "", labels, q, Value::Float(value), timestamp_ms);
        }
        self.line(name, "_sum", labels, None, Value::Float(sum), timestamp_ms);
        self.line(name, "_count", labels, None, Value::Unsigned(count), timestamp_ms);
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text written.
    pub fn finish(self) -> String {
        self.text
    }

    /// Writes `name` + `suffix`, the labels, then `numeric_label` (`le`/`quantile`, whose value is a
    /// number and so needs no escaping), the value and the timestamp.
    fn line<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(K, V)],
        numeric_label: Option<(&str, Value)>,
        value: Value,
        timestamp_ms: Option<i64>,
    ) {
        let text = &mut self.text;
        text.push_str(name);
        text.push_str(suffix);
        if !labels.is_empty() || numeric_label.is_some() {
            text.push('{');
            for (i, (label, label_value)) in labels.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(label.as_ref());
                text.push_str("=\"");
                push_escaped(text, label_value.as_ref(), true);
                text.push('"');
            }
            if let Some((label, label_value)) = numeric_label {
                let comma = if labels.is_empty() { "" } else { "," };
                let _ = write!(text, "{comma}{label}=\"{label_value}\"");
            }
            text.push('}');
        }
        let _ = match timestamp_ms {
            Some(ts) => writeln!(text, " {value} {ts}"),
            None => writeln!(text, " {value}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_line(labels: &[(&str, &str)], value: impl Into<Value>, timestamp_ms: Option<i64>) -> String {
        let mut enc = Encoder::new();
        enc.sample("m", labels, value, timestamp_ms);
        enc.finish()
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline_only() {
        let line = sample_line(&[("path", "C:\\dir \"x\"\nnext"), ("utf8", "zürich\t✓")], 1u64, None);
        assert_eq!(line, "m{path=\"C:\\\\dir \\\"x\\\"\\nnext\",utf8=\"zürich\t✓\"} 1\n");
    }

    #[test]
    fn help_escapes_backslash_and_newline_but_not_quotes() {
        let mut enc = Encoder::new();
        enc.family("m", "a \"quoted\" C:\\path\nsecond line", MetricType::Gauge);
        assert_eq!(enc.finish(), "# HELP m a \"quoted\" C:\\\\path\\nsecond line\n# TYPE m gauge\n");
    }

    #[test]
    fn non_finite_floats_are_spelled_as_prometheus_does() {
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(-f64::NAN).to_string(), "NaN");
    }

    #[test]
    fn finite_floats_are_the_shortest_round_trip_decimal() {
        assert_eq!(Value::Float(1.0).to_string(), "1");
        assert_eq!(Value::Float(0.1).to_string(), "0.1");
        assert_eq!(Value::Float(-2.5).to_string(), "-2.5");
        assert_eq!(Value::Float(1e-7).to_string(), "0.0000001");
        let big = Value::Float(1e21).to_string();
        assert_eq!(big.parse::<f64>(), Ok(1e21));
    }

    #[test]
    fn integers_are_exact_over_their_whole_range() {
        assert_eq!(sample_line(NO_LABELS, u64::MAX, None), "m 18446744073709551615\n");
        assert_eq!(sample_line(NO_LABELS, i64::MIN, None), "m -9223372036854775808\n");
        // As an f64, 2^53 + 1 would be written as 2^53.
        assert_eq!(Value::from((1u64 << 53) + 1).to_string(), "9007199254740993");
    }

    #[test]
    fn samples_without_labels_have_no_braces_and_timestamps_follow_the_value() {
        assert_eq!(sample_line(NO_LABELS, 2.5, None), "m 2.5\n");
        assert_eq!(sample_line(&[("a", "b")], 3i64, Some(1_700_000_000_000)), "m{a=\"b\"} 3 1700000000000\n");
        assert_eq!(sample_line(NO_LABELS, 0u64, Some(-1)), "m 0 -1\n");
    }

    #[test]
    fn histogram_writes_buckets_then_inf_bucket_sum_and_count() {
        let mut enc = Encoder::new();
        enc.family("d_seconds", "Duration.", MetricType::Histogram);
        enc.histogram("d_seconds", &[("route", "/a")], [(0.1, 1), (1.0, 3)], 4.5, 5, Some(7));
        enc.histogram("d_seconds", NO_LABELS, [], 0.0, 0, None);
        let expected = "# HELP d_seconds Duration.\n# TYPE d_seconds histogram\n\
            d_seconds_bucket{route=\"/a\",le=\"0.1\"} 1 7\n\
            d_seconds_bucket{route=\"/a\",le=\"1\"} 3 7\n\
            d_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5 7\n\
            d_seconds_sum{route=\"/a\"} 4.5 7\n\
            d_seconds_count{route=\"/a\"} 5 7\n\
            d_seconds_bucket{le=\"+Inf\"} 0\n\
            d_seconds_sum 0\n\
            d_seconds_count 0\n";
        assert_eq!(enc.finish(), expected);
    }

    #[test]
    fn summary_writes_quantiles_then_sum_and_count() {
        let mut enc = Encoder::new();
        enc.family("rpc_seconds", "RPC latency.", MetricType::Summary);
        enc.summary("rpc_seconds", &[("m", "get")], [(0.5, 0.2), (0.99, f64::NAN)], f64::INFINITY, 3, None);
        let expected = "# HELP rpc_seconds RPC latency.\n# TYPE rpc_seconds summary\n\
            rpc_seconds{m=\"get\",quantile=\"0.5\"} 0.2\n\
            rpc_seconds{m=\"get\",quantile=\"0.99\"} NaN\n\
            rpc_seconds_sum{m=\"get\"} +Inf\n\
            rpc_seconds_count{m=\"get\"} 3\n";
        assert_eq!(enc.finish(), expected);
    }

    #[test]
    fn content_type_names_version_0_0_4_in_utf8() {
        assert_eq!(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    }

    /// Everything the encoder can write, in one exposition, as Prometheus's own parser and linter see it.
    #[test]
    fn every_kind_of_family_passes_promtool() {
        let mut enc = Encoder::new();
        enc.family("jobs_total", "Jobs done; \"quoted\", C:\\dir,\nand a second line.", MetricType::Counter);
        enc.sample("jobs_total", &[("queue", "a\"b\\c\nd"), ("city", "zürich")], u64::MAX, None);
        enc.sample("jobs_total", &[("queue", "")], 0u64, Some(1_700_000_000_000));
        enc.family("temperature_celsius", "Temperature.", MetricType::Gauge);
        enc.sample("temperature_celsius", &[("probe", "min")], f64::NEG_INFINITY, None);
        enc.sample("temperature_celsius", &[("probe", "max")], f64::INFINITY, None);
        enc.sample("temperature_celsius", &[("probe", "broken")], f64::NAN, None);
        enc.sample("temperature_celsius", &[("probe", "offset")], i64::MIN, None);
        enc.family("request_duration_seconds", "Request duration.", MetricType::Histogram);
        enc.histogram("request_duration_seconds", &[("route", "/")], [(0.1, 2), (1.0, 3)], 1.25, 4, Some(5));
        enc.family("rpc_duration_seconds", "RPC duration.", MetricType::Summary);
        enc.summary("rpc_duration_seconds", NO_LABELS, [(0.5, 0.01), (0.9, f64::NAN)], 2.0, 10, Some(5));
        enc.family("build_info", "Build.", MetricType::Untyped);
        enc.sample("build_info", &[("version", "1.0")], 1u64, None);
        let text = enc.finish();
        promtool::check_metrics(&text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The check must catch what it is there to catch: an unescaped newline splits the sample.
    #[test]
    fn promtool_rejects_an_unescaped_newline_in_a_label_value() {
        let result = promtool::check_metrics("# HELP m m\n# TYPE m gauge\nm{a=\"x\ny\"} 1\n");
        // Rejected by promtool itself: a missing promtool must fail this test too, not pass it.
        assert!(matches!(&result, Err(e) if e.starts_with("promtool check metrics failed")), "{result:?}");
    }
}
