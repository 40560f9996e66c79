//! Telemetry never fails or blocks a request: with the collector refusing
//! connections or accepting and never answering, requests still succeed,
//! drops and failures are counted on `/metrics`, and shutdown stays
//! bounded. SIGTERM drains an in-flight request and flushes its telemetry.

mod support;

use std::time::Duration;
use support::otlp::Receiver;
use support::service::Service;
use support::wait_for;

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{metrics}"))
}

async fn metrics_text(svc: &Service) -> String {
    reqwest::get(svc.url("/metrics")).await.expect("metrics").text().await.expect("text")
}

/// Drives a mix of writes and reads, all of which must succeed.
async fn drive(svc: &Service, n: usize) {
    let http = reqwest::Client::new();
    for i in 0..n {
        let r = http
            .post(svc.url("/api/v1/reviews"))
            .body(format!(r#"{{"entity_type":"book","entity_id":"{i}","rating":4,"author":"ann"}}"#))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 201, "request {i} failed with the collector down");
        let r = http.get(svc.url(&format!("/api/v1/reviews?entity_id={i}"))).send().await.expect("get");
        assert_eq!(r.status(), 200, "request {i} failed with the collector down");
    }
}

#[tokio::test]
async fn collector_refusing_connections_does_not_affect_requests() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut svc = Service::spawn(&[
        ("ENABLE_TELEMETRY", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
    ]);
    drive(&svc, 100).await;
    let failed = wait_for("failed exports to be counted", Duration::from_secs(20), || async {
        let n = counter(&metrics_text(&svc).await, "telemetry_spans_export_failed_total");
        (n > 0).then_some(n)
    })
    .await;
    assert!(failed > 0);
    svc.terminate();
    assert!(svc.wait_exit(Duration::from_secs(30)).await.success(), "clean exit with the collector down");
}

#[tokio::test]
async fn collector_hanging_drops_spans_instead_of_blocking() {
    // Accepts connections and never answers: the worst case for an exporter.
    let blackhole = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", blackhole.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = blackhole.accept().await {
            conns.push(c);
        }
    });
    let mut svc = Service::spawn(&[
        ("ENABLE_TELEMETRY", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "16"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
    ]);
    drive(&svc, 100).await;
    let metrics = metrics_text(&svc).await;
    assert!(counter(&metrics, "telemetry_spans_dropped_total") > 0, "a full queue must drop and count:\n{metrics}");
    svc.terminate();
    // Flushing is bounded per signal, so a hung collector cannot hang exit.
    assert!(svc.wait_exit(Duration::from_secs(40)).await.success());
    held.abort();
}

#[tokio::test]
async fn sigterm_drains_in_flight_request_and_flushes_telemetry() {
    use axum::routing::get;
    use std::sync::{Arc, Mutex};
    use tokio::sync::{mpsc, oneshot};

    let rx = Receiver::start_grpc().await;
    // A slow upstream that holds the request until the test releases it.
    let (arrived_tx, mut arrived_rx) = mpsc::channel::<()>(1);
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let slow = axum::Router::new().route(
        "/api/v1/reviews",
        get(move || {
            let arrived_tx = arrived_tx.clone();
            let release = release_rx.lock().expect("lock").take();
            async move {
                let _ = arrived_tx.send(()).await;
                if let Some(r) = release {
                    let _ = r.await;
                }
                axum::Json(serde_json::json!({"items": [], "total": 0, "limit": 20, "offset": 0}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, slow).await });

    let mut svc = Service::spawn(&[
        ("ENABLE_TELEMETRY", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &rx.endpoint),
        ("OTEL_SERVICE_NAME", "reviews-drain"),
        // Nothing is exported before shutdown: whatever arrives was flushed by it.
        ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
        ("UPSTREAM_URL", &upstream),
        ("UPSTREAM_TIMEOUT_MS", "30000"),
    ]);
    let url = svc.url("/api/v1/upstream/reviews");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::timeout(Duration::from_secs(20), arrived_rx.recv()).await.expect("request reached the upstream");

    svc.terminate();
    let logs = svc.logs.clone();
    wait_for("the service to start draining", Duration::from_secs(20), || {
        let seen = logs.lock().expect("logs").iter().any(|l| l.contains("shutting down"));
        std::future::ready(seen.then_some(()))
    })
    .await;
    assert!(rx.spans().is_empty(), "nothing exported before shutdown");
    let _ = release_tx.send(());

    let status = in_flight.await.expect("join").expect("in-flight request completed");
    assert_eq!(status, 200, "the in-flight request finished during the drain");
    assert!(svc.wait_exit(Duration::from_secs(30)).await.success());
    let spans = rx.spans();
    assert!(
        spans.iter().any(|s| s.name == "GET /api/v1/upstream/reviews"),
        "the drained request's span was flushed at shutdown: {spans:#?}\nlogs: {:#?}",
        svc.logs.lock().expect("logs")
    );
    assert!(rx.latest_metric("reviews-drain", "reviews.processing_time").is_some(), "metrics were flushed at shutdown");
}
