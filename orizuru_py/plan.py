"""Plans: the queue's logic written once, for the blocking and the asyncio API.

A plan is a coroutine (an ``async def``) that awaits requests: ``Call``, ``Batch``,
``Load``, ``Pause``, ``Exclusive``. Awaiting a request hands it to whoever drives
the plan, who sends back the reply or throws in the exception it raised; a plan
never touches a socket, a thread or an event loop. ``Driver`` performs the
requests with a blocking client, ``AsyncDriver`` (in ``orizuru_py.asyncio``) with
an asyncio one; ``blocking``/``awaiting`` turn a plan method into the public
method of each API. This is the sans-I/O design of h11 and wsproto: one copy of
every rule, two thin ways to do the I/O. Being coroutines, plans get Python's own
checks for free: one that is created and never run is reported ("coroutine ...
was never awaited"), and tracebacks name each plan.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import attrs
from redis.exceptions import ResponseError

from .client import Commands, own_pool, packer
from .connections import KeptConnection, closed

T = TypeVar("T")
P = ParamSpec("P")

Plan = Coroutine[Any, Any, T]


class Request:
    """Something a plan awaits: the driver performs it and the await returns the reply."""

    __slots__ = ()

    def __await__(self) -> Generator[Request, Any, Any]:
        return (yield self)


@attrs.frozen
class Call(Request):
    """One command; the reply is its result."""

    args: tuple[Any, ...]


@attrs.frozen
class Batch(Request):
    """Commands sent in one round trip (a pipeline; ``transaction``: inside MULTI/EXEC).
    The reply is the list of results, an error in the place of a command that failed."""

    calls: tuple[tuple[Any, ...], ...]
    transaction: bool = False


@attrs.frozen
class Load(Request):
    """Load a script's ``source`` (on every primary of a cluster)."""

    source: str


@attrs.frozen
class Pause(Request):
    """Wait ``seconds``, or less once the owner is closed; the reply: whether it is."""

    seconds: float


@attrs.frozen
class Exclusive(Request):
    """Run ``plan`` holding a lock: the driver's own (one take at a time; close waits for
    it), or ``lock``, one its ``new_lock`` made."""

    plan: Plan[Any]
    lock: Any = None


