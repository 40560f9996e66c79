//! The internal data model: the opentelemetry-proto export requests themselves, wrapped in one
//! enum so pipelines can be generic over the signal ([`Payload`]), or still in their validated
//! protobuf encoding ([`wire::Encoded`]); [`Data`] is either. Counting, merging and splitting
//! live here.

mod data;
pub mod edit;
pub mod value;
pub mod wire;

pub use data::{Data, DecodeError};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data as MetricData};

use crate::config::id::Signal;

/// Decoded telemetry of one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Spans.
    Traces(ExportTraceServiceRequest),
    /// Metrics.
    Metrics(ExportMetricsServiceRequest),
    /// Log records.
    Logs(ExportLogsServiceRequest),
}

impl Payload {
    /// Which signal this is.
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Traces(_) => Signal::Traces,
            Payload::Metrics(_) => Signal::Metrics,
            Payload::Logs(_) => Signal::Logs,
        }
    }

    /// Item count as upstream counts it: spans, metric data points, log records.
    pub fn item_count(&self) -> usize {
        match self {
            Payload::Traces(r) => r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum(),
            Payload::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(data_point_count)
                .sum(),
            Payload::Logs(r) => {
                r.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum()
            }
        }
    }

    /// An empty payload of the given signal.
    pub fn empty(signal: Signal) -> Self {
        match signal {
            Signal::Traces => Payload::Traces(Default::default()),
            Signal::Metrics => Payload::Metrics(Default::default()),
            Signal::Logs => Payload::Logs(Default::default()),
        }
    }

    /// Appends `other` (same signal) to `self`. Mismatched signals are ignored (pipelines are typed).
    pub fn append(&mut self, other: Payload) {
        match (self, other) {
            (Payload::Traces(a), Payload::Traces(b)) => a.resource_spans.extend(b.resource_spans),
            (Payload::Metrics(a), Payload::Metrics(b)) => a.resource_metrics.extend(b.resource_metrics),
            (Payload::Logs(a), Payload::Logs(b)) => a.resource_logs.extend(b.resource_logs),
            _ => {}
        }
    }

    /// Splits off the first `n` items into a new payload, leaving the rest in `self`.
    /// Resources and scopes are duplicated where a split falls inside them.
    pub fn split_off_front(&mut self, n: usize) -> Payload {
        match self {
            Payload::Traces(r) => {
                let taken =
                    split_nested(&mut r.resource_spans, n, |rs| &mut rs.scope_spans, |ss| &mut ss.spans, |x| x.len());
                Payload::Traces(ExportTraceServiceRequest { resource_spans: taken })
            }
            Payload::Logs(r) => {
                let taken = split_nested(
                    &mut r.resource_logs,
                    n,
                    |rl| &mut rl.scope_logs,
                    |sl| &mut sl.log_records,
                    |x| x.len(),
                );
                Payload::Logs(ExportLogsServiceRequest { resource_logs: taken })
            }
            Payload::Metrics(r) => {
                // Metrics are split at metric granularity (a metric's points stay together), which keeps
                // each batch at most `n` points unless a single metric is larger.
                let taken = split_nested(
                    &mut r.resource_metrics,
                    n,
                    |rm| &mut rm.scope_metrics,
                    |sm| &mut sm.metrics,
                    |m: &Vec<Metric>| m.iter().map(data_point_count).sum(),
                );
                Payload::Metrics(ExportMetricsServiceRequest { resource_metrics: taken })
            }
        }
    }
}

/// Number of data points in one metric.
pub fn data_point_count(m: &Metric) -> usize {
    match &m.data {
        Some(MetricData::Gauge(g)) => g.data_points.len(),
        Some(MetricData::Sum(s)) => s.data_points.len(),
        Some(MetricData::Histogram(h)) => h.data_points.len(),
        Some(MetricData::ExponentialHistogram(h)) => h.data_points.len(),
        Some(MetricData::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// Generic front-split over resource → scope → items nesting.
fn split_nested<R: Clone, S: Clone, I>(
    resources: &mut Vec<R>,
    mut n: usize,
    scopes_of: impl Fn(&mut R) -> &mut Vec<S>,
    items_of: impl Fn(&mut S) -> &mut Vec<I>,
    weight: impl Fn(&Vec<I>) -> usize,
) -> Vec<R> {
    let mut taken = Vec::new();
    while n > 0 && !resources.is_empty() {
        let total: usize = scopes_of(&mut resources[0]).iter_mut().map(|s| weight(items_of(s))).sum();
        if total <= n {
            n -= total;
            taken.push(resources.remove(0));
            continue;
        }
        // Split inside this resource.
        let mut head = resources[0].clone();
        let head_scopes = scopes_of(&mut head);
        head_scopes.clear();
        let src_scopes = scopes_of(&mut resources[0]);
        while n > 0 && !src_scopes.is_empty() {
            let w = weight(items_of(&mut src_scopes[0]));
            if w <= n {
                n -= w;
                head_scopes.push(src_scopes.remove(0));
                continue;
            }
            // Split inside this scope: move items one at a time by weight.
            let mut scope_head = src_scopes[0].clone();
            let src_items = items_of(&mut src_scopes[0]);
            let mut moved = Vec::new();
            while n > 0 && !src_items.is_empty() {
                let one: Vec<I> = src_items.drain(..1).collect();
                let w = weight(&one);
                if w > n && !moved.is_empty() {
                    // Put it back; the next batch takes it.
                    let mut back = one;
                    back.append(src_items);
                    *src_items = back;
                    break;
                }
                n = n.saturating_sub(w);
                moved.extend(one);
            }
            *items_of(&mut scope_head) = moved;
            head_scopes.push(scope_head);
            break;
        }
        taken.push(head);
        break;
    }
    taken
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    pub(crate) fn traces(resources: usize, scopes: usize, spans: usize) -> Payload {
        Payload::Traces(ExportTraceServiceRequest {
            resource_spans: (0..resources)
                .map(|r| ResourceSpans {
                    scope_spans: (0..scopes)
                        .map(|s| ScopeSpans {
                            spans: (0..spans)
                                .map(|i| Span { name: format!("r{r}s{s}i{i}"), ..Default::default() })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        })
    }

    /// Span names in order.
    pub(crate) fn names(p: &Payload) -> Vec<String> {
        match p {
            Payload::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|s| &s.spans)
                .map(|s| s.name.clone())
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn counts_items() {
        assert_eq!(traces(2, 3, 4).item_count(), 24);
    }

    #[test]
    fn split_preserves_order_and_count() {
        let mut p = traces(2, 2, 5);
        let all = names(&p);
        let mut got = Vec::new();
        while p.item_count() > 0 {
            let head = p.split_off_front(7);
            assert!(head.item_count() <= 7 && head.item_count() > 0);
            got.extend(names(&head));
        }
        assert_eq!(got, all);
    }

    #[test]
    fn append_merges() {
        let mut a = traces(1, 1, 2);
        a.append(traces(1, 1, 3));
        assert_eq!(a.item_count(), 5);
    }
}
