//! Group commit for SQLite writes.
//!
//! SQLite has one writer, and with one transaction per request every
//! insert pays a full commit (WAL append, lock dance) on its own. Here the
//! request handlers put their already-validated writes on a bounded queue;
//! one writer task takes up to `max_batch` pending writes at a time, runs
//! them in ONE transaction and answers each request with its own result.
//! Under load many requests share a commit; with a single request in
//! flight the batch is just that request, so latency does not grow.
//!
//! Failure semantics: a statement that fails (constraint, missing row) only
//! fails its own request: SQLite rolls back just that statement and the
//! transaction goes on. If the commit itself fails, nothing in the batch was
//! stored and every request of the batch gets an error; no request is ever
//! told "stored" for a write that was not committed.
//!
//! The queue is bounded: when it is full, `submit` waits for room
//! (backpressure on the HTTP request), it never drops a write.

use crate::model::{Review, ReviewInput};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

/// Default bound of the queue of writes waiting for the writer task.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Default largest number of writes committed in one transaction.
pub const DEFAULT_MAX_BATCH: usize = 128;

/// Why a queued write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// This write's own statement failed (constraint, I/O, ...).
    #[error(transparent)]
    Statement(#[from] sqlx::Error),
    /// The statement ran but the batch's transaction could not be opened
    /// or committed, so nothing in the batch was stored.
    #[error("committing the write batch failed: {0}")]
    Batch(String),
    /// The writer task has stopped (the service is shutting down).
    #[error("the database writer has stopped")]
    Closed,
    /// The queue stayed full for the whole [`QUEUE_WAIT`]: the database is not keeping up.
    /// Answered 503 with `Retry-After`; the write was not queued.
    #[error("the write queue stayed full for {0:?}")]
    QueueFull(std::time::Duration),
}

/// How long a write waits for room in a full queue before it is refused (503 + Retry-After).
/// Long enough to ride out a burst, short enough that clients are not left hanging while the
/// database is stuck.
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One write, validated before it is queued.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Insert a review created at `now`.
    Create {
        /// The review.
        input: ReviewInput,
        /// `created_at` and `updated_at`.
        now: String,
    },
    /// Replace review `id`.
    Update {
        /// Which review.
        id: i64,
        /// The new content.
        input: ReviewInput,
        /// `updated_at`.
        now: String,
    },
    /// Delete review `id`.
    Delete {
        /// Which review.
        id: i64,
    },
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// The stored review, with its new id.
    Created(Review),
    /// The replaced review; `None` when it did not exist.
    Updated(Option<Review>),
    /// Whether a review was deleted.
    Deleted(bool),
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

/// Handle to the writer task; cheap to clone. The task ends when every
/// handle is dropped, after finishing the writes already queued.
#[derive(Debug, Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    queue_wait: std::time::Duration,
}

/// The statements, kept beside the code that binds them.
pub(crate) const INSERT_SQL: &str = "INSERT INTO reviews (entity_type, entity_id, rating, title, comment, author, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, entity_type, entity_id, rating, title, comment, author, created_at, updated_at";
pub(crate) const UPDATE_SQL: &str = "UPDATE reviews SET entity_type = $1, entity_id = $2, rating = $3, title = $4, comment = $5, author = $6, updated_at = $7 WHERE id = $8 RETURNING id, entity_type, entity_id, rating, title, comment, author, created_at, updated_at";
pub(crate) const DELETE_SQL: &str = "DELETE FROM reviews WHERE id = $1 RETURNING id";

impl Writer {
    /// Spawns the writer task on the current tokio runtime. `pool` should
    /// be the one-connection write pool.
    pub fn spawn(pool: SqlitePool, queue_capacity: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        tokio::spawn(run(pool, rx, max_batch.max(1)));
        Self { tx, queue_wait: QUEUE_WAIT }
    }

    /// Replaces [`QUEUE_WAIT`].
    pub fn with_queue_wait(mut self, wait: std::time::Duration) -> Self {
        self.queue_wait = wait;
        self
    }

