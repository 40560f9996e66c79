//! OTLP/HTTP receiver: `POST /v1/{traces,metrics,logs}` with protobuf or JSON bodies, gzip, and the
//! configured size limit. Decoding is in [`super::decode`]; this module is the thin axum layer;
//! it is served with timeouts and limits by [`crate::listener::serve`].

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message as _;

use super::Outputs;
use super::decode::{self, DecodeError, Encoding};
use crate::config::id::Signal;
use crate::pipeline::fanout_consumers;
use crate::telemetry::ReceiverMetrics;
use collector_config::receiver::otlp::HttpServerConfig;

/// Shared handler state.
#[derive(Debug)]
pub struct HttpState {
    outputs: Outputs,
    metrics: ReceiverMetrics,
    max_body: u64,
}

/// Builds the router (separate from serving so tests can drive it directly).
pub fn app(cfg: &HttpServerConfig, outputs: Outputs, metrics: ReceiverMetrics) -> Router {
    let state = Arc::new(HttpState { outputs, metrics, max_body: cfg.max_request_body_size });
    Router::new()
        .route(&cfg.traces_url_path, post(|s, r| handle(s, r, Signal::Traces)))
        .route(&cfg.metrics_url_path, post(|s, r| handle(s, r, Signal::Metrics)))
        .route(&cfg.logs_url_path, post(|s, r| handle(s, r, Signal::Logs)))
        .with_state(state)
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Error body in the request's encoding: a `google.rpc.Status`.
fn error_response(status: StatusCode, enc: Encoding, grpc_code: i32, message: String) -> Response {
    let st = tonic_types::pb::Status { code: grpc_code, message: message.clone(), details: vec![] };
    let mut resp = match enc {
        Encoding::Protobuf => {
            (status, [(header::CONTENT_TYPE, "application/x-protobuf")], st.encode_to_vec()).into_response()
        }
        Encoding::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({"code": grpc_code, "message": message}).to_string(),
        )
            .into_response(),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
}

fn ok_response(signal: Signal, enc: Encoding) -> Response {
    match enc {
        Encoding::Protobuf => {
            let body = match signal {
                Signal::Traces => ExportTraceServiceResponse::default().encode_to_vec(),
                Signal::Metrics => ExportMetricsServiceResponse::default().encode_to_vec(),
                Signal::Logs => ExportLogsServiceResponse::default().encode_to_vec(),
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
        }
        Encoding::Json => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
    }
}

async fn handle(State(state): State<Arc<HttpState>>, req: Request<Body>, signal: Signal) -> Response {
    let (parts, body) = req.into_parts();
    let ct = header_str(&parts.headers, header::CONTENT_TYPE).map(str::to_owned);
    // Errors are answered in the request's encoding when we can tell it, else protobuf.
    let reply_enc = decode::encoding_of(ct.as_deref()).unwrap_or(Encoding::Protobuf);
    let bytes = match axum::body::to_bytes(body, state.max_body as usize).await {
        Ok(b) => b,
        Err(e) if crate::listener::is_body_timeout(&e) => {
            // The listener's `read_timeout` ran out while the client was still sending.
            return error_response(StatusCode::REQUEST_TIMEOUT, reply_enc, 4, "request body read timed out".into());
        }
        Err(_) => {
            let e = DecodeError::TooLarge(state.max_body);
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, reply_enc, 3, e.to_string());
        }
    };
    let ce = header_str(&parts.headers, header::CONTENT_ENCODING);
    let (payload, enc) = match decode::decode(signal, ct.as_deref(), ce, bytes, state.max_body) {
        Ok(x) => x,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error_response(status, reply_enc, 3, e.to_string());
        }
    };
    let n = payload.item_count();
    let consumers = match signal {
        Signal::Traces => &state.outputs.traces,
        Signal::Metrics => &state.outputs.metrics,
        Signal::Logs => &state.outputs.logs,
    };
    if consumers.is_empty() {
        return error_response(
            StatusCode::NOT_FOUND,
            enc,
            12,
            format!("no {} pipeline is configured for this receiver", signal.as_str()),
        );
    }
    match fanout_consumers(consumers, payload).await {
        Ok(()) => {
            state.metrics.accepted(signal, n);
            ok_response(signal, enc)
        }
        Err(e) => {
            state.metrics.refused(signal, n);
            if e.is_retryable() {
                error_response(StatusCode::SERVICE_UNAVAILABLE, enc, 14, e.to_string())
            } else {
                error_response(StatusCode::BAD_REQUEST, enc, 3, e.to_string())
            }
        }
    }
}
