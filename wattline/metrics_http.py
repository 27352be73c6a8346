"""/metrics and /healthz over stdlib HTTP on a daemon thread, for any Wattline process.

The consumer (ingest/metrics.py) and the gateway (edge/metrics.py) each pass a function
that renders their Prometheus text and one that names a health problem ("" when healthy).
Each request calls them as they are, so scraping never blocks the work being measured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


class MetricsHTTP:
    """Serve `render()` on /metrics and `problem()` on /healthz (503 with the reason)."""

    def __init__(
        self, host: str, port: int, render: Callable[[], str], problem: Callable[[], str]
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, render(), PROMETHEUS_TEXT)
                elif self.path == "/healthz":
                    reason = problem()
                    self._send(503 if reason else 200, (reason or "ok") + "\n", "text/plain")
                else:
                    self._send(404, "not found\n", "text/plain")

            def _send(self, status: int, body: str, kind: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return None  # one line per scrape would be noise

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = host, int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics and /healthz", self.host, self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