    /// Queues `op` (waiting up to the queue wait for room when the queue is
    /// full) and waits for its result.
    pub async fn submit(&self, op: WriteOp) -> Result<WriteOutcome, WriteError> {
        let (reply, result) = oneshot::channel();
        let permit = tokio::time::timeout(self.queue_wait, self.tx.reserve())
            .await
            .map_err(|_| WriteError::QueueFull(self.queue_wait))?
            .map_err(|_| WriteError::Closed)?;
        permit.send(Job { op, reply });
        result.await.map_err(|_| WriteError::Closed)?
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    // recv_many waits for at least one job, then takes whatever else is
    // already queued (up to max_batch): no timer, so an idle service
    // commits a lone write at once.
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        commit_batch(&pool, &mut jobs).await;
    }
}

/// Runs `jobs` in one transaction and answers each; leaves `jobs` empty.
async fn commit_batch(pool: &SqlitePool, jobs: &mut Vec<Job>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(WriteError::Batch(msg.clone())));
            }
            return;
        }
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs.iter() {
        results.push(apply(&mut *tx, &job.op).await.map_err(WriteError::from));
    }
    // Answer only after the commit: a request must never see "stored" for
    // a write that a failed commit threw away.
    match tx.commit().await {
        Ok(()) => {
            for (job, r) in jobs.drain(..).zip(results) {
                let _ = job.reply.send(r);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for (job, r) in jobs.drain(..).zip(results) {
                let r = r.and(Err(WriteError::Batch(msg.clone())));
                let _ = job.reply.send(r);
            }
        }
    }
}

