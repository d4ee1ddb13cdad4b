"""The dashboard's Starlette app: two pages, their assets, and a JSON API under /api/.

The pages are one static shell; ``static/app.js`` draws them from the API and polls
it, so the API is the whole contract and scripts can use it too. Whoever can push
chooses queue names and payloads, so every handler's work is bounded by what it
answers, not by what was pushed: the overview comes a page of queues at a time, a
message list reads the first bytes of each message, and the history keeps the totals
and the busiest queues. Redis calls, formatting and JSON encoding all run in
Starlette's thread pool, never on the event loop.

A queue's name is always the last part of a path (``/api/messages/NAME``), so no name,
whatever slashes it holds, can reach another queue's route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import redis
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from ...keys import registry, validate_name
from ...peeking import MAX_OFFSET
from ...queue import Queue
from ...schedule import Schedule
from .actions import ACTIONS
from .documents import PREVIEW_BYTES, message_json
from .history import History, Totals
from .security import CSRF_HEADER, Gate, SecurityHeaders, allowed_hosts

PAGE = 50  # messages per page of a list
SCHEDULES_SHOWN = 100  # periodic entries listed (the soonest due), of however many
QUEUES_PAGE, MAX_QUEUES_PAGE = 100, 500  # queues per page of the overview: default, most
_CHUNK = 1000  # queues per round trip when the sampler reads them all
STATIC = Path(__file__).parent / "static"
log = logging.getLogger(__name__)


@attrs.frozen
class Settings:
    """How a dashboard runs; ``command`` fills it from the command line."""

    prefix: str = "orizuru"
    read_only: bool = False
    password: str | None = None
    host: str = "127.0.0.1"  # where it is bound
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides loopback and ``host``
    refresh_s: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.2))
    sample_s: float = attrs.field(default=10.0, validator=attrs.validators.ge(0.05))
    history_size: int = 360  # samples kept: an hour at the default 10 s
    history_queues: int = 100  # queues whose own series are kept (the busiest)


class Dashboard:
    """The state behind the app: the client, a CSRF token, the history ring."""

    def __init__(self, r: Any, settings: Settings) -> None:
        self.r = r
        self.settings = settings
        self.csrf_token = secrets.token_urlsafe(32)
        self.history = History(settings.history_size, settings.history_queues)
        self._shell = (STATIC / "index.html").read_text(encoding="utf-8")

    def queue(self, name: str) -> Queue:
        try:
            return Queue(self.r, name, prefix=self.settings.prefix)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    def known(self, name: str) -> Queue:
        """The queue if the registry knows it (a typo shows a 404, not an empty queue)."""
        q = self.queue(name)
        if not self.r.sismember(registry(self.settings.prefix), name):
            raise HTTPException(
                404, f"no queue named {name!r} under prefix {self.settings.prefix!r}"
            )
        return q

    def overview(self, offset: int = 0, limit: int = QUEUES_PAGE) -> dict[str, Any]:
        """One page of the known queues, by name, and the totals over all of them: of
        this page when it holds them all, else of the history's last sample."""
        names = Queue.all(self.r, self.settings.prefix)
        stats = Queue.stats_of(self.r, names[offset : offset + limit], self.settings.prefix)
        totals: Totals | None = Totals.of(stats)
        totals_ms: int | None = int(time.time() * 1000)
        if len(stats) < len(names):
            totals_ms, totals = self.history.latest() or (None, None)
        return {
            "queues": [s.to_json() for s in stats],
            "offset": offset,
            "limit": limit,
            "total": len(names),
            "more": offset + limit < len(names),
            "totals": totals and totals.to_json(),
            "totals_ms": totals_ms,
        }

    def schedules(self) -> dict[str, Any]:
        """The periodic entries due soonest, without their payloads, how many there are,
        and the server's time, which their due times are reckoned on: what the overview
        shows."""
        entries = Schedule(self.r, prefix=self.settings.prefix).list(payloads=False)
        seconds, micros = self.r.time()
        return {
            "schedules": [e.to_json() for e in entries[:SCHEDULES_SHOWN]],
            "total": len(entries),
            "now_ms": int(seconds) * 1000 + int(micros) // 1000,
        }

    def messages(self, name: str, where: str, offset: int) -> dict[str, Any]:
        q = self.queue(name)
        # One more than a page tells whether there is a next one, in the same calls.
        found = q.peek(PAGE + 1, where, offset, max_bytes=PREVIEW_BYTES)
        return {
            "queue": q.name,
            "where": where,
            "offset": offset,
            "limit": PAGE,
            "more": len(found) > PAGE,
            "messages": [message_json(m) for m in found[:PAGE]],
        }

    def sample(self) -> None:
        """Add a sample of every known queue, read ``_CHUNK`` queues per round trip."""
        prefix = self.settings.prefix
        names = Queue.all(self.r, prefix)

        def chunks() -> Iterator[Any]:
            for i in range(0, len(names), _CHUNK):
                yield from Queue.stats_of(self.r, names[i : i + _CHUNK], prefix)

        self.history.add(int(time.time() * 1000), chunks())

    async def sampling(self) -> None:
        """Add a sample every ``sample_s``. A failure leaves a gap and is logged (once
        per run of failures), and sampling goes on: nothing a pusher writes stops it."""
        failing = False
        while True:
            try:
                await run_in_threadpool(self.sample)
                failing = False
            except Exception:
                if not failing:
                    log.exception("dashboard: cannot sample the queues (will keep trying)")
                failing = True
            await asyncio.sleep(self.settings.sample_s)

    def shell(self, page: str, queue: str | None = None) -> HTMLResponse:
        config = {
            "page": page,
            "queue": queue,
            "prefix": self.settings.prefix,
            "read_only": self.settings.read_only,
            "refresh_s": self.settings.refresh_s,
            "csrf_header": CSRF_HEADER,
            "csrf_token": None if self.settings.read_only else self.csrf_token,
        }
        # A JSON data block: escape what could end the <script> element early.
        text = json.dumps(config)
        for char in "<>&":
            text = text.replace(char, f"\\u{ord(char):04x}")
        return HTMLResponse(self._shell.replace("{{config}}", text))


