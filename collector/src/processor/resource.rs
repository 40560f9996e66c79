//! `resource` processor: attribute actions on the resource of every span, metric and log batch.

use crate::config::components::ResourceProcessorConfig;
use crate::pdata::{Data, Payload};
use crate::pipeline::{ConsumeError, Processor};

use super::actions::{self, Action};

/// Compiled resource processor.
#[derive(Debug)]
pub struct ResourceProcessor {
    actions: Vec<Action>,
}

impl ResourceProcessor {
    /// Builds from config.
    pub fn new(cfg: &ResourceProcessorConfig) -> Result<Self, String> {
        Ok(Self { actions: actions::compile(&cfg.attributes)? })
    }
}

impl Processor for ResourceProcessor {
    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        let mut data = data.decode()?;
        let resources: Vec<&mut Option<opentelemetry_proto::tonic::resource::v1::Resource>> = match &mut data {
            Payload::Traces(r) => r.resource_spans.iter_mut().map(|x| &mut x.resource).collect(),
            Payload::Metrics(r) => r.resource_metrics.iter_mut().map(|x| &mut x.resource).collect(),
            Payload::Logs(r) => r.resource_logs.iter_mut().map(|x| &mut x.resource).collect(),
        };
        for res in resources {
            let res = res.get_or_insert_with(Default::default);
            actions::apply(&self.actions, &mut res.attributes);
        }
        Ok(data.into())
    }
}
