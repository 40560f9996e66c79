//! API behaviour on both storage backends, driven through `app(state)`
//! without a socket: every endpoint's success and failure paths, the read
//! cache's invalidation, and `/metrics` checked by `promtool`.

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use reviews_service::db::Db;
use reviews_service::telemetry::Telemetry;
use reviews_service::{AppState, app};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct Resp {
    status: StatusCode,
    location: Option<String>,
    content_type: Option<String>,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn call(router: &Router, method: &str, uri: &str, body: Option<Value>) -> Resp {
    call_raw(router, method, uri, body.map(|b| b.to_string())).await
}

fn header(resp: &axum::response::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap_or_default().to_owned())
}

async fn call_raw(router: &Router, method: &str, uri: &str, body: Option<String>) -> Resp {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let status = resp.status();
    let location = header(&resp, "location");
    let content_type = header(&resp, "content-type");
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Resp { status, location, content_type, text: String::from_utf8_lossy(&bytes).into_owned() }
}

fn review(entity_type: &str, entity_id: &str, rating: i64) -> Value {
    json!({"entity_type": entity_type, "entity_id": entity_id, "rating": rating, "author": "ann", "title": "t", "comment": "c"})
}

fn assert_error(r: &Resp, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{}", r.text);
    assert!(v["error"]["message"].is_string(), "{}", r.text);
}

