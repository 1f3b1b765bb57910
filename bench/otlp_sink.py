"""An OTLP/HTTP endpoint that takes every export and keeps nothing: the cheapest collector.

`python -m bench.otlp_sink PORT`; the benchmark prices exporting, not decoding.
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink(BaseHTTPRequestHandler):
    """Read each request's body, answer 200 with an empty export response."""

    def do_POST(self) -> None:
        """Take one export."""
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Keep quiet."""


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
