//! With `ENABLE_TELEMETRY=true`, the service binary exports to a real OTLP
//! receiver started here: the span tree of one request, one trace crossing
//! two instances, errors on spans, the custom metric values, both OTLP
//! transports, and JSON logs carrying the trace id.

mod support;

use std::time::Duration;
use support::otlp::{FlatSpan, Receiver, histogram_totals, sum_value};
use support::service::Service;
use support::wait_for;

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const STATUS_ERROR: i32 = 2;

fn otel_env<'a>(endpoint: &'a str, service: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ENABLE_TELEMETRY", "true"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_SERVICE_NAME", service),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ]
}

async fn spans_where(rx: &Receiver, what: &str, pred: impl Fn(&[FlatSpan]) -> bool) -> Vec<FlatSpan> {
    wait_for(what, Duration::from_secs(20), || {
        let spans = rx.spans();
        std::future::ready(pred(&spans).then_some(spans))
    })
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn span_tree_cross_service_trace_errors_and_metrics() {
    let rx = Receiver::start_grpc().await;
    // B's own upstream is a closed port, to produce a failing call.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let mut b_env = otel_env(&rx.endpoint, "reviews-b");
    b_env.push(("UPSTREAM_URL", &closed_url));
    let b = Service::spawn(&b_env);
    let b_url = b.url("");
    let mut a_env = otel_env(&rx.endpoint, "reviews-a");
    a_env.push(("UPSTREAM_URL", &b_url));
    let a = Service::spawn(&a_env);
    let http = client();

    // Custom metrics: three reviews with known ratings.
    let mut id = 0;
    for (rating, entity) in [(5, "book"), (4, "book"), (5, "movie")] {
        let r = http
            .post(a.url("/api/v1/reviews"))
            .body(format!(r#"{{"entity_type":"{entity}","entity_id":"x","rating":{rating},"author":"ann"}}"#))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
        id = v["id"].as_i64().expect("id");
    }

    // 1. Span tree of one request, continuing a caller's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let r = http
        .get(a.url(&format!("/api/v1/reviews/{id}")))
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let spans = spans_where(&rx, "server span with DB and cache children", |s| {
        s.iter().filter(|x| x.trace_id == trace_id).count() >= 3
    })
    .await;
    let t: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let server = t.iter().find(|s| s.kind == SERVER).unwrap_or_else(|| panic!("no server span in {t:#?}"));
    assert_eq!(server.name, "GET /api/v1/reviews/{id}");
    assert_eq!(server.service, "reviews-a");
    assert_eq!(server.parent_span_id, caller_span, "incoming traceparent is the parent");
    assert_eq!(server.attrs["http.request.method"], "GET");
    assert_eq!(server.attrs["http.route"], "/api/v1/reviews/{id}");
    assert_eq!(server.attrs["http.response.status_code"], "200");
    assert_eq!(server.attrs["url.path"], format!("/api/v1/reviews/{id}"));
    let db = t.iter().find(|s| s.name == "SELECT reviews").unwrap_or_else(|| panic!("no db span in {t:#?}"));
    assert_eq!(db.parent_span_id, server.span_id, "db span is a child of the server span");
    assert_eq!(db.kind, CLIENT);
    assert_eq!(db.attrs["db.system"], "sqlite");
    assert!(db.attrs["db.statement"].contains("FROM reviews WHERE id = $1"), "{:?}", db.attrs);
    let cache = t.iter().find(|s| s.name == "cache.get").unwrap_or_else(|| panic!("no cache span in {t:#?}"));
    assert_eq!(cache.parent_span_id, server.span_id);
    assert_eq!(cache.events, vec!["cache.miss"]);

    // A second read is a cache hit with no database span.
    let trace2 = "11111111111111111111111111111111";
    http.get(a.url(&format!("/api/v1/reviews/{id}")))
        .header("traceparent", format!("00-{trace2}-{caller_span}-01"))
        .send()
        .await
        .expect("get");
    let spans = spans_where(&rx, "cache hit trace", |s| s.iter().filter(|x| x.trace_id == trace2).count() >= 2).await;
    let t2: Vec<_> = spans.iter().filter(|s| s.trace_id == trace2).collect();
    assert!(t2.iter().any(|s| s.name == "cache.get" && s.events == vec!["cache.hit"]), "{t2:#?}");
    assert!(!t2.iter().any(|s| s.name == "SELECT reviews"), "hit must not query: {t2:#?}");

    // 2. One trace across two instances: A -> B.
    let r = http.get(a.url("/api/v1/upstream/reviews?limit=2")).send().await.expect("upstream");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
    assert_eq!(v["limit"], 2, "B answered the proxied query");
    let spans = spans_where(&rx, "A's and B's server spans for the proxied call", |s| {
        s.iter().any(|x| x.service == "reviews-b" && x.name == "GET /api/v1/reviews" && x.kind == SERVER)
            && s.iter().any(|x| x.service == "reviews-a" && x.name == "GET /api/v1/upstream/reviews")
    })
    .await;
    let a_server = spans
        .iter()
        .find(|s| s.service == "reviews-a" && s.name == "GET /api/v1/upstream/reviews")
        .expect("A server span");
    let a_client = spans
        .iter()
        .find(|s| {
            s.service == "reviews-a" && s.kind == CLIENT && s.parent_span_id == a_server.span_id && s.name == "GET"
        })
        .expect("A client span");
    let b_server =
        spans.iter().find(|s| s.service == "reviews-b" && s.name == "GET /api/v1/reviews").expect("B server span");
    assert_eq!(a_client.trace_id, a_server.trace_id);
    assert_eq!(b_server.trace_id, a_server.trace_id, "one trace id across both services");
    assert_eq!(b_server.parent_span_id, a_client.span_id, "B's span is a child of A's client span");
    assert_eq!(a_client.attrs["http.response.status_code"], "200");
    let b_db = spans_where(&rx, "B's db spans", |s| {
        s.iter()
            .filter(|x| x.service == "reviews-b" && x.trace_id == b_server.trace_id && x.name == "SELECT reviews")
            .count()
            >= 2
    })
    .await;
    assert!(
        b_db.iter()
            .filter(|x| x.service == "reviews-b" && x.name == "SELECT reviews" && x.trace_id == b_server.trace_id)
            .all(|x| x.parent_span_id == b_server.span_id)
    );

    // 3. Errors are recorded with status ERROR: B's upstream is down.
    let r = http.get(b.url("/api/v1/upstream/reviews")).send().await.expect("send");
    assert_eq!(r.status(), 502);
    let spans = spans_where(&rx, "B's failing server span", |s| {
        s.iter().any(|x| x.service == "reviews-b" && x.name == "GET /api/v1/upstream/reviews")
    })
    .await;
    let failing =
        spans.iter().find(|s| s.service == "reviews-b" && s.name == "GET /api/v1/upstream/reviews").expect("span");
    assert_eq!(failing.status_code, STATUS_ERROR);
    assert_eq!(failing.attrs["http.response.status_code"], "502");
    assert!(failing.events.contains(&"exception".to_owned()), "{failing:?}");
    let failed_client = spans
        .iter()
        .find(|s| s.parent_span_id == failing.span_id && s.kind == CLIENT)
        .expect("client span of the failed call");
    assert_eq!(failed_client.status_code, STATUS_ERROR);

    // 4. Custom metrics carry the right values.
    let created = wait_for("reviews.created == 3", Duration::from_secs(20), || {
        std::future::ready(rx.latest_metric("reviews-a", "reviews.created").filter(|m| sum_value(m) == Some(3)))
    })
    .await;
    assert_eq!(sum_value(&created), Some(3));
    let rating = rx.latest_metric("reviews-a", "reviews.rating").expect("reviews.rating");
    assert_eq!(histogram_totals(&rating), Some((3, 14.0)));
    let processing = rx.latest_metric("reviews-a", "reviews.processing_time").expect("reviews.processing_time");
    assert_eq!(processing.unit, "ms");
    let (count, sum) = histogram_totals(&processing).expect("histogram");
    assert!(count >= 6 && sum > 0.0, "count {count} sum {sum}");
    // Every request finished, so the in-flight count is back to zero.
    let active = wait_for("reviews.active_requests back to 0", Duration::from_secs(20), || {
        std::future::ready(rx.latest_metric("reviews-a", "reviews.active_requests").filter(|m| sum_value(m) == Some(0)))
    })
    .await;
    assert_eq!(sum_value(&active), Some(0));

    // 5. JSON access logs carry the trace and span ids.
    let logs = a.logs.lock().expect("logs").clone();
    let line = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["trace_id"] == trace_id)
        .unwrap_or_else(|| panic!("no log line with trace id {trace_id}: {logs:#?}"));
    assert_eq!(line["span_id"], server.span_id.as_str());
    assert_eq!(line["route"], "/api/v1/reviews/{id}");
}

#[tokio::test]
async fn http_protobuf_transport_exports_spans_and_metrics() {
    let rx = Receiver::start_http().await;
    let mut env = otel_env(&rx.endpoint, "reviews-http");
    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"));
    let svc = Service::spawn(&env);
    let r = client()
        .post(svc.url("/api/v1/reviews"))
        .body(r#"{"entity_type":"book","entity_id":"1","rating":3,"author":"ann"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 201);
    let spans =
        spans_where(&rx, "POST server span over http/protobuf", |s| s.iter().any(|x| x.name == "POST /api/v1/reviews"))
            .await;
    let server = spans.iter().find(|x| x.name == "POST /api/v1/reviews").expect("span");
    assert_eq!(server.service, "reviews-http");
    assert!(spans.iter().any(|x| x.name == "INSERT reviews" && x.parent_span_id == server.span_id));
    wait_for("reviews.created over http/protobuf", Duration::from_secs(20), || {
        std::future::ready(rx.latest_metric("reviews-http", "reviews.created").filter(|m| sum_value(m) == Some(1)))
    })
    .await;
}

#[tokio::test]
async fn sampler_env_is_honoured() {
    let rx = Receiver::start_grpc().await;
    let mut env = otel_env(&rx.endpoint, "reviews-sampled-off");
    env.push(("OTEL_TRACES_SAMPLER", "always_off"));
    let svc = Service::spawn(&env);
    for _ in 0..3 {
        let r = client().get(svc.url("/api/v1/reviews")).send().await.expect("get");
        assert_eq!(r.status(), 200);
    }
    // Metrics still flow, which also proves the export pipeline ran.
    wait_for("metrics export", Duration::from_secs(20), || {
        std::future::ready(rx.latest_metric("reviews-sampled-off", "reviews.processing_time"))
    })
    .await;
    let mut svc = svc;
    svc.terminate();
    assert!(svc.wait_exit(Duration::from_secs(20)).await.success());
    assert!(rx.spans().is_empty(), "always_off must export no spans: {:#?}", rx.spans());
}