fn field_names(r: &Resp) -> Vec<String> {
    r.json()["error"]["fields"]
        .as_array()
        .map(|a| a.iter().map(|f| f["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

fn state(db: Db, metrics: bool) -> Arc<AppState> {
    // A long TTL makes any missing cache invalidation visible as a stale read.
    Arc::new(AppState::new(db, Arc::new(Telemetry::disabled()), metrics, Duration::from_secs(300), 100, None))
}

/// The whole API contract, run once per backend.
async fn exercise(db: Db) {
    let router = app(state(db.clone(), true));

    let r = call(&router, "GET", "/health", None).await;
    assert_eq!((r.status, r.json()["status"].clone()), (StatusCode::OK, json!("ok")));
    let r = call(&router, "GET", "/ready", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Create.
    let r = call(&router, "POST", "/api/v1/reviews", Some(review("book", "b1", 5))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let created = r.json();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(r.location.as_deref(), Some(format!("/api/v1/reviews/{id}").as_str()));
    assert_eq!(created["rating"], 5);
    assert_eq!(created["entity_type"], "book");
    assert!(created["created_at"].as_str().expect("created_at").ends_with('Z'));

    // Create: validation and malformed bodies.
    let r = call(&router, "POST", "/api/v1/reviews", Some(json!({"entity_type": "book", "rating": 6}))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_names(&r), vec!["entity_id", "author", "rating"]);
    let r = call_raw(&router, "POST", "/api/v1/reviews", Some("{not json".into())).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");

    // Read one (twice: the second comes from the cache).
    for _ in 0..2 {
        let r = call(&router, "GET", &format!("/api/v1/reviews/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json(), created);
    }
    let r = call(&router, "GET", "/api/v1/reviews/999999", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = call(&router, "GET", "/api/v1/reviews/abc", None).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_names(&r), vec!["id"]);

    // List, caching a page before more writes happen.
    let r = call(&router, "GET", "/api/v1/reviews", None).await;
    assert_eq!(r.json()["total"], 1);
    for (t, e, rating) in [("book", "b2", 3), ("movie", "m1", 4), ("movie", "m2", 5), ("book", "b1", 1)] {
        let r = call(&router, "POST", "/api/v1/reviews", Some(review(t, e, rating))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = call(&router, "GET", "/api/v1/reviews", None).await;
    let page = r.json();
    assert_eq!(page["total"], 5, "list cache must be invalidated by writes: {page}");
    let ids: Vec<i64> =
        page["items"].as_array().expect("items").iter().map(|i| i["id"].as_i64().unwrap_or(0)).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    let r = call(&router, "GET", "/api/v1/reviews?entity_type=book", None).await;
    assert_eq!(r.json()["total"], 3);
    let r = call(&router, "GET", "/api/v1/reviews?entity_type=movie&rating=5", None).await;
    let v = r.json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["items"][0]["entity_id"], "m2");
    let r = call(&router, "GET", "/api/v1/reviews?min_rating=4", None).await;
    assert_eq!(r.json()["total"], 3);
    let r = call(&router, "GET", "/api/v1/reviews?entity_type=book&entity_id=b1", None).await;
    assert_eq!(r.json()["total"], 2);
    let r = call(&router, "GET", "/api/v1/reviews?limit=2&offset=1", None).await;
    let v = r.json();
    assert_eq!((v["total"].clone(), v["limit"].clone(), v["offset"].clone()), (json!(5), json!(2), json!(1)));
    assert_eq!(v["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["items"][0]["id"].as_i64(), Some(ids[1]));
    let r = call(&router, "GET", "/api/v1/reviews?limit=0&rating=x", None).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_names(&r), vec!["limit", "rating"]);
    let r = call(&router, "GET", "/api/v1/reviews?offset=1000000000", None).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_names(&r), vec!["offset"]);
    let mut nul = review("book", "b1", 3);
    nul["author"] = json!("ann\u{0}");
    let r = call(&router, "POST", "/api/v1/reviews", Some(nul)).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(field_names(&r), vec!["author"]);

    // Replace.
    let r = call(&router, "PUT", &format!("/api/v1/reviews/{id}"), Some(review("book", "b1", 2))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["rating"], 2);
    assert_eq!(r.json()["created_at"], created["created_at"]);
    let r = call(&router, "GET", &format!("/api/v1/reviews/{id}"), None).await;
    assert_eq!(r.json()["rating"], 2, "item cache must be invalidated by PUT");
    let r = call(&router, "GET", "/api/v1/reviews?rating=2", None).await;
    assert_eq!(r.json()["total"], 1);
    let r = call(&router, "PUT", "/api/v1/reviews/999999", Some(review("book", "b1", 2))).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = call(&router, "PUT", &format!("/api/v1/reviews/{id}"), Some(json!({"rating": 0}))).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(field_names(&r).contains(&"rating".to_owned()));

    // Delete.
    let r = call(&router, "DELETE", &format!("/api/v1/reviews/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(&router, "GET", &format!("/api/v1/reviews/{id}"), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = call(&router, "DELETE", &format!("/api/v1/reviews/{id}"), None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = call(&router, "GET", "/api/v1/reviews", None).await;
    assert_eq!(r.json()["total"], 4);

    // Routing errors share the error shape.
    let r = call(&router, "GET", "/nope", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = call(&router, "PATCH", "/api/v1/reviews/1", None).await;
    assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let r = call(&router, "GET", "/api/v1/upstream/reviews", None).await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured");

    // Prometheus metrics saw all of that, by route template.
    let r = call(&router, "GET", "/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("http_requests_total{handler=\"/api/v1/reviews\",method=\"POST\",status=\"2xx\"} 5\n"),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("http_requests_total{handler=\"/api/v1/reviews/{id}\",method=\"GET\",status=\"4xx\"} 3\n"),
        "{}",
        r.text
    );
    assert!(r.text.contains("http_requests_total{handler=\"none\",method=\"GET\",status=\"4xx\"} 1\n"), "{}", r.text);
    assert!(r.text.contains("http_requests_inprogress{handler=\"/metrics\",method=\"GET\"} 1\n"), "{}", r.text);

    // Readiness follows the database.
    db.close().await;
    let r = call(&router, "GET", "/ready", None).await;
    assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    // A database failure's body names no driver, pool or SQL.
    for (method, uri, body) in
        [("GET", "/api/v1/reviews?rating=2", None), ("POST", "/api/v1/reviews", Some(review("book", "b9", 3)))]
    {
        let r = call(&router, method, uri, body).await;
        assert_error(&r, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
        let lower = r.text.to_lowercase();
        for leak in ["pool", "sqlx", "select", "insert", "sqlite", "postgres", "connection"] {
            assert!(!lower.contains(leak), "{method} {uri}: {leak:?} in {}", r.text);
        }
    }
    let r = call(&router, "GET", "/health", None).await;
    assert_eq!(r.status, StatusCode::OK, "liveness does not depend on the database");
}

async fn sqlite_db(dir: &tempfile::TempDir) -> Db {
    // The file does not exist yet: the service creates and migrates it.
    let url = format!("sqlite://{}", dir.path().join("sub.db").display());
    Db::connect(&url, 4, Duration::from_secs(5), Arc::new(Telemetry::disabled())).await.expect("sqlite connect")
}

#[tokio::test]
async fn api_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    exercise(sqlite_db(&dir).await).await;
}

#[tokio::test]
async fn api_on_postgres() {
    let pg = support::postgres::Postgres::start();
    pg.ready().await;
    let db = Db::connect(&pg.url, 4, Duration::from_secs(10), Arc::new(Telemetry::disabled()))
        .await
        .expect("postgres connect");
    assert_eq!(db.backend().system(), "postgresql");
    // Every pooled connection carries the statement timeout (default 10 s; here a custom one).
    assert_eq!(db.statement_timeout().await.expect("show").as_deref(), Some("10s"));
    let custom = reviews_service::db::Db::connect_with_statement_timeout(
        &pg.url,
        2,
        Duration::from_secs(10),
        Duration::from_millis(1500),
        Arc::new(Telemetry::disabled()),
    )
    .await
    .expect("postgres connect");
    assert_eq!(custom.statement_timeout().await.expect("show").as_deref(), Some("1500ms"));
    custom.close().await;
    exercise(db).await;
}

#[tokio::test]
async fn sqlite_data_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = app(state(sqlite_db(&dir).await, true));
    let r = call(&router, "POST", "/api/v1/reviews", Some(review("book", "b1", 4))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Reopening runs migrations again; they must be idempotent and keep data.
    let router = app(state(sqlite_db(&dir).await, true));
    let r = call(&router, "GET", "/api/v1/reviews", None).await;
    assert_eq!(r.json()["total"], 1);
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let db = Db::connect("sqlite::memory:", 4, Duration::from_secs(5), Arc::new(Telemetry::disabled()))
        .await
        .expect("in-memory sqlite");
    let router = app(state(db, true));
    let r = call(&router, "POST", "/api/v1/reviews", Some(review("book", "b1", 4))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = call(&router, "GET", "/api/v1/reviews", None).await;
    assert_eq!(r.json()["total"], 1);
}

#[tokio::test]
async fn metrics_endpoint_can_be_disabled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = app(state(sqlite_db(&dir).await, false));
    let r = call(&router, "GET", "/metrics", None).await;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = app(state(sqlite_db(&dir).await, true));
    call(&router, "POST", "/api/v1/reviews", Some(review("book", "b1", 4))).await;
    call(&router, "POST", "/api/v1/reviews", Some(json!({}))).await;
    call(&router, "GET", "/api/v1/reviews/1", None).await;
    call(&router, "GET", "/nope", None).await;
    let r = call(&router, "GET", "/metrics", None).await;
    assert!(r.text.contains("http_request_duration_seconds_bucket"));

    assert_eq!(r.content_type.as_deref(), Some(prom_text::CONTENT_TYPE));
    prom_text::promtool::check_metrics(&r.text).unwrap_or_else(|e| panic!("{e}"));
}

/// Many POSTs at once share group commits on SQLite: every one must be
/// answered with its own review (distinct id, its own content), and every
/// one must be readable afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_all_land_with_distinct_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let router = app(state(sqlite_db(&dir).await, true));
    const N: usize = 200;
    let mut tasks = Vec::new();
    for i in 0..N {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"entity_type": "book", "entity_id": format!("b{i}"), "rating": (i % 5) + 1,
                              "author": format!("author-{i}"), "comment": format!("comment {i}")});
            (i, call(&router, "POST", "/api/v1/reviews", Some(body)).await)
        }));
    }
    let mut ids = std::collections::HashMap::new();
    for t in tasks {
        let (i, r) = t.await.expect("task");
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let v = r.json();
        assert_eq!(v["entity_id"], format!("b{i}"), "answer belongs to its own request: {v}");
        assert_eq!(v["author"], format!("author-{i}"), "{v}");
        assert_eq!(v["rating"], (i % 5) as i64 + 1, "{v}");
        let id = v["id"].as_i64().expect("id");
        assert_eq!(r.location.as_deref(), Some(format!("/api/v1/reviews/{id}").as_str()));
        assert!(ids.insert(id, i).is_none(), "id {id} handed out twice");
    }
    assert_eq!(ids.len(), N);
    for (id, i) in &ids {
        let r = call(&router, "GET", &format!("/api/v1/reviews/{id}"), None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let v = r.json();
        assert_eq!(
            (v["entity_id"].clone(), v["comment"].clone()),
            (json!(format!("b{i}")), json!(format!("comment {i}")))
        );
    }
    let r = call(&router, "GET", "/api/v1/reviews?limit=1", None).await;
    assert_eq!(r.json()["total"], N as i64);
}

/// 200 concurrent requests stuck on an upstream that never answers: the request timeout ends
/// each one with 503, the concurrency limit keeps at most a few in the handlers, and `/health`
/// keeps answering throughout.
#[tokio::test]
async fn concurrent_slow_requests_leave_health_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Accepts connections and never answers: every upstream call hangs (its own timeout is 60 s).
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            conns.push(s);
        }
    });
    let upstream = reviews_service::upstream::Upstream::new(&format!("http://{hang_addr}"), Duration::from_secs(60))
        .expect("client");
    let limits = reviews_service::app::RequestLimits { timeout: Duration::from_secs(1), max_concurrent: 16 };
    let state = AppState::new(
        sqlite_db(&dir).await,
        Arc::new(Telemetry::disabled()),
        true,
        Duration::from_secs(5),
        100,
        Some(upstream),
    )
    .with_limits(limits);
    let router = app(Arc::new(state));
    let started = std::time::Instant::now();
    let slow: Vec<_> = (0..200)
        .map(|_| {
            let r = router.clone();
            tokio::spawn(async move { call(&r, "GET", "/api/v1/upstream/reviews", None).await.status })
        })
        .collect();
    let health = tokio::time::timeout(Duration::from_secs(5), call(&router, "GET", "/health", None))
        .await
        .expect("/health did not answer while the API was saturated");
    assert_eq!(health.status, StatusCode::OK);
    assert!(slow.iter().any(|h| !h.is_finished()), "/health answered only after the slow requests ended");
    for s in slow {
        assert_eq!(s.await.expect("join"), StatusCode::SERVICE_UNAVAILABLE);
    }
    // Each request is bounded by the 1 s timeout, including its wait for a slot.
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    held.abort();
}
