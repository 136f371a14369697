"""What the HTTP benchmarks share: the WSGI app gunicorn serves (the project's URLs plus a
bare view of the benchmark's) and the closed-loop load generator.

A benchmark module defines ``_urlpatterns()`` and exposes::

    application = http_load.wsgi_application("benchmarks.NAME")
    __getattr__ = http_load.urlconf(_urlpatterns)

and its load process calls ``run(host, port, seconds, concurrency, build, good)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wsgi_application(urlconf: str):
    """Django's WSGI handler with ``urlconf`` as the URLconf, made on the first request."""
    handler = None

    def application(environ, start_response):
        nonlocal handler
        if handler is None:
            from django.conf import settings
            from django.core.wsgi import get_wsgi_application

            handler = get_wsgi_application()
            settings.ROOT_URLCONF = urlconf
        return handler(environ, start_response)

    return application


def urlconf(build: Callable[[], list]):
    """A module ``__getattr__`` giving ``urlpatterns`` when Django resolves the module."""
    def getattr_(name):
        if name == "urlpatterns":
            return build()
        raise AttributeError(name)

    return getattr_


async def request(host: str, port: int, payload: bytes) -> tuple[int, bytes]:
    """One request on its own connection: (status, the whole answer)."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(payload)
    data = await reader.read()
    writer.close()
    status = int(data[9:12]) if data.startswith(b"HTTP/1.") else 0
    return status, data


async def run(host: str, port: int, seconds: float, concurrency: int,
              build: Callable[[], bytes], good: Callable[[int, bytes], bool]) -> dict:
    """``concurrency`` clients sending ``build()`` back to back for ``seconds``."""
    deadline = time.monotonic() + seconds
    counts = {"ok": 0, "bad": 0}
    latencies: list[float] = []

    async def client():
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status, data = await request(host, port, build())
            except OSError:
                status, data = 0, b""
            latencies.append(time.perf_counter() - started)
            counts["ok" if good(status, data) else "bad"] += 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    latencies.sort()

    def percentile(q: float) -> float | None:
        if not latencies:
            return None
        return 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * q))]

    return {"ok": counts["ok"], "bad": counts["bad"], "rps": counts["ok"] / elapsed,
            "p50_ms": percentile(0.5), "p99_ms": percentile(0.99)}
