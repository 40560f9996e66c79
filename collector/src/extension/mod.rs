//! Extensions: `health_check` (HTTP readiness endpoint). `basicauth` needs no runtime part beyond
//! the credentials the exporters read from its config.

pub mod health_check;
