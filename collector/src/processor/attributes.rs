//! `attributes` processor: attribute actions on spans, log records and metric data points,
//! restricted by include/exclude.

use opentelemetry_proto::tonic::metrics::v1::metric::Data as MetricData;

use crate::pdata::edit::{self, AttrEdit, Edit};
use crate::pdata::{Data, Payload};
use crate::pipeline::{ConsumeError, Processor};
use collector_config::processor::attributes::AttributesProcessorConfig;

use super::actions::{self, Action, any_to_string};
use super::filter::{Filter, Item};

/// Compiled attributes processor.
#[derive(Debug)]
pub struct AttributesProcessor {
    actions: Vec<Action>,
    filter: Filter,
    /// The actions on encoded spans and log records, when they all have an encoded form and no
    /// include/exclude filter needs the decoded item.
    wire: Option<AttrEdit>,
}

impl AttributesProcessor {
    /// Builds from config.
    pub fn new(cfg: &AttributesProcessorConfig) -> Result<Self, String> {
        let actions = actions::compile(&cfg.actions)?;
        let unfiltered = cfg.include.is_none() && cfg.exclude.is_none();
        Ok(Self {
            wire: unfiltered.then(|| actions::wire_form(&actions)).flatten(),
            filter: Filter::compile(cfg.include.as_ref(), cfg.exclude.as_ref())?,
            actions,
        })
    }
}

impl Processor for AttributesProcessor {
    fn wire_edit(&self) -> Option<Edit<'_>> {
        Some(Edit { items: Some(self.wire.as_ref()?), ..Edit::default() })
    }

    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        if let (Data::Encoded(encoded), Some(wire)) = (&data, self.wire_edit())
            && let Some(done) = edit::apply(encoded, &wire)
        {
            return Ok(done.into());
        }
        let mut data = data.decode()?;
        match &mut data {
            Payload::Traces(r) => {
                for rs in &mut r.resource_spans {
                    let resource = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
                    for ss in &mut rs.scope_spans {
                        for span in &mut ss.spans {
                            let item = Item::span(resource, span);
                            if self.filter.selects(&item) {
                                actions::apply(&self.actions, &mut span.attributes);
                            }
                        }
                    }
                }
            }
            Payload::Logs(r) => {
                for rl in &mut r.resource_logs {
                    let resource = rl.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
                    for sl in &mut rl.scope_logs {
                        for log in &mut sl.log_records {
                            let item = Item {
                                resource,
                                attributes: &log.attributes,
                                log_body: log.body.as_ref().map(any_to_string),
                                severity_text: Some(&log.severity_text),
                                ..Default::default()
                            };
                            if self.filter.selects(&item) {
                                actions::apply(&self.actions, &mut log.attributes);
                            }
                        }
                    }
                }
            }
            Payload::Metrics(r) => {
                for rm in &mut r.resource_metrics {
                    let resource = rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
                    for sm in &mut rm.scope_metrics {
                        for m in &mut sm.metrics {
                            let item = Item { resource, metric_name: Some(&m.name), ..Default::default() };
                            if !self.filter.selects(&item) {
                                continue;
                            }
                            match &mut m.data {
                                Some(MetricData::Gauge(g)) => g
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| actions::apply(&self.actions, &mut p.attributes)),
                                Some(MetricData::Sum(s)) => s
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| actions::apply(&self.actions, &mut p.attributes)),
                                Some(MetricData::Histogram(h)) => h
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| actions::apply(&self.actions, &mut p.attributes)),
                                Some(MetricData::ExponentialHistogram(h)) => h
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| actions::apply(&self.actions, &mut p.attributes)),
                                Some(MetricData::Summary(s)) => s
                                    .data_points
                                    .iter_mut()
                                    .for_each(|p| actions::apply(&self.actions, &mut p.attributes)),
                                None => {}
                            }
                        }
                    }
                }
            }
        }
        Ok(data.into())
    }
}
