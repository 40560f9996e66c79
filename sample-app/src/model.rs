//! The review domain model and its pure validation rules: request bodies,
//! list query parameters, and timestamp formatting.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// Largest page a client may ask for; keeps responses and queries bounded.
pub const MAX_LIMIT: i64 = 100;
/// Page size when the client does not say.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest `offset`: a page costs O(offset) rows skipped in the database, so an unbounded offset
/// is a cheap way to make every request scan the table. Deeper pages need filters.
pub const MAX_OFFSET: i64 = 10_000;

/// A stored review as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Review {
    /// Database id.
    pub id: i64,
    /// Kind of thing reviewed (`product`, `movie`, ...).
    pub entity_type: String,
    /// Id of the reviewed thing within its type.
    pub entity_id: String,
    /// Stars, 1 to 5.
    pub rating: i32,
    /// Optional headline.
    pub title: Option<String>,
    /// Optional free text.
    pub comment: Option<String>,
    /// Who wrote it.
    pub author: String,
    /// RFC 3339 UTC creation time.
    pub created_at: String,
    /// RFC 3339 UTC time of the last update.
    pub updated_at: String,
}

/// A validated create/replace request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewInput {
    /// See [`Review::entity_type`].
    pub entity_type: String,
    /// See [`Review::entity_id`].
    pub entity_id: String,
    /// See [`Review::rating`].
    pub rating: i32,
    /// See [`Review::title`].
    pub title: Option<String>,
    /// See [`Review::comment`].
    pub comment: Option<String>,
    /// See [`Review::author`].
    pub author: String,
}

/// One page of reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The reviews on this page, newest first.
    pub items: Vec<Review>,
    /// How many reviews match the filters in total.
    pub total: i64,
    /// Page size used.
    pub limit: i64,
    /// Offset used.
    pub offset: i64,
}

/// Validated list filters and pagination.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only reviews of this entity type.
    pub entity_type: Option<String>,
    /// Only reviews of this entity.
    pub entity_id: Option<String>,
    /// Only reviews with exactly this rating.
    pub rating: Option<i32>,
    /// Only reviews with at least this rating.
    pub min_rating: Option<i32>,
    /// Page size, 1..=[`MAX_LIMIT`].
    pub limit: i64,
    /// Rows to skip, >= 0.
    pub offset: i64,
}

impl ListQuery {
    /// Stable cache key: equal filters give equal keys whatever the
    /// parameter order in the URL.
    pub fn cache_key(&self) -> String {
        format!(
            "t={:?}|e={:?}|r={:?}|m={:?}|l={}|o={}",
            self.entity_type, self.entity_id, self.rating, self.min_rating, self.limit, self.offset
        )
    }
}

fn required_string(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> String {
    match obj.get(field) {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(field, "field required"));
            String::new()
        }
        Some(Value::String(s)) => {
            let t = s.trim();
            if t.is_empty() {
                errors.push(FieldError::new(field, "must not be empty"));
            } else if t.chars().count() > max {
                errors.push(FieldError::new(field, format!("must be at most {max} characters")));
            } else if has_control(t, false) {
                errors.push(FieldError::new(field, CONTROL_MESSAGE));
            }
            t.to_owned()
        }
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string"));
            String::new()
        }
    }
}

fn optional_string(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match obj.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            if s.chars().count() > max {
                errors.push(FieldError::new(field, format!("must be at most {max} characters")));
            } else if has_control(s, true) {
                errors.push(FieldError::new(field, CONTROL_MESSAGE));
            }
            Some(s.clone())
        }
        Some(_) => {
            errors.push(FieldError::new(field, "must be a string"));
            None
        }
    }
}

