//! Extension configs, one module per extension type; the runtime halves live in the collector's
//! `extension` module under the same names.

pub mod basicauth;
pub mod file_storage;
pub mod health_check;
