//! Processor configs, one module per processor type, plus the pieces two of them share
//! ([`actions`], [`filter`]); the runtime halves live in the collector's `processor` module under
//! the same names.

pub mod actions;
pub mod attributes;
pub mod batch;
pub mod filter;
pub mod memory_limiter;
pub mod metricstransform;
pub mod resource;
pub mod span;
