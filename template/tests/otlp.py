"""An OTLP/HTTP receiver of spans, standing in for a collector: tests read what was exported.

`python -m tests.otlp SPANS_FILE` runs one on its own: it prints its endpoint, then appends each
span it receives to SPANS_FILE as a JSON line, for tests that serve the app in other processes.
"""

import gzip
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, its ids in W3C hex."""

    service: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    failed: bool
    status_message: str


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one OTLP/HTTP protobuf export request."""
    request = ExportTraceServiceRequest.FromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {item.key: _value(item.value) for item in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        service=str(resource.get("service.name", "")),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind),
                        attributes={item.key: _value(item.value) for item in span.attributes},
                        failed=span.status.code == span.status.STATUS_CODE_ERROR,
                        status_message=span.status.message,
                    )
                )
    return spans


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


class OTLPReceiver:
    """A server on a free loopback port taking `POST /v1/traces`, keeping what it decodes."""

    def __init__(self, on_spans: Callable[[list[ReceivedSpan]], None] | None = None) -> None:
        """Listen now; serve once entered. `on_spans` also gets each request's spans."""
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._on_spans = on_spans
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.received(decode(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass  # quiet: the test's output is the test's

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self, spans: list[ReceivedSpan]) -> None:
        """Keep `spans`."""
        with self._lock:
            self.spans.extend(spans)
        if self._on_spans is not None:
            self._on_spans(spans)

    def wait_for(
        self, done: Callable[[list[ReceivedSpan]], bool], timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """The spans received once `done` holds of them; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                spans = list(self.spans)
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout:g} s, the spans received were {spans}")
            time.sleep(0.05)

    def __enter__(self) -> Self:
        """Serve from a thread."""
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def main(spans_file: str) -> None:
    """Receive until killed, appending each span to `spans_file` as a JSON line."""
    path = Path(spans_file)

    def append(spans: list[ReceivedSpan]) -> None:
        with path.open("a") as lines:
            lines.writelines(json.dumps(asdict(span)) + "\n" for span in spans)

    with OTLPReceiver(append) as receiver:
        print(receiver.endpoint, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1])
