//! Pure OTel → Prometheus name translation, following upstream's `pkg/translator/prometheus`
//! (the default `NormalizeName` behaviour): metric names get unit suffixes, `_total` for
//! monotonic counters and `_ratio` for unit-`1` gauges; labels get invalid characters replaced.

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as V};

/// The OTel shape of a metric, which decides the suffixes its Prometheus name gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtelShape {
    /// A gauge.
    Gauge,
    /// A monotonic sum (a Prometheus counter).
    MonotonicSum,
    /// A non-monotonic sum (exposed as a Prometheus gauge).
    NonMonotonicSum,
    /// An explicit-bucket histogram.
    Histogram,
    /// A summary.
    Summary,
}

/// UCUM main units → Prometheus words (upstream's `unitMap`).
fn main_unit(u: &str) -> &str {
    match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        other => other,
    }
}

/// UCUM "per" units → Prometheus words (upstream's `perUnitMap`).
fn per_unit(u: &str) -> &str {
    match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        other => other,
    }
}

/// Splits on everything that is not an ASCII letter or digit (upstream splits on non letters/digits;
/// we stay ASCII so the result is always a valid Prometheus name).
fn tokens(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// Joins the alphanumeric runs of `s` with `_` (used for units and the namespace).
pub fn clean(s: &str) -> String {
    tokens(s).join("_")
}

/// The Prometheus metric family name for an OTel metric.
///
/// With `add_suffixes` (upstream default `add_metric_suffixes: true`) the name is normalised fully;
/// without it, invalid characters are only replaced by `_`.
pub fn metric_name(name: &str, unit: &str, shape: OtelShape, namespace: Option<&str>, add_suffixes: bool) -> String {
    let namespace = namespace.map(clean).filter(|n| !n.is_empty());
    if !add_suffixes {
        let base: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
        let full = match namespace {
            Some(ns) => format!("{ns}_{base}"),
            None => base,
        };
        return prefix_digit(full);
    }
    let mut toks = tokens(name);
    let mut units = unit.splitn(2, '/');
    let main = units.next().unwrap_or("").trim();
    let per = units.next().unwrap_or("").trim();
    let mut main_prom = String::new();
    if !main.is_empty() && !main.contains(['{', '}']) {
        main_prom = clean(main_unit(main));
        if toks.contains(&main_prom) {
            main_prom.clear();
        }
    }
    let mut per_prom = String::new();
    if !per.is_empty() && !per.contains(['{', '}']) {
        let p = clean(per_unit(per));
        if !p.is_empty() {
            per_prom = format!("per_{p}");
            // Upstream skips the suffix when the name already says "per <unit>".
            if toks.windows(2).any(|w| w[0] == "per" && w[1] == p) {
                per_prom.clear();
            }
        }
    }
    if !main_prom.is_empty() {
        toks.push(main_prom);
    }
    if !per_prom.is_empty() {
        toks.push(per_prom);
    }
    if shape == OtelShape::MonotonicSum {
        toks.retain(|t| t != "total");
        toks.push("total".into());
    }
    if unit == "1" && shape == OtelShape::Gauge {
        toks.retain(|t| t != "ratio");
        toks.push("ratio".into());
    }
    if let Some(ns) = namespace {
        toks.insert(0, ns);
    }
    prefix_digit(toks.join("_"))
}

fn prefix_digit(s: String) -> String {
    if s.starts_with(|c: char| c.is_ascii_digit()) { format!("_{s}") } else { s }
}

/// A valid Prometheus label name for an OTel attribute key (upstream's `NormalizeLabel`):
/// invalid characters become `_`, a leading digit gets `key_`, a single leading `_` gets `key`.
pub fn label_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let s: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{s}")
    } else if s.starts_with('_') && !s.starts_with("__") {
        format!("key{s}")
    } else {
        s
    }
}

/// An attribute value as a label value (upstream's `Value.AsString`).
pub fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        // A string-table index only means something inside a profiles dictionary.
        None | Some(V::StringValueStrindex(_)) => String::new(),
        Some(V::StringValue(s)) => s.clone(),
        Some(V::BoolValue(b)) => b.to_string(),
        Some(V::IntValue(i)) => i.to_string(),
        Some(V::DoubleValue(d)) => d.to_string(),
        Some(V::BytesValue(b)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(V::ArrayValue(a)) => {
            let items: Vec<serde_json::Value> = a.values.iter().map(json_value).collect();
            serde_json::Value::Array(items).to_string()
        }
        Some(V::KvlistValue(kv)) => {
            let m: serde_json::Map<String, serde_json::Value> = kv
                .values
                .iter()
                .map(|e| (e.key.clone(), e.value.as_ref().map_or(serde_json::Value::Null, json_value)))
                .collect();
            serde_json::Value::Object(m).to_string()
        }
    }
}

fn json_value(v: &AnyValue) -> serde_json::Value {
    match &v.value {
        Some(V::StringValue(s)) => s.clone().into(),
        Some(V::BoolValue(b)) => (*b).into(),
        Some(V::IntValue(i)) => (*i).into(),
        Some(V::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(serde_json::Value::Null, Into::into),
        _ => value_string(Some(v)).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_examples() {
        use OtelShape::*;
        assert_eq!(
            metric_name("http.server.request.duration", "s", Histogram, None, true),
            "http_server_request_duration_seconds"
        );
        assert_eq!(metric_name("http.requests", "{request}", MonotonicSum, None, true), "http_requests_total");
        assert_eq!(metric_name("requests.total", "1", MonotonicSum, None, true), "requests_total");
        assert_eq!(metric_name("system.memory.usage", "By", NonMonotonicSum, None, true), "system_memory_usage_bytes");
        assert_eq!(metric_name("cpu.utilization", "1", Gauge, None, true), "cpu_utilization_ratio");
        assert_eq!(metric_name("network.io", "By/s", Gauge, Some("app"), true), "app_network_io_bytes_per_second");
        assert_eq!(metric_name("latency_seconds", "s", Gauge, None, true), "latency_seconds");
        assert_eq!(metric_name("2xx.count", "", Gauge, None, true), "_2xx_count");
        assert_eq!(metric_name("a..b__c", "", Gauge, None, true), "a_b_c");
        assert_eq!(metric_name("http.requests", "{request}", MonotonicSum, Some("ns"), false), "ns_http_requests");
    }

    #[test]
    fn labels_are_sanitised() {
        assert_eq!(label_name("http.method"), "http_method");
        assert_eq!(label_name("2fa"), "key_2fa");
        assert_eq!(label_name("_private"), "key_private");
        assert_eq!(label_name("__meta"), "__meta");
    }

    #[test]
    fn values_as_strings() {
        let v = |x| Some(AnyValue { value: Some(x) });
        assert_eq!(value_string(v(V::IntValue(3)).as_ref()), "3");
        assert_eq!(value_string(v(V::BoolValue(true)).as_ref()), "true");
        assert_eq!(value_string(None), "");
    }
}