/// Runs one write on any sqlx executor: SQLite's writer calls it inside its batch
/// transaction, PostgreSQL on its pool, so both bind the same statements the same way.
pub(crate) async fn apply<'e, DB, E>(executor: E, op: &WriteOp) -> Result<WriteOutcome, sqlx::Error>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i32: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Review: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    match op {
        WriteOp::Create { input, now } => sqlx::query_as::<DB, Review>(INSERT_SQL)
            .bind(input.entity_type.clone())
            .bind(input.entity_id.clone())
            .bind(input.rating)
            .bind(input.title.clone())
            .bind(input.comment.clone())
            .bind(input.author.clone())
            .bind(now.clone())
            .bind(now.clone())
            .fetch_one(executor)
            .await
            .map(WriteOutcome::Created),
        WriteOp::Update { id, input, now } => sqlx::query_as::<DB, Review>(UPDATE_SQL)
            .bind(input.entity_type.clone())
            .bind(input.entity_id.clone())
            .bind(input.rating)
            .bind(input.title.clone())
            .bind(input.comment.clone())
            .bind(input.author.clone())
            .bind(now.clone())
            .bind(*id)
            .fetch_optional(executor)
            .await
            .map(WriteOutcome::Updated),
        // RETURNING tells whether a row went away without a backend-specific result type.
        WriteOp::Delete { id } => sqlx::query_scalar::<DB, i64>(DELETE_SQL)
            .bind(*id)
            .fetch_optional(executor)
            .await
            .map(|deleted| WriteOutcome::Deleted(deleted.is_some())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    async fn pool() -> SqlitePool {
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.expect("sqlite");
        sqlx::migrate!("./migrations/sqlite").run(&pool).await.expect("migrate");
        pool
    }

    fn input(author: &str) -> ReviewInput {
        ReviewInput {
            entity_type: "book".into(),
            entity_id: "b1".into(),
            rating: 4,
            title: None,
            comment: None,
            author: author.into(),
        }
    }

    #[tokio::test]
    async fn each_write_of_a_batch_gets_its_own_result() {
        let pool = pool().await;
        let mut jobs = Vec::new();
        let mut answers = Vec::new();
        let ops = [
            WriteOp::Create { input: input("a"), now: "t0".into() },
            WriteOp::Create { input: input("b"), now: "t0".into() },
            WriteOp::Update { id: 1, input: input("a2"), now: "t1".into() },
            WriteOp::Update { id: 99, input: input("x"), now: "t1".into() },
            WriteOp::Delete { id: 2 },
            WriteOp::Delete { id: 2 },
        ];
        for op in ops {
            let (reply, rx) = oneshot::channel();
            jobs.push(Job { op, reply });
            answers.push(rx);
        }
        commit_batch(&pool, &mut jobs).await;
        assert!(jobs.is_empty());
        let mut got = Vec::new();
        for a in answers {
            got.push(a.await.expect("answered").expect("ok"));
        }
        let WriteOutcome::Created(a) = &got[0] else { panic!("{got:?}") };
        let WriteOutcome::Created(b) = &got[1] else { panic!("{got:?}") };
        assert_eq!((a.id, a.author.as_str(), b.id, b.author.as_str()), (1, "a", 2, "b"));
        let WriteOutcome::Updated(Some(u)) = &got[2] else { panic!("{got:?}") };
        assert_eq!((u.id, u.author.as_str(), u.updated_at.as_str()), (1, "a2", "t1"));
        assert_eq!(got[3], WriteOutcome::Updated(None), "absent row is that item's own answer");
        assert_eq!(got[4], WriteOutcome::Deleted(true));
        assert_eq!(got[5], WriteOutcome::Deleted(false));
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews").fetch_one(&pool).await.expect("count");
        assert_eq!(n, 1, "the batch was committed");
    }

    #[tokio::test]
    async fn a_failing_statement_fails_only_its_request() {
        let pool = pool().await;
        // A CHECK constraint in the schema rejects this rating; validation
        // normally stops it earlier, which is why it is a direct op here.
        let mut bad = input("bad");
        bad.rating = 42;
        let writer = Writer::spawn(pool.clone(), 4, 8);
        let (good, bad, good2) = tokio::join!(
            writer.submit(WriteOp::Create { input: input("a"), now: "t".into() }),
            writer.submit(WriteOp::Create { input: bad, now: "t".into() }),
            writer.submit(WriteOp::Create { input: input("c"), now: "t".into() }),
        );
        assert!(matches!(good, Ok(WriteOutcome::Created(_))), "{good:?}");
        assert!(matches!(bad, Err(WriteError::Statement(_))), "{bad:?}");
        assert!(matches!(good2, Ok(WriteOutcome::Created(_))), "{good2:?}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews").fetch_one(&pool).await.expect("count");
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn closed_pool_answers_every_write_with_an_error() {
        let pool = pool().await;
        let writer = Writer::spawn(pool.clone(), 4, 8);
        pool.close().await;
        let r = writer.submit(WriteOp::Delete { id: 1 }).await;
        assert!(matches!(r, Err(WriteError::Batch(_))), "{r:?}");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_after_the_bounded_wait() {
        let pool = pool().await;
        // Hold the only connection: the writer takes the first job and blocks on it.
        let held = pool.acquire().await.expect("conn");
        let writer = Writer::spawn(pool.clone(), 1, 8).with_queue_wait(std::time::Duration::from_millis(200));
        // Enough submitters that, whatever the writer grabs before blocking, one sits in the
        // queue (capacity 1); those still waiting for room may themselves be refused.
        let background: Vec<_> = (1..=10)
            .map(|id| {
                let w = writer.clone();
                tokio::spawn(async move { w.submit(WriteOp::Delete { id }).await })
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while writer.tx.capacity() != 0 {
            assert!(std::time::Instant::now() < deadline, "queue never filled");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let started = std::time::Instant::now();
        let third = writer.submit(WriteOp::Delete { id: 3 }).await;
        assert!(matches!(third, Err(WriteError::QueueFull(_))), "{third:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        drop(held);
        for b in background {
            let r = b.await.expect("join");
            assert!(matches!(r, Ok(_) | Err(WriteError::QueueFull(_))), "{r:?}");
        }
    }
}
