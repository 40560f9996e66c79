//! The `hostmetrics` receiver's config half: [`config`] types and validates the scraper settings,
//! [`metrics`] declares what each scraper emits. The scrapers themselves run in the collector.

pub mod config;
pub mod metrics;
