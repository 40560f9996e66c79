//! Consumer chains: a pipeline is a list of synchronous processors followed by either a batch
//! stage (which continues the chain from its own task) or a fan-out to exporters.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::pdata::edit::Edit;
use crate::pdata::{Data, DecodeError};

/// Boxed future used by the dyn-compatible traits below.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a pipeline did not take data.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConsumeError {
    /// Refused for pressure (memory limit, full queue, shutting down); the client should retry later.
    #[error("{0}")]
    Retryable(String),
    /// The data can never be accepted (e.g. rejected downstream as invalid); retrying won't help.
    #[error("{0}")]
    Permanent(String),
}

impl From<DecodeError> for ConsumeError {
    /// Data that cannot be decoded never will be.
    fn from(e: DecodeError) -> Self {
        ConsumeError::Permanent(e.0)
    }
}

impl ConsumeError {
    /// Whether a client should retry.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ConsumeError::Retryable(_))
    }
}

/// A synchronous processing step (transforms and the memory limiter's admission check).
/// Transforms call [`Data::decode`]; a step that never looks at items passes encoded data on
/// untouched.
pub trait Processor: Send + Sync + fmt::Debug {
    /// Transforms or refuses one unit of data.
    fn process(&self, data: Data) -> Result<Data, ConsumeError>;

    /// What this step does to encoded data when it can do it without decoding (see
    /// `pdata::edit`); consecutive steps that have one are merged into one pass.
    fn wire_edit(&self) -> Option<Edit<'_>> {
        None
    }
}

/// The end of a pipeline: something that takes data away (an exporter, possibly queued).
pub trait Exporter: Send + Sync + fmt::Debug {
    /// Accepts one unit of data. Queued exporters return once enqueued.
    fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>>;

    /// Accepts one unit of data by reference, when the exporter only reads it and is done before
    /// returning (the `prometheus` exporter folds it into its state). `None`: it needs ownership.
    /// A fan-out uses this so that only exporters that keep the data get (a copy of) it.
    fn consume_ref(&self, _data: &Data) -> Option<Result<(), ConsumeError>> {
        None
    }
}

/// Where a chain ends.
#[derive(Debug)]
enum Tail {
    /// Hand off to a batch task, which runs the rest of the chain.
    Batch(mpsc::Sender<Data>),
    /// Deliver to every exporter.
    Fanout(Vec<Arc<dyn Exporter>>),
}

/// A cheaply clonable entry point into (the rest of) a pipeline.
#[derive(Debug, Clone)]
pub struct Consumer {
    inner: Arc<(Vec<Arc<dyn Processor>>, Tail)>,
}

impl Consumer {
    /// A chain ending in a fan-out to exporters.
    pub fn fanout(processors: Vec<Arc<dyn Processor>>, exporters: Vec<Arc<dyn Exporter>>) -> Self {
        Self { inner: Arc::new((processors, Tail::Fanout(exporters))) }
    }

    /// A chain ending in a batch stage fed through `tx`.
    pub fn batch(processors: Vec<Arc<dyn Processor>>, tx: mpsc::Sender<Data>) -> Self {
        Self { inner: Arc::new((processors, Tail::Batch(tx))) }
    }

    /// Pushes one unit of data through the chain.
    pub async fn consume(&self, mut data: Data) -> Result<(), ConsumeError> {
        let (processors, tail) = &*self.inner;
        for p in processors {
            data = p.process(data)?;
        }
        if data.item_count() == 0 {
            return Ok(());
        }
        match tail {
            // Waiting here is the backpressure upstream's batch processor applies too.
            Tail::Batch(tx) => {
                tx.send(data).await.map_err(|_| ConsumeError::Retryable("pipeline is shutting down".into()))
            }
            Tail::Fanout(exporters) => fanout(exporters, data).await,
        }
    }
}

