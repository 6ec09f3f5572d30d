"""An OTLP/HTTP trace receiver on 127.0.0.1 for tests: the collector's ``/v1/traces``, decoded
with ``opentelemetry-proto``, every span kept with its service's name."""
from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATUS_ERROR = 2
"""``Status.STATUS_CODE_ERROR`` in the OTLP protobuf."""


@dataclass
class ReceivedSpan:
    """One exported span, its ids as lowercase hex like a ``traceparent``."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    links: list[tuple[str, str]]
    status_code: int
    attributes: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status_code == STATUS_ERROR


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def decode(body: bytes) -> list[ReceivedSpan]:
    """Every span of one ``ExportTraceServiceRequest``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    found = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(ReceivedSpan(
                    service=resource.get("service.name", ""), name=span.name, trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex(), kind=span.kind,
                    links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    status_code=span.status.code, attributes={kv.key: _value(kv.value) for kv in span.attributes}))
    return found


class OtlpReceiver:
    """Accepts ``POST /v1/traces``; with ``decode_spans=False`` it only counts requests and bytes."""

    def __init__(self, decode_spans: bool = True):
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.bytes = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                spans = decode(body) if decode_spans and self.path == "/v1/traces" else []
                with receiver.lock:
                    receiver.requests += 1
                    receiver.bytes += len(body)
                    receiver.spans.extend(spans)
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def in_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, check, timeout_s: float = 30.0):
        """``check(self)``'s first truthy value, polled until ``timeout_s``; the last value otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = check(self)
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
