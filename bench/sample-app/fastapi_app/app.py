"""The reviews API built the seed's way, as the benchmark's peer.

FastAPI + uvicorn + OpenTelemetry (opentelemetry-instrumentation-fastapi,
OTLP/gRPC exporters, honouring the same OTEL_* variables) +
prometheus-fastapi-instrumentator, over SQLite. Same endpoints, validation
rules, JSON shapes and read cache (TTL) as the Rust service, so both do the
same work per request.

Run: DATABASE_PATH=/tmp/r.db ENABLE_TELEMETRY=true uvicorn app:app --port 8001
"""

import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from typing import Optional

from fastapi import FastAPI, HTTPException, Query, Response
from pydantic import BaseModel, Field
from prometheus_fastapi_instrumentator import Instrumentator

DATABASE_PATH = os.environ.get("DATABASE_PATH", "reviews.db")
CACHE_TTL = float(os.environ.get("CACHE_TTL_SECONDS", "5"))
ENABLE_TELEMETRY = os.environ.get("ENABLE_TELEMETRY", "false").lower() in ("1", "true", "yes")

app = FastAPI(title="reviews (FastAPI peer)")

if ENABLE_TELEMETRY:
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "reviews-fastapi")})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(insecure=True))])
    )
    FastAPIInstrumentor.instrument_app(app)
    tracer = trace.get_tracer("reviews-fastapi")
    meter = metrics.get_meter("reviews-fastapi")
    created_counter = meter.create_counter("reviews.created")
    rating_hist = meter.create_histogram("reviews.rating")
else:
    tracer = None
    created_counter = None
    rating_hist = None

Instrumentator(should_instrument_requests_inprogress=True).instrument(app).expose(app)

_local = threading.local()
SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5), title TEXT, comment TEXT,
    author TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)
"""
COLUMNS = "id, entity_type, entity_id, rating, title, comment, author, created_at, updated_at"


def db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DATABASE_PATH, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # same durability as the Rust service
        conn.execute(SCHEMA)
        _local.conn = conn
    return conn


def query(sql: str, args=()):
    if tracer is None:
        return db().execute(sql, args)
    with tracer.start_as_current_span(f"{sql.split()[0]} reviews", kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute("db.system", "sqlite")
        span.set_attribute("db.statement", sql)
        return db().execute(sql, args)


_cache: dict = {}
_cache_lock = threading.Lock()


def cache_get(key):
    with _cache_lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_TTL:
            return hit[1]
    return None


def cache_put(key, value):
    with _cache_lock:
        _cache[key] = (time.monotonic(), value)


def cache_clear():
    with _cache_lock:
        _cache.clear()


class ReviewIn(BaseModel):
    entity_type: str = Field(min_length=1, max_length=64)
    entity_id: str = Field(min_length=1, max_length=128)
    rating: int = Field(ge=1, le=5)
    title: Optional[str] = Field(default=None, max_length=200)
    comment: Optional[str] = Field(default=None, max_length=5000)
    author: str = Field(min_length=1, max_length=100)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/ready")
def ready():
    query("SELECT 1")
    return {"status": "ready", "database": "sqlite"}


@app.get("/api/v1/reviews")
def list_reviews(
    entity_type: Optional[str] = None,
    entity_id: Optional[str] = None,
    rating: Optional[int] = Query(default=None, ge=1, le=5),
    min_rating: Optional[int] = Query(default=None, ge=1, le=5),
    limit: int = Query(default=20, ge=1, le=100),
    offset: int = Query(default=0, ge=0),
):
    key = ("list", entity_type, entity_id, rating, min_rating, limit, offset)
    hit = cache_get(key)
    if hit is not None:
        return hit
    conds, args = [], []
    for col, op, val in (("entity_type", "=", entity_type), ("entity_id", "=", entity_id),
                         ("rating", "=", rating), ("rating", ">=", min_rating)):
        if val is not None:
            conds.append(f"{col} {op} ?")
            args.append(val)
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    total = query(f"SELECT COUNT(*) FROM reviews{where}", args).fetchone()[0]
    rows = query(f"SELECT {COLUMNS} FROM reviews{where} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    page = {"items": [dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}
    cache_put(key, page)
    return page


@app.post("/api/v1/reviews", status_code=201)
def create_review(review: ReviewIn, response: Response):
    ts = now()
    conn = db()
    row = query(
        f"INSERT INTO reviews (entity_type, entity_id, rating, title, comment, author, created_at, updated_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {COLUMNS}",
        (review.entity_type, review.entity_id, review.rating, review.title, review.comment, review.author, ts, ts),
    ).fetchone()
    conn.commit()
    cache_clear()
    if created_counter is not None:
        created_counter.add(1, {"entity_type": review.entity_type})
        rating_hist.record(review.rating, {"entity_type": review.entity_type})
    response.headers["Location"] = f"/api/v1/reviews/{row['id']}"
    return dict(row)


@app.get("/api/v1/reviews/{review_id}")
def get_review(review_id: int):
    hit = cache_get(("one", review_id))
    if hit is not None:
        return hit
    row = query(f"SELECT {COLUMNS} FROM reviews WHERE id = ?", (review_id,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"review {review_id} not found")
    cache_put(("one", review_id), dict(row))
    return dict(row)


@app.put("/api/v1/reviews/{review_id}")
def update_review(review_id: int, review: ReviewIn):
    conn = db()
    row = query(
        f"UPDATE reviews SET entity_type = ?, entity_id = ?, rating = ?, title = ?, comment = ?, author = ?, "
        f"updated_at = ? WHERE id = ? RETURNING {COLUMNS}",
        (review.entity_type, review.entity_id, review.rating, review.title, review.comment, review.author, now(), review_id),
    ).fetchone()
    conn.commit()
    if row is None:
        raise HTTPException(status_code=404, detail=f"review {review_id} not found")
    cache_clear()
    return dict(row)


@app.delete("/api/v1/reviews/{review_id}", status_code=204)
def delete_review(review_id: int):
    conn = db()
    cur = query("DELETE FROM reviews WHERE id = ?", (review_id,))
    conn.commit()
    if cur.rowcount == 0:
        raise HTTPException(status_code=404, detail=f"review {review_id} not found")
    cache_clear()
    return Response(status_code=204)