def raise_any(replies: list[Any]) -> list[Any]:
    """The replies of a ``Batch``, or the first error among them raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


class UnknownRequest(TypeError):
    """A plan awaited something its driver does not perform: a bug, never thrown back
    into the plan (which could mistake it for a failed command)."""


class PlanMoved(Exception):
    """The plan awaiting this request goes on in another thread (its own was abandoned:
    a handler there ran past its time limit). The driver lets go of the plan, never
    throwing into it, and its thread ends."""


def unknown(op: object) -> UnknownRequest:
    return UnknownRequest(f"a plan awaited {op!r}, which is no request this driver performs")


class Driver:
    """Performs plans with a blocking redis-py client, one request at a time."""

    def __init__(self, r: Commands) -> None:
        self.r = r
        self.lock = threading.Lock()
        self.closed = threading.Event()
        # A plain client with a pool: Calls and Batches by its own write (``_send_batch``);
        # others (a cluster, a single connection, a subclass, an instrumented client)
        # through redis-py's own paths.
        pool = own_pool(r)
        self._kept = KeptConnection(self, pool, pool.release) if pool is not None else None
        self._pack = packer(pool)

    def run(self, plan: Plan[T], reply: Any = None) -> T:
        """Perform each request of ``plan`` and hand it the reply (or the error) until it
        returns (``reply``: the reply to the request it awaits, resuming a plan another
        thread let go of). The hot path of every call: one loop, no allocation per request."""
        send, throw, perform = plan.send, plan.throw, self._perform
        try:
            op = send(reply)
            while True:
                try:
                    reply = perform(op)
                except UnknownRequest:
                    plan.close()
                    raise
                except PlanMoved:
                    raise
                except BaseException as exc:  # KeyboardInterrupt too: the plan tidies up
                    op = throw(exc)
                else:
                    op = send(reply)
        except StopIteration as stop:
            return cast(T, stop.value)

    def _perform(self, op: Any) -> Any:
        kind = type(op)
        if kind is Call:
            if self._kept is None:
                return self.r.execute_command(*op.args)
            (reply,) = self._send_batch(self._kept, (op.args,))
            if isinstance(reply, ResponseError):
                raise reply
            return reply
        if kind is Batch:
            if self._kept is not None and not op.transaction:
                return self._send_batch(self._kept, op.calls)
            pipe = self.r.pipeline(transaction=op.transaction)
            for args in op.calls:
                pipe.execute_command(*args)
            return pipe.execute(raise_on_error=False)
        if kind is Load:
            return self.r.script_load(op.source)
        if kind is Pause:
            return self.closed.wait(op.seconds)
        if kind is Exclusive:
            with op.lock or self.lock:
                return self.run(op.plan)
        raise unknown(op)

    def _send_batch(self, kept: KeptConnection, calls: tuple[tuple[Any, ...], ...]) -> list[Any]:
        """What redis-py's pipeline does for a batch outside a transaction (the commands
        in one write, a reply or an error for each, the whole sent again as the client's
        retry policy says when the connection fails) without the pipeline object, which
        cost a two-command ack more client CPU than a script run; for one command, what
        ``execute_command`` does, without the hooks it runs for each command."""
        r: Any = self.r  # redis-py's parse_response is untyped
        conn, look = kept.take()
        if conn is None:
            conn = kept.pool.get_connection()
        elif look and closed(conn):
            conn.disconnect()  # connects again on the write

        def send() -> list[Any]:
            conn.send_packed_command(self._pack(conn, calls))
            replies: list[Any] = []
            try:
                for args in calls:
                    try:
                        replies.append(r.parse_response(conn, args[0]))
                    except ResponseError as exc:
                        replies.append(exc)
            except BaseException:  # the rest of the replies are still on the socket
                conn.disconnect()
                raise
            return replies

        try:
            return cast(list[Any], conn.retry.call_with_retry(send, lambda _: conn.disconnect()))
        finally:
            if not kept.put(conn):
                kept.pool.release(conn)

    @staticmethod
    def new_lock() -> threading.Lock:
        """A lock for ``Exclusive`` shared by the plans of several drivers of this API."""
        return threading.Lock()


class Runs(Protocol):
    """A driver of either API: ``run`` returns the plan's result (blocking) or an awaitable."""

    def run(self, plan: Plan[Any]) -> Any: ...


class HasDriver(Protocol):
    @property
    def _driver(self) -> Runs: ...


S = TypeVar("S", bound=HasDriver)


def _named(method: Callable[..., Any], plan: Callable[..., Any]) -> None:
    """Give ``method`` the public name of ``plan`` (``_ack`` -> ``ack``), in tracebacks too."""
    name = plan.__name__.lstrip("_")
    qualname = plan.__qualname__.rpartition(".")[0] + "." + name
    method.__name__, method.__qualname__ = name, qualname.lstrip(".")
    method.__code__ = method.__code__.replace(co_name=name, co_qualname=method.__qualname__)


def blocking(plan: Callable[Concatenate[S, P], Plan[T]]) -> Callable[Concatenate[S, P], T]:
    """The blocking public method of a plan method (``ack = blocking(GuardCore._ack)``)."""

    @functools.wraps(plan)
    def method(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, self._driver.run(plan(self, *args, **kwargs)))

    _named(method, plan)
    return cast("Callable[Concatenate[S, P], T]", method)


def awaiting(
    plan: Callable[Concatenate[S, P], Plan[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The asyncio public method of a plan method (``ack = awaiting(GuardCore._ack)``)."""

    @functools.wraps(plan)
    async def method(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return cast(T, await self._driver.run(plan(self, *args, **kwargs)))

    _named(method, plan)
    return cast("Callable[Concatenate[S, P], Coroutine[Any, Any, T]]", method)
