//! Storage: SQLite (default, a file created and migrated on start) or
//! PostgreSQL (when `DATABASE_URL` starts with `postgres`), behind one
//! type. Every query gets a client span with `db.system` and the
//! statement text; statements are parameterised so they carry no values.

use crate::model::{ListQuery, Page, Review, ReviewInput};
use crate::telemetry::Telemetry;
use crate::writer::{
    DEFAULT_MAX_BATCH, DEFAULT_QUEUE_CAPACITY, DELETE_SQL, INSERT_SQL, UPDATE_SQL, WriteError, WriteOp, WriteOutcome,
    Writer, apply,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `DATABASE_URL` is neither a `sqlite:` nor a `postgres:`/`postgresql:` URL.
    #[error("DATABASE_URL: unsupported scheme in {0:?} (expected sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    /// Connecting failed (bad URL, server down past the connect timeout, auth).
    #[error("DATABASE_URL: cannot connect: {0}")]
    Connect(#[source] sqlx::Error),
    /// Applying the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Debug, Clone)]
enum Pool {
    /// SQLite allows one writer at a time. Writes go through the group
    /// commit [`Writer`] on the one-connection `write` pool instead of
    /// colliding on the file lock (where SQLite's busy handler sleeps and
    /// creates second-long tails), and many share one commit.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        writer: Writer,
    },
    Postgres(PgPool),
}

/// Which backend a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Picks the backend from a `DATABASE_URL`.
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// The semantic-convention `db.system` value.
    pub fn system(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgresql",
        }
    }
}

/// The review store.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    telemetry: Arc<Telemetry>,
}

const SELECT_COLUMNS: &str = "id, entity_type, entity_id, rating, title, comment, author, created_at, updated_at";
const GET_SQL: &str = "SELECT id, entity_type, entity_id, rating, title, comment, author, created_at, updated_at FROM reviews WHERE id = $1";

/// The fixed statements, indexing [`SANITIZED`].
#[derive(Debug, Clone, Copy)]
enum Statement {
    Insert = 0,
    Get = 1,
    Update = 2,
    Delete = 3,
}

/// Sanitised span text of each [`Statement`], computed on first use.
static SANITIZED: std::sync::LazyLock<[Arc<str>; 4]> = std::sync::LazyLock::new(|| {
    [INSERT_SQL, GET_SQL, UPDATE_SQL, DELETE_SQL].map(|sql| Arc::from(sanitize_statement(sql)))
});

/// Builds the list and count statements for `q`; placeholders are numbered
/// in bind order: filters in field order, then limit and offset.
pub fn list_sql(q: &ListQuery) -> (String, String) {
    let mut conds = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if q.entity_type.is_some() {
        conds.push(format!("entity_type = ${}", next()));
    }
    if q.entity_id.is_some() {
        conds.push(format!("entity_id = ${}", next()));
    }
    if q.rating.is_some() {
        conds.push(format!("rating = ${}", next()));
    }
    if q.min_rating.is_some() {
        conds.push(format!("rating >= ${}", next()));
    }
    let where_clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let count = format!("SELECT COUNT(*) FROM reviews{where_clause}");
    let list = format!(
        "SELECT {SELECT_COLUMNS} FROM reviews{where_clause} ORDER BY id DESC LIMIT ${} OFFSET ${}",
        next(),
        next()
    );
    (list, count)
}

/// Replaces string and numeric literals in a statement with `?`, so a span
/// never carries user data even if a statement ever inlines a value.
pub fn sanitize_statement(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut prev_ident = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            // Skip to the closing quote, honouring '' escapes.
            while let Some(d) = chars.next() {
                if d == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        break;
                    }
                }
            }
            out.push('?');
            prev_ident = false;
        } else if c.is_ascii_digit() && !prev_ident {
            while chars.peek().is_some_and(|d| d.is_ascii_digit() || *d == '.') {
                chars.next();
            }
            out.push('?');
        } else {
            prev_ident = c.is_alphanumeric() || c == '_' || c == '$';
            out.push(c);
        }
    }
    out
}

