//! `resource` processor: attribute actions on the resource of every span, metric and log batch.

use crate::pdata::edit::{self, AttrEdit, Edit};
use crate::pdata::{Data, Payload};
use crate::pipeline::{ConsumeError, Processor};
use collector_config::processor::resource::ResourceProcessorConfig;

use super::actions::{self, Action};

/// Compiled resource processor.
#[derive(Debug)]
pub struct ResourceProcessor {
    actions: Vec<Action>,
    /// The actions on encoded data, when they all have an encoded form.
    wire: Option<AttrEdit>,
}

impl ResourceProcessor {
    /// Builds from config.
    pub fn new(cfg: &ResourceProcessorConfig) -> Result<Self, String> {
        let actions = actions::compile(&cfg.attributes)?;
        Ok(Self { wire: actions::wire_form(&actions), actions })
    }
}

impl Processor for ResourceProcessor {
    fn wire_edit(&self) -> Option<Edit<'_>> {
        Some(Edit { resource: Some(self.wire.as_ref()?), ..Edit::default() })
    }

    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        if let (Data::Encoded(encoded), Some(wire)) = (&data, self.wire_edit())
            && let Some(done) = edit::apply(encoded, &wire)
        {
            return Ok(done.into());
        }
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
