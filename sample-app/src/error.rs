//! The one JSON error shape every endpoint answers with, and the mapping from
//! internal failures to HTTP status codes.
//!
//! Shape: `{"error": {"code": "...", "message": "...", "fields": [{"field": "...", "message": "..."}]}}`
//! (`fields` only for validation failures), so clients parse one structure.
//!
//! 5xx bodies are generic (`"message": "internal error"` and the like, plus `trace_id` when the
//! request is traced): database and driver text, SQL and upstream URLs go only to the log line
//! and the span, which carry the same trace id. Errors caused by the data (a constraint the row
//! violates, a value the database cannot store) are 4xx: retrying them cannot succeed, so they
//! must not look like a retryable 503.

use crate::model::FieldError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::{Status, TraceContextExt};
use serde::Serialize;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body or query failed validation; carries every failing field.
    #[error("validation failed for: {}", field_names(.0))]
    Validation(Vec<FieldError>),
    /// The request body was not parseable JSON.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The addressed review (or route) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not for this HTTP method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database failed or was unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A queued write failed (its statement, or its batch's commit).
    #[error("database error: {0}")]
    Write(#[from] crate::writer::WriteError),
    /// No upstream is configured (`UPSTREAM_URL` unset) for an endpoint that needs one.
    #[error("no upstream configured: set UPSTREAM_URL")]
    UpstreamNotConfigured,
    /// The upstream could not be reached or answered garbage.
    #[error("upstream request failed: {0}")]
    Upstream(String),
}

/// How a database error is answered: by what it says about the request, not by where it came from.
fn database_status(e: &sqlx::Error) -> (StatusCode, &'static str) {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(d) => match d.kind() {
            ErrorKind::UniqueViolation => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::ForeignKeyViolation | ErrorKind::NotNullViolation | ErrorKind::CheckViolation => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_data")
            }
            // PostgreSQL class 22 "data exception" (value out of range, invalid text, NUL
            // byte, ...); SQLite's SQLITE_TOOBIG (18) and SQLITE_MISMATCH (20).
            _ if d.code().is_some_and(|c| c.starts_with("22") || c == "18" || c == "20") => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_data")
            }
            // Everything else the server says (statement_timeout's 57014 included) is its
            // state, not the request's: retryable.
            _ => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
        sqlx::Error::RowNotFound => (StatusCode::NOT_FOUND, "not_found"),
        // Decoding, missing columns, configuration: a bug here, not a passing outage.
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

/// The message a 5xx body carries instead of the error's own text.
fn generic_message(code: &str) -> &'static str {
    match code {
        "database_unavailable" => "the database is unavailable; retry later",
        "database_busy" => "the database is busy; retry later",
        "upstream_failed" => "the upstream service failed",
        "upstream_not_configured" => "no upstream is configured",
        _ => "internal error",
    }
}

fn field_names(fields: &[FieldError]) -> String {
    fields.iter().map(|f| f.field.as_str()).collect::<Vec<_>>().join(", ")
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [FieldError]>,
    /// The request's trace id on 5xx answers when it is traced (the log line carries it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

impl ApiError {
    /// HTTP status and machine readable code for this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Database(e) | Self::Write(crate::writer::WriteError::Statement(e)) => database_status(e),
            Self::Write(crate::writer::WriteError::QueueFull(_)) => (StatusCode::SERVICE_UNAVAILABLE, "database_busy"),
            Self::Write(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Self::UpstreamNotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured"),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let detail = self.to_string();
        let mut trace_id = None;
        let message = if status.is_server_error() {
            // This runs inside the request's OpenTelemetry context, so the
            // server span gets the exception event and ERROR status. Without
            // telemetry the current span is a no-op and this costs nothing.
            let cx = opentelemetry::Context::current();
            let span = cx.span();
            span.add_event(
                "exception",
                vec![
                    opentelemetry::KeyValue::new("exception.type", code),
                    opentelemetry::KeyValue::new("exception.message", detail.clone()),
                ],
            );
            span.set_status(Status::error(detail.clone()));
            let sc = span.span_context();
            trace_id = sc.is_valid().then(|| sc.trace_id().to_string());
            // The details (driver text, SQL, upstream URL) go to the log only, with the trace
            // id that the client also gets, so a report can be matched to its cause.
            tracing::error!(error.code = code, error.message = %detail, trace_id = trace_id.as_deref().unwrap_or(""), "request failed");
            generic_message(code).to_owned()
        } else {
            detail
        };
        let fields = match &self {
            Self::Validation(f) => Some(f.as_slice()),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code, message, fields, trace_id } };
        let mut resp = (status, axum::Json(body)).into_response();
        if code == "database_busy" {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_message_names_every_field() {
        let e = ApiError::Validation(vec![FieldError::new("rating", "x"), FieldError::new("author", "y")]);
        assert_eq!(e.to_string(), "validation failed for: rating, author");
        assert_eq!(e.status_and_code().0, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[tokio::test]
    async fn server_errors_carry_no_driver_text_and_data_errors_are_4xx() {
        use http_body_util::BodyExt as _;
        let body = |r: Response| async move {
            let b = r.into_body().collect().await.expect("body").to_bytes();
            String::from_utf8_lossy(&b).into_owned()
        };
        let e = ApiError::Database(sqlx::Error::Protocol("SELECT secret FROM reviews: bad packet".into()));
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = body(r).await;
        assert!(!text.contains("SELECT") && !text.contains("packet"), "{text}");
        assert!(text.contains("database_unavailable"), "{text}");

        let e = ApiError::Upstream("GET http://10.0.0.7:8000/api/v1/reviews: connection refused".into());
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let text = body(r).await;
        assert!(!text.contains("10.0.0.7"), "the upstream URL stays in the logs: {text}");

        let e = ApiError::Database(sqlx::Error::ColumnNotFound("x".into()));
        assert_eq!(e.status_and_code(), (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"));

        let e = ApiError::Write(crate::writer::WriteError::QueueFull(std::time::Duration::from_secs(5)));
        let r = e.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
    }

    #[tokio::test]
    async fn a_constraint_violation_is_a_4xx_not_a_retryable_503() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new().connect("sqlite::memory:").await.expect("sqlite");
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, r INTEGER NOT NULL CHECK (r BETWEEN 1 AND 5))")
            .execute(&pool)
            .await
            .expect("create");
        let check = sqlx::query("INSERT INTO t (id, r) VALUES (1, 42)").execute(&pool).await.expect_err("check");
        assert_eq!(ApiError::Database(check).status_and_code(), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_data"));
        sqlx::query("INSERT INTO t (id, r) VALUES (1, 3)").execute(&pool).await.expect("insert");
        let dup = sqlx::query("INSERT INTO t (id, r) VALUES (1, 3)").execute(&pool).await.expect_err("unique");
        assert_eq!(ApiError::Database(dup).status_and_code(), (StatusCode::CONFLICT, "conflict"));
    }
}
