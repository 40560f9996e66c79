//! A real OTLP receiver for tests: the collector's gRPC `TraceService` and
//! `MetricsService` (tonic) or the OTLP/HTTP protobuf endpoints (axum) on a
//! free loopback port, recording every export request.

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the receiver got.
#[derive(Debug, Default)]
pub struct Received {
    /// Trace export requests.
    pub traces: Vec<ExportTraceServiceRequest>,
    /// Metric export requests.
    pub metrics: Vec<ExportMetricsServiceRequest>,
}

/// A running receiver.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// Everything received so far.
    pub received: Arc<Mutex<Received>>,
    /// Endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
}

#[derive(Clone)]
struct Svc(Arc<Mutex<Received>>);

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Svc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().expect("lock").metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// Starts an OTLP/gRPC receiver.
    pub async fn start_grpc() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Received::default()));
        let svc = Svc(received.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(svc.clone()))
                .add_service(MetricsServiceServer::new(svc))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Self { received, endpoint: format!("http://{addr}") }
    }

    /// Starts an OTLP/HTTP (protobuf) receiver.
    pub async fn start_http() -> Self {
        use axum::body::Bytes;
        use axum::routing::post;
        use prost::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let received = Arc::new(Mutex::new(Received::default()));
        let (r1, r2) = (received.clone(), received.clone());
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                post(move |body: Bytes| async move {
                    let req = ExportTraceServiceRequest::decode(body).expect("trace protobuf");
                    r1.lock().expect("lock").traces.push(req);
                    ExportTraceServiceResponse { partial_success: None }.encode_to_vec()
                }),
            )
            .route(
                "/v1/metrics",
                post(move |body: Bytes| async move {
                    let req = ExportMetricsServiceRequest::decode(body).expect("metrics protobuf");
                    r2.lock().expect("lock").metrics.push(req);
                    ExportMetricsServiceResponse { partial_success: None }.encode_to_vec()
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { received, endpoint: format!("http://{addr}") }
    }

    /// All spans received so far, flattened.
    pub fn spans(&self) -> Vec<FlatSpan> {
        let r = self.received.lock().expect("lock");
        let mut out = Vec::new();
        for req in &r.traces {
            for rs in &req.resource_spans {
                let service =
                    rs.resource.as_ref().and_then(|res| attr(&res.attributes, "service.name")).unwrap_or_default();
                for ss in &rs.scope_spans {
                    for s in &ss.spans {
                        out.push(FlatSpan {
                            service: service.clone(),
                            trace_id: hex(&s.trace_id),
                            span_id: hex(&s.span_id),
                            parent_span_id: hex(&s.parent_span_id),
                            name: s.name.clone(),
                            kind: s.kind,
                            attrs: s
                                .attributes
                                .iter()
                                .map(|kv| (kv.key.clone(), value_string(kv.value.as_ref())))
                                .collect(),
                            status_code: s.status.as_ref().map(|st| st.code).unwrap_or(0),
                            events: s.events.iter().map(|e| e.name.clone()).collect(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The most recent export of metric `name` from `service`.
    pub fn latest_metric(&self, service: &str, name: &str) -> Option<Metric> {
        let r = self.received.lock().expect("lock");
        let mut found = None;
        for req in &r.metrics {
            for rm in &req.resource_metrics {
                let svc =
                    rm.resource.as_ref().and_then(|res| attr(&res.attributes, "service.name")).unwrap_or_default();
                if svc != service {
                    continue;
                }
                for sm in &rm.scope_metrics {
                    for m in &sm.metrics {
                        if m.name == name {
                            found = Some(m.clone());
                        }
                    }
                }
            }
        }
        found
    }
}

/// Sum over all data points of a counter / up-down counter.
pub fn sum_value(m: &Metric) -> Option<i64> {
    match m.data.as_ref()? {
        metric::Data::Sum(s) => Some(
            s.data_points
                .iter()
                .map(|p| match p.value {
                    Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(i)) => i,
                    Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(d)) => d as i64,
                    None => 0,
                })
                .sum(),
        ),
        _ => None,
    }
}

/// `(count, sum)` over all data points of a histogram.
pub fn histogram_totals(m: &Metric) -> Option<(u64, f64)> {
    match m.data.as_ref()? {
        metric::Data::Histogram(h) => {
            Some(h.data_points.iter().fold((0, 0.0), |(c, s), p| (c + p.count, s + p.sum.unwrap_or(0.0))))
        }
        _ => None,
    }
}

/// One span with the fields tests look at.
#[derive(Debug, Clone)]
pub struct FlatSpan {
    /// Resource `service.name`.
    pub service: String,
    /// Hex trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id ("" for roots).
    pub parent_span_id: String,
    /// Span name.
    pub name: String,
    /// OTLP span kind (2 = server, 3 = client).
    pub kind: i32,
    /// Attributes rendered as strings.
    pub attrs: HashMap<String, String>,
    /// OTLP status code (2 = error).
    pub status_code: i32,
    /// Event names.
    pub events: Vec<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(kvs: &[KeyValue], key: &str) -> Option<String> {
    kvs.iter().find(|kv| kv.key == key).map(|kv| value_string(kv.value.as_ref()))
}

fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}
