//! Exporters: the shared helper (queue + retry, the persistent queue), OTLP gRPC and HTTP senders, debug, file and prometheus.

pub mod debug;
pub mod file;
pub mod helper;
pub mod otlp;
pub mod otlphttp;
pub mod persistent_queue;
pub mod prometheus;
pub mod tls;
