"""What every API request passes through: bearer-token auth, admission control, metrics.

Admission control keeps the server responsive under overload: at most ``max_concurrent``
generations run (vLLM batches them) and at most ``max_queue`` wait; anything beyond gets
503 with Retry-After at once instead of piling up until every client times out.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Self

from fastapi import HTTPException, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from app.settings import APISettings, UISettings
from indexing.errors import Unavailable

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320)


class Overloaded(Unavailable):
    """Too many requests are waiting; the client should retry later (503 with Retry-After)."""

    error_type = "overloaded"
    label = "overloaded"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("the server is busy; retry later")
        self.headers = {"Retry-After": str(retry_after_s)}


def check_binding(ui: UISettings, api: APISettings) -> None:
    """Refuse to serve beyond loopback without API keys and UI logins (anyone on the
    network could use it)."""
    from app.settings import SettingsError

    if ui.host in LOOPBACK:
        return
    missing = []
    if not api.keys:
        missing.append("no API key (set api.keys, env RAGTUNE_API__KEYS='[\"a-long-secret\"]')")
    if not ui.users:
        missing.append(
            'no UI login (set ui.users, env RAGTUNE_UI__USERS=\'{"alice": "a-long-secret"}\')'
        )
    if missing:
        raise SettingsError(
            f"ui.host is {ui.host!r} (not loopback) but there is {' and '.join(missing)}; "
            "configure them or bind to 127.0.0.1"
        )


def ui_login(users: dict[str, str]):
    """Gradio's ``auth`` callable for ``ui.users`` (None: no login), comparing in constant time."""
    if not users:
        return None
    known = {name: password.encode() for name, password in users.items()}

    def check(name: str, password: str) -> bool:
        expected = known.get(name)
        return expected is not None and hmac.compare_digest(password.encode(), expected)

    return check


class Auth:
    """FastAPI dependency: a valid ``Authorization: Bearer <key>`` when keys are configured."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = [k.encode() for k in keys]

    def __call__(self, request: Request) -> None:
        if not self.keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(
                401,
                "missing API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not any(hmac.compare_digest(token.strip().encode(), key) for key in self.keys):
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})


class Metrics:
    """Prometheus metrics of one app instance (its own registry: no process-global state)."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only clutter dashboards
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ragtune_requests", "HTTP API requests", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "ragtune_request_latency_seconds",
            "Request latency",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "ragtune_time_to_first_token_seconds",
            "Time to the first streamed token",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "ragtune_completion_tokens", "Generated tokens (stream deltas)", ["model"], registry=r
        )
        self.errors = Counter(
            "ragtune_errors", "Failed API requests by reason", ["reason"], registry=r
        )
        self.queue_depth = Gauge(
            "ragtune_queue_depth", "Requests waiting for a generation slot", registry=r
        )
        self.in_flight = Gauge("ragtune_generations_in_flight", "Generations running", registry=r)
        self.rejected = Counter(
            "ragtune_overload_rejections", "Requests refused with 503", registry=r
        )

    def observe(self, path: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        self.requests.labels(path, str(status)).inc()
        self.latency.labels(path).observe(seconds)


class Admission:
    """A bounded waiting room in front of the generator.

    ``enter()`` decides at once (503 or a place in the queue), before any response starts;
    the returned ticket is then held for the whole generation, streaming included.
    """

    def __init__(
        self, max_concurrent: int, max_queue: int, metrics: Metrics, retry_after_s: int = 5
    ) -> None:
        self.slots = asyncio.Semaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.waiting = 0
        self.running = 0
        self.metrics = metrics

    def enter(self) -> _Ticket:
        """A place in the queue; raises ``Overloaded`` when every slot and queue place is taken."""
        if self.running + self.waiting >= self.max_concurrent + self.max_queue:
            self.metrics.rejected.inc()
            raise Overloaded(self.retry_after_s)
        self.waiting += 1
        self.metrics.queue_depth.set(self.waiting)
        return _Ticket(self)


class _Ticket:
    """Waits for a generation slot on entry, frees it on exit (exactly once)."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.state = "queued"

    async def __aenter__(self) -> Self:
        a = self.admission
        try:
            await a.slots.acquire()
        except BaseException:  # cancelled while queued (client gone)
            self.release()
            raise
        a.waiting -= 1
        a.metrics.queue_depth.set(a.waiting)
        self.state = "running"
        a.running += 1
        a.metrics.in_flight.set(a.running)
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give the place back; safe to call more than once, and for a ticket never entered."""
        a = self.admission
        if self.state == "running":
            a.running -= 1
            a.metrics.in_flight.set(a.running)
            a.slots.release()
        elif self.state == "queued":
            a.waiting -= 1
            a.metrics.queue_depth.set(a.waiting)
        self.state = "done"


def timer() -> float:
    """Monotonic seconds (one place to fake in tests)."""
    return time.monotonic()