/// Delivers to all exporters; the first error is reported (the others still receive the data).
/// Exporters that can read by reference go first; of those that keep the data, all but the last
/// get a copy and the last the original (copying a decoded batch allocates every string again).
async fn fanout(exporters: &[Arc<dyn Exporter>], data: Data) -> Result<(), ConsumeError> {
    match exporters {
        [] => Ok(()),
        [only] => only.consume(data).await,
        many => {
            let mut first_err = None;
            let mut owners = Vec::with_capacity(many.len());
            for e in many {
                match e.consume_ref(&data) {
                    Some(r) => {
                        if let Err(err) = r {
                            first_err.get_or_insert(err);
                        }
                    }
                    None => owners.push(e),
                }
            }
            if let Some((last, rest)) = owners.split_last() {
                // Exporters are queued in the common case, so awaiting one after another is cheap.
                for e in rest {
                    if let Err(err) = e.consume(data.clone()).await {
                        first_err.get_or_insert(err);
                    }
                }
                if let Err(err) = last.consume(data).await {
                    first_err.get_or_insert(err);
                }
            }
            first_err.map_or(Ok(()), Err)
        }
    }
}

/// Delivers one payload to several consumers (one receiver feeding several pipelines).
pub async fn fanout_consumers(consumers: &[Consumer], data: Data) -> Result<(), ConsumeError> {
    match consumers {
        [] => Ok(()),
        [only] => only.consume(data).await,
        many => {
            let mut first_err = None;
            for c in many {
                if let Err(e) = c.consume(data.clone()).await {
                    first_err.get_or_insert(e);
                }
            }
            first_err.map_or(Ok(()), Err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::Payload;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Sink(Mutex<Vec<Data>>);
    impl Exporter for Sink {
        fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
            self.0.lock().unwrap().push(data);
            Box::pin(async { Ok(()) })
        }
    }
    #[derive(Debug)]
    struct Refuse;
    impl Processor for Refuse {
        fn process(&self, _: Data) -> Result<Data, ConsumeError> {
            Err(ConsumeError::Retryable("full".into()))
        }
    }

    fn one_span() -> Data {
        let mut p = Payload::empty(crate::config::id::Signal::Traces);
        if let Payload::Traces(r) = &mut p {
            r.resource_spans.push(opentelemetry_proto::tonic::trace::v1::ResourceSpans {
                scope_spans: vec![opentelemetry_proto::tonic::trace::v1::ScopeSpans {
                    spans: vec![Default::default()],
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        p.into()
    }

    #[tokio::test]
    async fn fans_out_to_every_exporter() {
        let a = Arc::new(Sink::default());
        let b = Arc::new(Sink::default());
        let c = Consumer::fanout(vec![], vec![a.clone(), b.clone()]);
        c.consume(one_span()).await.unwrap();
        assert_eq!(a.0.lock().unwrap().len(), 1);
        assert_eq!(b.0.lock().unwrap().len(), 1);
    }

    /// Reads by reference and remembers how many items it saw.
    #[derive(Debug, Default)]
    struct Reader(Mutex<usize>);
    impl Exporter for Reader {
        fn consume(&self, data: Data) -> BoxFuture<'_, Result<(), ConsumeError>> {
            let r = self.consume_ref(&data).unwrap_or(Ok(()));
            Box::pin(async move { r })
        }
        fn consume_ref(&self, data: &Data) -> Option<Result<(), ConsumeError>> {
            *self.0.lock().unwrap() += data.item_count();
            Some(Ok(()))
        }
    }

    #[tokio::test]
    async fn readers_get_a_reference_and_owners_the_data() {
        let (reader, a, b) = (Arc::new(Reader::default()), Arc::new(Sink::default()), Arc::new(Sink::default()));
        let c = Consumer::fanout(vec![], vec![a.clone(), reader.clone(), b.clone()]);
        c.consume(one_span()).await.unwrap();
        assert_eq!(*reader.0.lock().unwrap(), 1);
        assert_eq!(a.0.lock().unwrap().len(), 1);
        assert_eq!(b.0.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn processor_refusal_propagates() {
        let a = Arc::new(Sink::default());
        let c = Consumer::fanout(vec![Arc::new(Refuse)], vec![a.clone()]);
        assert!(c.consume(one_span()).await.unwrap_err().is_retryable());
        assert!(a.0.lock().unwrap().is_empty());
    }
}
