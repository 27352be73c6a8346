"""`wattline serve`: the report's pages live from the catalog, read-only.

A small Starlette app under uvicorn, in its own process: it opens the catalog read-only
for each build (DuckDB allows any number of read-only sessions beside writers of the
Parquet lake), so it never blocks the consumer or the jobs, and builds a page at most
once per `serve.cache_s` per (site, period, language). Loopback by default; anywhere
else it needs a token, and can serve TLS.

    /                 the report (query: site, from, to, language, static)
    /healthz          200 when the catalog opens
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from report import ReportError, build
from warehouse.catalog import connect_readonly
from wattline.config import Settings

log = logging.getLogger(__name__)
COOKIE = "wattline_token"


def make_app(settings: Settings) -> Starlette:
    s = settings.serve
    cache: dict[tuple[Any, ...], tuple[float, str]] = {}
    lock = threading.Lock()

    def allowed(request: Request) -> bool:
        if not s.token:
            return True
        offered = (
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            or request.query_params.get("token", "")
            or request.cookies.get(COOKIE, "")
        )
        return hmac.compare_digest(offered.encode(), s.token.encode())

    def page(request: Request) -> Response:
        if not allowed(request):
            return PlainTextResponse("unauthorised: send serve.token", status_code=401)
        q = request.query_params
        try:
            first = date.fromisoformat(q["from"]) if q.get("from") else None
            last = date.fromisoformat(q["to"]) if q.get("to") else None
        except ValueError as exc:
            return PlainTextResponse(f"bad date: {exc}", status_code=400)
        language = q.get("language", s.language)
        static = q.get("static", "") in ("1", "true")
        key = (q.get("site"), first, last, language, static)
        now = time.monotonic()
        with lock:
            hit = cache.get(key)
            if hit is None or now - hit[0] > s.cache_s:
                try:
                    html = build(
                        settings.catalog.path,
                        q.get("site"),
                        first,
                        last,
                        language,
                        s.devices,
                        settings.analytics,
                        static,
                    )
                except ReportError as exc:
                    return PlainTextResponse(str(exc), status_code=404)
                hit = (now, html)
                cache[key] = hit
        response = HTMLResponse(hit[1], headers={"Cache-Control": "no-store"})
        if s.token and q.get("token"):
            response.set_cookie(COOKIE, s.token, httponly=True, samesite="strict")
        return response

    def healthz(request: Request) -> Response:
        try:
            connect_readonly(settings.catalog.path).close()
        except Exception as exc:
            return PlainTextResponse(f"catalog not readable: {exc}", status_code=503)
        return PlainTextResponse("ok")

    # Sync endpoints run in Starlette's thread pool, so a build never stalls the loop.
    return Starlette(routes=[Route("/", page), Route("/healthz", healthz)])


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    s = settings.serve
    bind_host = host or s.host
    if bind_host not in ("127.0.0.1", "::1", "localhost") and not s.token:
        print(f"serve: {bind_host} is not loopback; set serve.token first", flush=True)
        return 2
    config = uvicorn.Config(
        make_app(settings),
        host=bind_host,
        port=s.port if port is None else port,
        log_level="info",
        ssl_certfile=s.cert_file or None,
        ssl_keyfile=s.key_file or None,
        access_log=False,
    )
    scheme = "https" if s.cert_file else "http"
    print(f"serve: {scheme}://{bind_host}:{config.port}/ (read-only; Ctrl-C stops)", flush=True)
    uvicorn.Server(config).run()
    return 0
