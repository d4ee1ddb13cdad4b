"""The dashboard's Starlette app: two pages, their assets, and a JSON API under /api/.

The pages are one static shell; ``static/app.js`` draws them from the API and polls
it, so the API is the whole contract and scripts can use it too. Every handler does
bounded work through ``Queue``: the overview is ``Queue.all`` plus ``Queue.stats_of``
(three round trips for any number of queues), a message list is one page of ``PAGE``.
Redis calls block, so they run in Starlette's thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
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

from ...keys import registry, validate_name
from ..queue import Queue
from .documents import message_json
from .history import History
from .security import CSRF_HEADER, LOOPBACK_NAMES, Gate, is_loopback

PAGE = 50  # messages per page of a list
STATIC = Path(__file__).parent / "static"
log = logging.getLogger(__name__)


@attrs.frozen
class Settings:
    """How a dashboard runs; ``command`` fills it from the command line."""

    prefix: str = "orizuru"
    read_only: bool = False
    password: str | None = None
    host: str = "127.0.0.1"  # where it is bound: on loopback only loopback names are answered
    refresh_s: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.2))
    sample_s: float = attrs.field(default=10.0, validator=attrs.validators.ge(0.05))
    history_size: int = 360  # samples kept: an hour at the default 10 s


class Dashboard:
    """The state behind the app: the client, a CSRF token, the history ring."""

    def __init__(self, r: Any, settings: Settings) -> None:
        self.r = r
        self.settings = settings
        self.csrf_token = secrets.token_urlsafe(32)
        self.history = History(settings.history_size)
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

    def overview(self) -> dict[str, Any]:
        names = Queue.all(self.r, self.settings.prefix)
        stats = Queue.stats_of(self.r, names, self.settings.prefix)
        return {"queues": [s.to_json() for s in stats]}

    def sample(self) -> None:
        prefix = self.settings.prefix
        stats = Queue.stats_of(self.r, Queue.all(self.r, prefix), prefix)
        self.history.add(int(time.time() * 1000), stats)

    async def sampling(self) -> None:
        """Add a sample every ``sample_s``; a failure leaves a gap and is logged once."""
        failing = False
        while True:
            try:
                await run_in_threadpool(self.sample)
                failing = False
            except redis.RedisError as exc:
                if not failing:
                    log.warning("dashboard: cannot sample the queues: %s", exc)
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


def _name(request: Request) -> str:
    return str(request.path_params["name"])


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
        return JSONResponse(await run_in_threadpool(d.overview))

    async def one_queue(request: Request) -> Response:
        name = _name(request)
        return JSONResponse(await run_in_threadpool(lambda: d.known(name).stats().to_json()))

    async def messages(request: Request) -> Response:
        q = d.queue(_name(request))
        where = request.query_params.get("where", "waiting")
        offset = _int(request.query_params.get("offset", "0"), "offset")
        # One more than a page tells whether there is a next one, in the same round trip.
        found = await run_in_threadpool(q.peek, PAGE + 1, where, offset)
        return JSONResponse(
            {
                "queue": q.name,
                "where": where,
                "offset": offset,
                "limit": PAGE,
                "more": len(found) > PAGE,
                "messages": [message_json(m) for m in found[:PAGE]],
            }
        )

    async def history(request: Request) -> Response:
        queue = request.query_params.get("queue")
        return JSONResponse(
            {
                "queue": queue,
                "now_ms": int(time.time() * 1000),
                "interval_s": d.settings.sample_s,
                "size": d.settings.history_size,
                **d.history.series(queue),
            }
        )

    async def csrf(request: Request) -> Response:
        if d.settings.read_only:
            raise HTTPException(403, "the dashboard is read-only")
        return JSONResponse({"header": CSRF_HEADER, "token": d.csrf_token})

    async def act(request: Request) -> Response:
        action = ACTIONS.get(request.path_params["action"])
        if action is None:
            raise HTTPException(404, f"no action {request.path_params['action']!r}")
        body = await _body(request)
        q = await run_in_threadpool(d.known, _name(request))
        return JSONResponse(await run_in_threadpool(action, q, body))

    return [
        Route("/", overview_page),
        Route("/queues/{name:path}", queue_page),
        Route("/api/queues", queues),
        Route("/api/history", history),
        Route("/api/csrf", csrf),
        Route("/api/queues/{name:path}/messages", messages),
        Route("/api/queues/{name:path}/{action}", act, methods=["POST"]),
        Route("/api/queues/{name:path}", one_queue),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HTTPException(400, f"{what} must be an integer, got {text!r}") from None


def _id(body: dict[str, Any]) -> str:
    message_id = body.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise HTTPException(400, 'the body needs "id": a message id')
    return message_id


def _found(done: bool, what: str) -> None:
    if not done:
        raise HTTPException(404, f"{what} is no longer there (moved or settled meanwhile)")


def _pause(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    q.pause()
    return {"paused": True}


def _resume(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    q.resume()
    return {"paused": False}


def _requeue(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    """Every dead letter back to the queue, or only the one ``id`` names."""
    if "id" not in body:
        revived = q.requeue_dead()
        return {"requeued": int(revived), "garbage": revived.garbage}
    message_id = _id(body)
    _found(q.requeue_one(message_id), f"dead letter {message_id}")
    return {"requeued": 1, "garbage": 0}


def _delete(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    message_id, where = _id(body), body.get("where", "waiting")
    if not isinstance(where, str):
        raise HTTPException(400, '"where" must be a string')
    _found(q.delete(message_id, where), f"message {message_id} ({where})")
    return {"deleted": 1}


def _cancel(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    """True: it will never be delivered; False: a handler has it (its guard is told)."""
    return {"cancelled": q.cancel(_id(body))}


def _purge(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    """Needs ``"confirm": NAME``, so no request purges a queue by accident."""
    if body.get("confirm") != q.name:
        raise HTTPException(400, f'to purge, send "confirm": {json.dumps(q.name)}')
    return {"purged": q.purge(dead=bool(body.get("dead", False)))}


ACTIONS: dict[str, Callable[[Queue, dict[str, Any]], dict[str, Any]]] = {
    "pause": _pause,
    "resume": _resume,
    "requeue": _requeue,
    "delete": _delete,
    "cancel": _cancel,
    "purge": _purge,
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _bad_value(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


async def _redis_down(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"Redis: {exc}"}, status_code=503)


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

    hosts = LOOPBACK_NAMES | {settings.host} if is_loopback(settings.host) else None
    gate = Middleware(
        Gate,
        csrf_token=d.csrf_token,
        read_only=settings.read_only,
        password=settings.password,
        hosts=hosts,
    )
    app = Starlette(
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