/// Runs `$body` with `$pool` bound to the read pool (same code for both
/// backends: the queries are generic). Writes go through [`Db::write`].
macro_rules! on_pool {
    ($self:expr, read, $pool:ident => $body:expr) => {
        match &$self.pool {
            Pool::Sqlite { read: $pool, .. } => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Default PostgreSQL `statement_timeout`: no query of this service should take this long, and a
/// stuck one must release its pool connection instead of starving every other request.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    /// Opens (creating SQLite files if needed) and migrates the database, with the default
    /// statement timeout.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, DbError> {
        Self::connect_with_statement_timeout(
            url,
            max_connections,
            connect_timeout,
            DEFAULT_STATEMENT_TIMEOUT,
            telemetry,
        )
        .await
    }

    /// [`Db::connect`] with an explicit PostgreSQL `statement_timeout` (set on every pooled
    /// connection; a statement over it fails with SQLSTATE 57014, answered 503). SQLite ignores
    /// it: its statements are local and bounded by `busy_timeout`.
    pub async fn connect_with_statement_timeout(
        url: &str,
        max_connections: u32,
        connect_timeout: Duration,
        statement_timeout: Duration,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, DbError> {
        let backend = Backend::from_url(url)?;
        let pool = match backend {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(DbError::Connect)?
                    .create_if_missing(true)
                    // WAL lets readers run while a write is in progress;
                    // NORMAL sync is WAL's recommended pairing: committed
                    // data survives a process crash, and fsync happens at
                    // checkpoints instead of on every commit.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5));
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(connect_timeout)
                    .connect_with(opts.clone())
                    .await
                    .map_err(DbError::Connect)?;
                sqlx::migrate!("./migrations/sqlite").run(&write).await?;
                // An in-memory database exists per connection, so readers
                // must share the writer's one connection there.
                let read = if url.contains(":memory:") || url.contains("mode=memory") {
                    write.clone()
                } else {
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(connect_timeout)
                        .connect_with(opts.read_only(true))
                        .await
                        .map_err(DbError::Connect)?
                };
                let writer = Writer::spawn(write.clone(), DEFAULT_QUEUE_CAPACITY, DEFAULT_MAX_BATCH);
                Pool::Sqlite { read, write, writer }
            }
            Backend::Postgres => {
                let ms = statement_timeout.as_millis().max(1).to_string();
                let opts = sqlx::postgres::PgConnectOptions::from_str(url)
                    .map_err(DbError::Connect)?
                    .options([("statement_timeout", ms.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(connect_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(DbError::Connect)?;
                sqlx::migrate!("./migrations/postgres").run(&pool).await?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool, backend, telemetry })
    }

    /// Which backend is in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn span(&self, operation: &'static str, sql: &str) -> Option<opentelemetry_sdk::trace::Span> {
        if !self.telemetry.enabled() {
            return None;
        }
        self.span_with(operation, Arc::from(sanitize_statement(sql)))
    }

    /// Span for one of the fixed statements: their sanitised text is
    /// computed once, not per request (it is a character-by-character scan).
    fn static_span(&self, operation: &'static str, sql: Statement) -> Option<opentelemetry_sdk::trace::Span> {
        if !self.telemetry.enabled() {
            return None;
        }
        self.span_with(operation, SANITIZED[sql as usize].clone())
    }

    fn span_with(&self, operation: &'static str, statement: Arc<str>) -> Option<opentelemetry_sdk::trace::Span> {
        let system = self.backend.system();
        self.telemetry.child_span(
            match operation {
                "INSERT" => "INSERT reviews",
                "UPDATE" => "UPDATE reviews",
                "DELETE" => "DELETE reviews",
                _ => "SELECT reviews",
            },
            SpanKind::Client,
            vec![
                KeyValue::new("db.system", system),
                KeyValue::new("db.system.name", system),
                KeyValue::new("db.operation.name", operation),
                KeyValue::new("db.collection.name", "reviews"),
                KeyValue::new("db.statement", statement.clone()),
                KeyValue::new("db.query.text", statement),
            ],
        )
    }

    fn finish<T, E: std::error::Error>(span: Option<opentelemetry_sdk::trace::Span>, r: Result<T, E>) -> Result<T, E> {
        if let (Some(mut s), Err(e)) = (span, &r) {
            use opentelemetry::trace::Span as _;
            s.record_error(e);
            s.set_status(Status::error(e.to_string()));
        }
        r
    }

    /// `SELECT 1`: is the database reachable?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, read, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
    }

    /// PostgreSQL's `statement_timeout` as a pooled connection sees it (`None` on SQLite).
    pub async fn statement_timeout(&self) -> Result<Option<String>, sqlx::Error> {
        match &self.pool {
            Pool::Postgres(p) => sqlx::query_scalar::<_, String>("SHOW statement_timeout").fetch_one(p).await.map(Some),
            Pool::Sqlite { .. } => Ok(None),
        }
    }

    /// Inserts a review.
    pub async fn create(&self, input: &ReviewInput, now: &str) -> Result<Review, WriteError> {
        let span = self.static_span("INSERT", Statement::Insert);
        let r = self.write(WriteOp::Create { input: input.clone(), now: now.to_owned() }).await.and_then(|o| match o {
            WriteOutcome::Created(r) => Ok(r),
            other => Err(unexpected(other)),
        });
        Self::finish(span, r)
    }

    /// One review by id.
    pub async fn get(&self, id: i64) -> Result<Option<Review>, sqlx::Error> {
        let span = self.static_span("SELECT", Statement::Get);
        let r = on_pool!(self, read, p => sqlx::query_as::<_, Review>(GET_SQL).bind(id).fetch_optional(p).await);
        Self::finish(span, r)
    }

    /// Replaces a review; `None` when absent.
    pub async fn update(&self, id: i64, input: &ReviewInput, now: &str) -> Result<Option<Review>, WriteError> {
        let span = self.static_span("UPDATE", Statement::Update);
        let op = WriteOp::Update { id, input: input.clone(), now: now.to_owned() };
        let r = self.write(op).await.and_then(|o| match o {
            WriteOutcome::Updated(r) => Ok(r),
            other => Err(unexpected(other)),
        });
        Self::finish(span, r)
    }

    /// Deletes a review; `false` when absent.
    pub async fn delete(&self, id: i64) -> Result<bool, WriteError> {
        let span = self.static_span("DELETE", Statement::Delete);
        let r = self.write(WriteOp::Delete { id }).await.and_then(|o| match o {
            WriteOutcome::Deleted(d) => Ok(d),
            other => Err(unexpected(other)),
        });
        Self::finish(span, r)
    }

    /// Runs one write: on SQLite through the group-commit writer, on
    /// PostgreSQL (many concurrent writers, row locks) straight on the pool
    /// in its own transaction.
    async fn write(&self, op: WriteOp) -> Result<WriteOutcome, WriteError> {
        match &self.pool {
            Pool::Sqlite { writer, .. } => writer.submit(op).await,
            Pool::Postgres(p) => Ok(apply(p, &op).await?),
        }
    }

    /// One page of reviews matching the filters, newest first.
    pub async fn list(&self, q: &ListQuery) -> Result<Page, sqlx::Error> {
        // Safe to assert: list_sql only concatenates fixed fragments and
        // numbered placeholders; every value is bound.
        let (list, count) = list_sql(q);
        macro_rules! bind_filters {
            ($query:expr) => {{
                let mut query = $query;
                if let Some(v) = &q.entity_type {
                    query = query.bind(v.clone());
                }
                if let Some(v) = &q.entity_id {
                    query = query.bind(v.clone());
                }
                if let Some(v) = q.rating {
                    query = query.bind(v);
                }
                if let Some(v) = q.min_rating {
                    query = query.bind(v);
                }
                query
            }};
        }
        let span = self.span("SELECT", &count);
        let total = on_pool!(self, read, p => bind_filters!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count.clone()))).fetch_one(p).await);
        let total = Self::finish(span, total)?;
        let span = self.span("SELECT", &list);
        let items = on_pool!(self, read, p => bind_filters!(sqlx::query_as::<_, Review>(sqlx::AssertSqlSafe(list.clone())))
            .bind(q.limit)
            .bind(q.offset)
            .fetch_all(p)
            .await);
        let items = Self::finish(span, items)?;
        Ok(Page { items, total, limit: q.limit, offset: q.offset })
    }

    /// Closes the pool (waits for checked-out connections to return).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite { read, write, .. } => {
                read.close().await;
                write.close().await;
            }
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// The writer answered an operation with another operation's outcome:
/// impossible by construction, reported instead of panicking.
fn unexpected(outcome: WriteOutcome) -> WriteError {
    WriteError::Batch(format!("writer answered with a mismatched outcome: {outcome:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_sql_numbers_placeholders_in_bind_order() {
        let q = ListQuery { entity_type: Some("book".into()), rating: Some(4), limit: 10, ..ListQuery::default() };
        let (list, count) = list_sql(&q);
        assert_eq!(count, "SELECT COUNT(*) FROM reviews WHERE entity_type = $1 AND rating = $2");
        assert!(list.ends_with("WHERE entity_type = $1 AND rating = $2 ORDER BY id DESC LIMIT $3 OFFSET $4"), "{list}");
        let (list, count) = list_sql(&ListQuery::default());
        assert_eq!(count, "SELECT COUNT(*) FROM reviews");
        assert!(list.ends_with("FROM reviews ORDER BY id DESC LIMIT $1 OFFSET $2"), "{list}");
    }

    #[test]
    fn sanitize_replaces_literals_only() {
        assert_eq!(
            sanitize_statement("SELECT * FROM t2 WHERE a = 'it''s' AND b = 42 AND c = $1"),
            "SELECT * FROM t2 WHERE a = ? AND b = ? AND c = $1"
        );
    }

    #[test]
    fn backend_from_url() {
        assert_eq!(Backend::from_url("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgresql://u@h/db").ok(), Some(Backend::Postgres));
        assert!(Backend::from_url("mysql://x").expect_err("must fail").to_string().contains("DATABASE_URL"));
    }
}
