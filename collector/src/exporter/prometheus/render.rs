//! Pure rendering of the exporter's state in the Prometheus text exposition format (0.0.4).

use std::fmt::Write as _;

use super::accumulator::{Accumulator, FamilyType, Labels, SeriesValue};

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A float as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, otherwise the shortest round-trip form).
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Writes one sample line. `extra` is appended to the label set (e.g. `le`, `quantile`).
fn sample(out: &mut String, name: &str, labels: &Labels, extra: Option<(&str, &str)>, value: &str, ts: Option<u64>) {
    out.push_str(name);
    let mut pairs = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(extra).peekable();
    if pairs.peek().is_some() {
        out.push('{');
        for (i, (k, v)) in pairs.enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_value(v));
        }
        out.push('}');
    }
    let _ = match ts {
        Some(ts) => writeln!(out, " {value} {ts}"),
        None => writeln!(out, " {value}"),
    };
}

/// Renders every family (sorted by name, series sorted by labels) and `target_info`.
/// With `send_timestamps`, samples carry their data point's timestamp in milliseconds.
pub fn render(acc: &Accumulator, send_timestamps: bool) -> String {
    let mut out = String::new();
    for (name, fam) in acc.families() {
        let ty = match fam.ty {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Histogram => "histogram",
            FamilyType::Summary => "summary",
        };
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {ty}", escape_help(&fam.help));
        for (labels, s) in &fam.series {
            let ts = (send_timestamps && s.time_unix_nano != 0).then_some(s.time_unix_nano / 1_000_000);
            match &s.value {
                SeriesValue::Number(v) => sample(&mut out, name, labels, None, &float(*v), ts),
                SeriesValue::Histogram { bounds, counts, sum, count } => {
                    let bucket = format!("{name}_bucket");
                    let mut cumulative = 0u64;
                    for (b, c) in bounds.iter().zip(counts) {
                        // Saturating: bucket counts come from senders and may sum past u64::MAX.
                        cumulative = cumulative.saturating_add(*c);
                        sample(&mut out, &bucket, labels, Some(("le", &float(*b))), &cumulative.to_string(), ts);
                    }
                    sample(&mut out, &bucket, labels, Some(("le", "+Inf")), &count.to_string(), ts);
                    sample(&mut out, &format!("{name}_sum"), labels, None, &float(*sum), ts);
                    sample(&mut out, &format!("{name}_count"), labels, None, &count.to_string(), ts);
                }
                SeriesValue::Summary { quantiles, sum, count } => {
                    for (q, v) in quantiles {
                        sample(&mut out, name, labels, Some(("quantile", &float(*q))), &float(*v), ts);
                    }
                    sample(&mut out, &format!("{name}_sum"), labels, None, &float(*sum), ts);
                    sample(&mut out, &format!("{name}_count"), labels, None, &count.to_string(), ts);
                }
            }
        }
    }
    let mut targets = acc.targets().peekable();
    if targets.peek().is_some() {
        let name = acc.target_info_name();
        let _ = writeln!(out, "# HELP {name} Target metadata\n# TYPE {name} gauge");
        for labels in targets {
            sample(&mut out, &name, labels, None, "1", None);
        }
    }
    out
}
