"""Send traces, metrics and logs with the official OpenTelemetry Python SDK over OTLP.

Usage: send_otlp.py grpc|http ENDPOINT N
Emits N spans (with an attribute and an event), one counter with N attribute sets (N data points)
and N log records, then flushes and shuts everything down.
"""
import logging
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

protocol, endpoint, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    kw = dict(endpoint=endpoint, insecure=True)
    span_exp, metric_exp, log_exp = OTLPSpanExporter(**kw), OTLPMetricExporter(**kw), OTLPLogExporter(**kw)
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    span_exp = OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    metric_exp = OTLPMetricExporter(endpoint=endpoint + "/v1/metrics")
    log_exp = OTLPLogExporter(endpoint=endpoint + "/v1/logs")

resource = Resource.create({"service.name": f"py-{protocol}"})

tp = TracerProvider(resource=resource)
tp.add_span_processor(BatchSpanProcessor(span_exp))
tracer = tp.get_tracer("interop")
for i in range(n):
    with tracer.start_as_current_span(f"py-span-{i}") as span:
        span.set_attribute("iteration", i)
        span.add_event("checkpoint", {"i": i})

reader = PeriodicExportingMetricReader(metric_exp, export_interval_millis=3_600_000)
mp = MeterProvider(resource=resource, metric_readers=[reader])
counter = mp.get_meter("interop").create_counter("py.requests")
for i in range(n):
    counter.add(1, {"route": f"/r/{i}"})

lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(BatchLogRecordProcessor(log_exp))
logger = logging.getLogger("interop")
logger.propagate = False
logger.addHandler(LoggingHandler(logger_provider=lp))
logger.setLevel(logging.INFO)
for i in range(n):
    logger.info("py-log-%d", i)

ok = tp.force_flush() and lp.force_flush() and mp.force_flush()
tp.shutdown()
mp.shutdown()
lp.shutdown()
sys.exit(0 if ok else 1)
