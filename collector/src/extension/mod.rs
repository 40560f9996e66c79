//! Extensions: `health_check` (HTTP readiness endpoint), `file_storage` (directories for
//! persistent sending queues). `basicauth` needs no runtime part beyond the credentials the
//! exporters read from its config.

pub mod file_storage;
pub mod health_check;
