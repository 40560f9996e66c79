//! Processors: batching, memory limiting and attribute/resource/span/metric transforms.

pub mod actions;
pub mod attributes;
pub mod batch;
pub mod filter;
pub mod fused;
pub mod memory_limiter;
pub mod metricstransform;
pub mod resource;
pub mod span;
#[cfg(test)]
mod wire_tests;