/// Validates a create/replace body, reporting every failing field at once
/// (not just the first) so clients can fix a form in one round trip.
pub fn validate_review(body: &Value) -> Result<ReviewInput, Vec<FieldError>> {
    let Some(obj) = body.as_object() else {
        return Err(vec![FieldError::new("body", "must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let entity_type = required_string(obj, "entity_type", 64, &mut errors);
    let entity_id = required_string(obj, "entity_id", 128, &mut errors);
    let author = required_string(obj, "author", 100, &mut errors);
    let title = optional_string(obj, "title", 200, &mut errors);
    let comment = optional_string(obj, "comment", 5000, &mut errors);
    let rating = match obj.get("rating") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("rating", "field required"));
            0
        }
        Some(v) => match v.as_i64() {
            Some(r @ 1..=5) => r as i32,
            Some(_) => {
                errors.push(FieldError::new("rating", "must be between 1 and 5"));
                0
            }
            None => {
                errors.push(FieldError::new("rating", "must be an integer"));
                0
            }
        },
    };
    if errors.is_empty() {
        Ok(ReviewInput { entity_type, entity_id, rating, title, comment, author })
    } else {
        Err(errors)
    }
}

fn parse_int(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match raw.trim().parse::<i64>() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(FieldError::new(field, "must be an integer"));
            None
        }
    }
}

const CONTROL_MESSAGE: &str = "must not contain control characters";

/// Control characters (NUL included: PostgreSQL refuses it in text, and it truncates strings in
/// C clients; the rest corrupt logs and terminals). Free text (`title`, `comment`) may contain
/// line breaks and tabs.
fn has_control(s: &str, free_text: bool) -> bool {
    s.chars().any(|c| c.is_control() && !(free_text && matches!(c, '\n' | '\r' | '\t')))
}

/// Validates list query parameters (`entity_type`, `entity_id`, `rating`,
/// `min_rating`, `limit`, `offset`); unknown parameters are ignored.
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, Vec<FieldError>> {
    let mut q = ListQuery { limit: DEFAULT_LIMIT, ..ListQuery::default() };
    let mut errors = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "entity_type" | "entity_id" => {
                if v.is_empty() || v.len() > 128 {
                    errors.push(FieldError::new(k, "must be 1 to 128 characters"));
                } else if has_control(v, false) {
                    errors.push(FieldError::new(k, CONTROL_MESSAGE));
                } else if k == "entity_type" {
                    q.entity_type = Some(v.clone());
                } else {
                    q.entity_id = Some(v.clone());
                }
            }
            "rating" | "min_rating" => {
                if let Some(r) = parse_int(k, v, &mut errors) {
                    if (1..=5).contains(&r) {
                        if k == "rating" {
                            q.rating = Some(r as i32);
                        } else {
                            q.min_rating = Some(r as i32);
                        }
                    } else {
                        errors.push(FieldError::new(k, "must be between 1 and 5"));
                    }
                }
            }
            "limit" => {
                if let Some(l) = parse_int(k, v, &mut errors) {
                    if (1..=MAX_LIMIT).contains(&l) {
                        q.limit = l;
                    } else {
                        errors.push(FieldError::new(k, format!("must be between 1 and {MAX_LIMIT}")));
                    }
                }
            }
            "offset" => {
                if let Some(o) = parse_int(k, v, &mut errors) {
                    if (0..=MAX_OFFSET).contains(&o) {
                        q.offset = o;
                    } else {
                        errors.push(FieldError::new(k, format!("must be between 0 and {MAX_OFFSET}")));
                    }
                }
            }
            _ => {}
        }
    }
    if errors.is_empty() { Ok(q) } else { Err(errors) }
}

/// Parses a path id; ids are positive integers.
pub fn parse_id(raw: &str) -> Result<i64, Vec<FieldError>> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(vec![FieldError::new("id", "must be a positive integer")]),
    }
}

/// Formats seconds + milliseconds since the Unix epoch as RFC 3339 UTC
/// (`2024-01-02T03:04:05.678Z`). Hand-rolled (civil-from-days) to avoid a
/// date library for one format.
pub fn format_rfc3339(unix_millis: i64) -> String {
    let secs = unix_millis.div_euclid(1000);
    let millis = unix_millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, (sod % 3600) / 60, sod % 60)
}

