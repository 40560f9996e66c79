//! `metricstransform` processor: only `action: update` with `new_name` (metric renaming) is applied;
//! other operations are validated and passed through unchanged.

use regex::Regex;

use crate::config::components::{MetricMatchType, MetricTransformAction, MetricsTransformConfig};
use crate::pdata::{Data, Payload};
use crate::pipeline::{ConsumeError, Processor};

#[derive(Debug)]
enum Match {
    Strict(String),
    Regexp(Regex),
}

/// Compiled metricstransform processor.
#[derive(Debug)]
pub struct MetricsTransform {
    renames: Vec<(Match, String)>,
}

impl MetricsTransform {
    /// Builds from config.
    pub fn new(cfg: &MetricsTransformConfig) -> Result<Self, String> {
        let mut renames = Vec::new();
        for t in &cfg.transforms {
            if t.action != Some(MetricTransformAction::Update) || t.new_name.is_empty() {
                continue;
            }
            let new_name = &t.new_name;
            let m = if t.match_type == MetricMatchType::Regexp {
                Match::Regexp(Regex::new(&t.include).map_err(|e| e.to_string())?)
            } else {
                Match::Strict(t.include.clone())
            };
            renames.push((m, new_name.clone()));
        }
        Ok(Self { renames })
    }
}

impl Processor for MetricsTransform {
    fn process(&self, data: Data) -> Result<Data, ConsumeError> {
        let mut data = data.decode()?;
        if let Payload::Metrics(r) = &mut data {
            for m in r
                .resource_metrics
                .iter_mut()
                .flat_map(|rm| rm.scope_metrics.iter_mut())
                .flat_map(|sm| sm.metrics.iter_mut())
            {
                for (matcher, new_name) in &self.renames {
                    match matcher {
                        Match::Strict(s) if *s == m.name => m.name = new_name.clone(),
                        // Regexp renames may reference capture groups (`$1`).
                        Match::Regexp(re) if re.is_match(&m.name) => {
                            m.name = re.replace(&m.name, new_name.as_str()).into_owned()
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(data.into())
    }
}
