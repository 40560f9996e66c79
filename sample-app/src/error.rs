//! The one JSON error shape every endpoint answers with, and the mapping from
//! internal failures to HTTP status codes.
//!
//! Shape: `{"error": {"code": "...", "message": "...", "fields": [{"field": "...", "message": "..."}]}}`
//! (`fields` only for validation failures), so clients parse one structure.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::{Status, TraceContextExt};
use serde::Serialize;

/// One failing input field, as reported in a 422 response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Name of the failing field (`rating`, `entity_type`, `limit`, ...).
    pub field: String,
    /// Human readable reason.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

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
}

impl ApiError {
    /// HTTP status and machine readable code for this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            Self::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Database(_) | Self::Write(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Self::UpstreamNotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "upstream_not_configured"),
            Self::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_failed"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        if status.is_server_error() {
            // This runs inside the request's OpenTelemetry context, so the
            // server span gets the exception event and ERROR status. Without
            // telemetry the current span is a no-op and this costs nothing.
            let cx = opentelemetry::Context::current();
            let span = cx.span();
            span.add_event(
                "exception",
                vec![
                    opentelemetry::KeyValue::new("exception.type", code),
                    opentelemetry::KeyValue::new("exception.message", message.clone()),
                ],
            );
            span.set_status(Status::error(message.clone()));
            tracing::error!(error.code = code, error.message = %message, "request failed");
        }
        let fields = match &self {
            Self::Validation(f) => Some(f.as_slice()),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code, message, fields } };
        (status, axum::Json(body)).into_response()
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
}
