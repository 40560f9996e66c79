//! Outgoing calls to the configured upstream (another reviews service),
//! with a client span and the W3C `traceparent` injected so one trace
//! crosses both services.

use crate::error::ApiError;
use crate::telemetry::Telemetry;
use axum::http::HeaderMap;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use std::time::Duration;

/// A configured upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    base: String,
    client: reqwest::Client,
}

/// What the upstream answered.
#[derive(Debug)]
pub struct UpstreamResponse {
    /// Its HTTP status.
    pub status: u16,
    /// Its body, passed through.
    pub body: bytes_alias::Bytes,
}

mod bytes_alias {
    //! `axum::body::Bytes` re-export, so this crate needs no direct `bytes` dependency.
    pub use axum::body::Bytes;
}

impl Upstream {
    /// A client for `base_url` with a per-call timeout.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().timeout(timeout).build()?,
        })
    }

    /// `GET {base}/api/v1/reviews?{query}`.
    pub async fn list_reviews(&self, query: Option<&str>, telemetry: &Telemetry) -> Result<UpstreamResponse, ApiError> {
        let url = match query {
            Some(q) if !q.is_empty() => format!("{}/api/v1/reviews?{q}", self.base),
            _ => format!("{}/api/v1/reviews", self.base),
        };
        let span = telemetry.child_span(
            "GET",
            SpanKind::Client,
            vec![KeyValue::new("http.request.method", "GET"), KeyValue::new("url.full", url.clone())],
        );
        let mut headers = HeaderMap::new();
        let cx = match span {
            Some(s) => Context::current_with_span(s),
            None => Context::current(),
        };
        telemetry.inject(&cx, &mut headers);
        let result: Result<UpstreamResponse, ApiError> = async {
            let resp = self
                .client
                .get(&url)
                .headers(headers)
                .send()
                .await
                .map_err(|e| ApiError::Upstream(format!("GET {url}: {e}")))?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.map_err(|e| ApiError::Upstream(format!("GET {url}: reading body: {e}")))?;
            Ok(UpstreamResponse { status, body })
        }
        .await;
        let span = cx.span();
        match &result {
            Ok(r) => {
                span.set_attribute(KeyValue::new("http.response.status_code", i64::from(r.status)));
                if r.status >= 400 {
                    span.set_status(Status::error(format!("upstream answered {}", r.status)));
                }
            }
            Err(e) => {
                span.add_event("exception", vec![KeyValue::new("exception.message", e.to_string())]);
                span.set_status(Status::error(e.to_string()));
            }
        }
        span.end();
        result
    }
}