/// Current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let millis =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    format_rfc3339(millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn valid_review_is_accepted_and_trimmed() {
        let r = validate_review(&json!({
            "entity_type": " product ", "entity_id": "42", "rating": 5, "author": "ann", "title": "great"
        }))
        .expect("valid");
        assert_eq!(r.entity_type, "product");
        assert_eq!(r.rating, 5);
        assert_eq!(r.comment, None);
    }

    #[test]
    fn every_failing_field_is_reported() {
        let errs = validate_review(&json!({"entity_type": "", "rating": 9, "title": 3})).expect_err("must fail");
        let names: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, vec!["entity_type", "entity_id", "author", "title", "rating"]);
    }

    #[test]
    fn control_characters_and_nul_are_refused() {
        let errs = validate_review(&json!({
            "entity_type": "a\u{0}b", "entity_id": "b\u{1b}[31m", "rating": 3, "author": "ann",
            "title": "t\u{7f}", "comment": "line one\nline two\ttab"
        }))
        .expect_err("must fail");
        let names: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, vec!["entity_type", "entity_id", "title"], "line breaks and tabs stay allowed in comments");
        assert!(errs.iter().all(|e| e.message == CONTROL_MESSAGE));
        let errs = parse_list_query(&pairs(&[("entity_id", "x\u{0}")])).expect_err("NUL in a filter");
        assert_eq!(errs[0].field, "entity_id");
    }

    #[test]
    fn offset_is_capped() {
        let q = parse_list_query(&pairs(&[("offset", "10000")])).expect("at the cap");
        assert_eq!(q.offset, MAX_OFFSET);
        let errs = parse_list_query(&pairs(&[("offset", "1000000000")])).expect_err("10^9");
        assert_eq!(errs, vec![FieldError::new("offset", "must be between 0 and 10000")]);
    }

    #[test]
    fn rating_must_be_integer() {
        let errs = validate_review(&json!({"entity_type": "a", "entity_id": "b", "author": "c", "rating": "5"}))
            .expect_err("must fail");
        assert_eq!(errs, vec![FieldError::new("rating", "must be an integer")]);
        let errs = validate_review(&json!({"entity_type": "a", "entity_id": "b", "author": "c", "rating": 4.5}))
            .expect_err("must fail");
        assert_eq!(errs[0].field, "rating");
    }

    #[test]
    fn non_object_body_is_rejected() {
        assert_eq!(validate_review(&json!([1])).expect_err("must fail")[0].field, "body");
    }

    #[test]
    fn list_query_defaults_and_filters() {
        let q = parse_list_query(&[]).expect("ok");
        assert_eq!((q.limit, q.offset), (DEFAULT_LIMIT, 0));
        let q = parse_list_query(&pairs(&[("entity_type", "book"), ("rating", "4"), ("limit", "5"), ("offset", "10")]))
            .expect("ok");
        assert_eq!(q.entity_type.as_deref(), Some("book"));
        assert_eq!((q.rating, q.limit, q.offset), (Some(4), 5, 10));
    }

    #[test]
    fn list_query_rejects_bad_values_by_name() {
        let errs =
            parse_list_query(&pairs(&[("limit", "1000"), ("rating", "x"), ("offset", "-1"), ("min_rating", "0")]))
                .expect_err("must fail");
        let names: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(names, vec!["limit", "rating", "offset", "min_rating"]);
    }

    #[test]
    fn cache_key_ignores_parameter_order() {
        let a = parse_list_query(&pairs(&[("rating", "4"), ("limit", "5")])).expect("ok");
        let b = parse_list_query(&pairs(&[("limit", "5"), ("rating", "4")])).expect("ok");
        assert_eq!(a.cache_key(), b.cache_key());
    }

    #[test]
    fn ids_must_be_positive_integers() {
        assert_eq!(parse_id("7"), Ok(7));
        assert!(parse_id("0").is_err());
        assert!(parse_id("abc").is_err());
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