async def _json(work: Callable[[], Any]) -> Response:
    """``work()``'s document as a response, computed and encoded in the thread pool."""
    return await run_in_threadpool(lambda: JSONResponse(work()))


def _routes(d: Dashboard) -> list[Route | Mount]:
    async def overview_page(request: Request) -> Response:
        return d.shell("overview")

    async def queue_page(request: Request) -> Response:
        try:
            name = validate_name(_name(request))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return d.shell("queue", name)

    async def queues(request: Request) -> Response:
        offset = _int(request, "offset", 0, MAX_OFFSET)
        limit = _int(request, "limit", QUEUES_PAGE, MAX_QUEUES_PAGE, low=1)
        return await _json(lambda: d.overview(offset, limit))

    async def one_queue(request: Request) -> Response:
        name = _name(request)
        return await _json(lambda: d.known(name).stats().to_json())

    async def messages(request: Request) -> Response:
        name, where = _name(request), request.query_params.get("where", "waiting")
        offset = _int(request, "offset", 0, MAX_OFFSET)
        return await _json(lambda: d.messages(name, where, offset))

    async def schedules(request: Request) -> Response:
        return await _json(d.schedules)

    async def history(request: Request) -> Response:
        queue = request.query_params.get("queue")
        doc = {
            "queue": queue,
            "now_ms": int(time.time() * 1000),
            "interval_s": d.settings.sample_s,
            "size": d.settings.history_size,
            "tracked": d.settings.history_queues,
        }
        return await _json(lambda: {**doc, **d.history.series(queue)})

    async def csrf(request: Request) -> Response:
        if d.settings.read_only:
            raise HTTPException(403, "the dashboard is read-only")
        return JSONResponse({"header": CSRF_HEADER, "token": d.csrf_token})

    async def act(request: Request) -> Response:
        action = ACTIONS.get(request.path_params["action"])
        if action is None:
            raise HTTPException(404, f"no action {request.path_params['action']!r}")
        body, name = await _body(request), _name(request)
        return await _json(lambda: action(d.known(name), body))

    return [
        Route("/", overview_page),
        Route("/queues/{name:path}", queue_page),
        Route("/api/queues", queues),
        Route("/api/history", history),
        Route("/api/schedules", schedules),
        Route("/api/csrf", csrf),
        Route("/api/queues/{name:path}", one_queue),
        Route("/api/messages/{name:path}", messages),
        Route("/api/actions/{action}/{name:path}", act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def _name(request: Request) -> str:
    return str(request.path_params["name"])


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def _int(request: Request, what: str, default: int, high: int, low: int = 0) -> int:
    """Query parameter ``what`` as an int from ``low`` to ``high``, else a 400."""
    text = request.query_params.get(what)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 12 and low <= int(text) <= high):
        raise HTTPException(400, f"{what} must be an integer from {low} to {high}")
    return int(text)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _bad_value(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _redis_down(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"Redis: {exc}"}, status_code=503)


class _App(Starlette):
    """Starlette, with the security headers outside everything, its 500s included."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def create_app(r: Any, settings: Settings | None = None) -> Starlette:
    """The dashboard over client ``r`` (a Redis, RedisCluster or Sentinel master)."""
    settings = settings or Settings()
    d = Dashboard(r, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(d.sampling())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    gate = Middleware(
        Gate,
        csrf_token=d.csrf_token,
        read_only=settings.read_only,
        password=settings.password,
        hosts=allowed_hosts(settings.host, settings.allowed_hosts),
    )
    app = _App(
        routes=_routes(d),
        middleware=[gate],
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            ValueError: _bad_value,
            redis.RedisError: _redis_down,
        },
    )
    app.state.dashboard = d
    return app
