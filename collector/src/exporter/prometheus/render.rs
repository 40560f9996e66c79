//! Pure rendering of the exporter's state in the Prometheus text exposition format (0.0.4).
//! The format itself (escaping, `+Inf`/`-Inf`/`NaN`, histogram and summary lines) is the
//! workspace's one encoder, `prom-text`; this module decides what to write: families sorted by
//! name, series by labels, cumulative buckets, optional timestamps and `target_info`.

use prom_text::{Encoder, MetricType};

use super::accumulator::{Accumulator, FamilyType, SeriesValue};

/// Content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = prom_text::CONTENT_TYPE;

/// Renders every family (sorted by name, series sorted by labels) and `target_info`.
/// With `send_timestamps`, samples carry their data point's timestamp in milliseconds.
pub fn render(acc: &Accumulator, send_timestamps: bool) -> String {
    let mut enc = Encoder::new();
    for (name, fam) in acc.families() {
        let ty = match fam.ty {
            FamilyType::Counter => MetricType::Counter,
            FamilyType::Gauge => MetricType::Gauge,
            FamilyType::Histogram => MetricType::Histogram,
            FamilyType::Summary => MetricType::Summary,
        };
        enc.family(name, &fam.help, ty);
        for (labels, s) in &fam.series {
            // u64 nanoseconds / 1e6 is at most ~1.8e13 ms, far inside i64: the conversion never fails.
            let ts = (send_timestamps && s.time_unix_nano != 0)
                .then_some(s.time_unix_nano / 1_000_000)
                .and_then(|ms| i64::try_from(ms).ok());
            match &s.value {
                SeriesValue::Number(v) => enc.sample(name, labels, *v, ts),
                SeriesValue::Histogram { bounds, counts, sum, count } => {
                    // `counts` are per bucket; Prometheus buckets are cumulative. Saturating: bucket
                    // counts come from senders and may sum past u64::MAX.
                    let cumulative = bounds.iter().zip(counts).scan(0u64, |total, (bound, c)| {
                        *total = total.saturating_add(*c);
                        Some((*bound, *total))
                    });
                    enc.histogram(name, labels, cumulative, *sum, *count, ts);
                }
                SeriesValue::Summary { quantiles, sum, count } => {
                    enc.summary(name, labels, quantiles.iter().copied(), *sum, *count, ts);
                }
            }
        }
    }
    let mut targets = acc.targets().peekable();
    if targets.peek().is_some() {
        let name = acc.target_info_name();
        enc.family(&name, "Target metadata", MetricType::Gauge);
        for labels in targets {
            enc.sample(&name, labels, 1u64, None);
        }
    }
    enc.finish()
}
