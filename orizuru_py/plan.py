"""Plans: the queue's logic written once, for the blocking and the asyncio API.

A plan is a generator that yields the requests it needs (``Call``, ``Batch``,
``Load``, ``Pause``, ``Exclusive``) and is sent back each reply, or thrown the
exception the request raised. It never touches a socket, a thread or an event
loop. ``Driver`` performs the requests with a blocking client, ``AsyncDriver``
(in ``orizuru_py.asyncio``) with an asyncio one; ``blocking``/``awaiting`` turn a
plan method into the public method of each API. This is the sans-I/O design of
h11 and wsproto: one copy of every rule, two thin ways to do the I/O.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import attrs
from redis.exceptions import NoScriptError

if TYPE_CHECKING:
    from .scripts import Script

T = TypeVar("T")
P = ParamSpec("P")


@attrs.frozen
class Call:
    """One command; the reply is its result."""

    args: tuple[Any, ...]


@attrs.frozen
class Batch:
    """Commands sent in one round trip (a pipeline; ``transaction``: inside MULTI/EXEC).
    The reply is the list of results, an error in the place of a command that failed."""

    calls: tuple[tuple[Any, ...], ...]
    transaction: bool = False


@attrs.frozen
class Load:
    """Load a script (on every primary of a cluster)."""

    script: Script


@attrs.frozen
class Pause:
    """Wait ``seconds``, or less once the owner is closed."""

    seconds: float


@attrs.frozen
class Exclusive:
    """Run ``plan`` holding the owner's lock (one take at a time; close waits for it)."""

    plan: Plan[Any]


Op = Call | Batch | Load | Pause | Exclusive
Plan = Generator[Op, Any, T]


def script(s: Script, keys: Sequence[str | bytes], argv: Sequence[Any] = ()) -> Plan[Any]:
    """Run a script by its SHA, loading it first where the server does not know it."""
    try:
        return (yield Call(s.args(keys, argv)))
    except NoScriptError:
        yield Load(s)
        return (yield Call(s.args(keys, argv)))


def batch(calls: Sequence[tuple[Any, ...]], scripts: Sequence[Script] = ()) -> Plan[list[Any]]:
    """Send ``calls`` in one round trip. Where a server did not know one of ``scripts``
    (NOSCRIPT: that call did nothing), load them and resend only those calls."""
    replies: list[Any] = yield Batch(tuple(calls))
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        for s in scripts:
            yield Load(s)
        again = yield Batch(tuple(calls[i] for i in missing))
        for i, reply in zip(missing, again, strict=True):
            replies[i] = reply
    return replies


def raise_any(replies: list[Any]) -> list[Any]:
    """The replies of a ``Batch``, or the first error among them raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


class Driver:
    """Performs plans with a blocking redis-py client, one request at a time."""

    def __init__(self, r: Any) -> None:
        self.r = r
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def run(self, plan: Generator[Any, Any, T]) -> T:
        """Perform each request of ``plan`` and hand it the reply (or the error) until it
        returns. The hot path of every call: one loop, no allocation per request."""
        send, throw, perform = plan.send, plan.throw, self._perform
        try:
            op = send(None)
            while True:
                try:
                    reply = perform(op)
                except Exception as exc:
                    op = throw(exc)
                else:
                    op = send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _perform(self, op: Any) -> Any:
        kind = type(op)
        if kind is Call:
            return self.r.execute_command(*op.args)
        if kind is Batch:
            pipe = self.r.pipeline(transaction=op.transaction)
            for args in op.calls:
                pipe.execute_command(*args)
            return pipe.execute(raise_on_error=False)
        if kind is Load:
            return self.r.script_load(op.script.source)
        if kind is Pause:
            return self.closed.wait(op.seconds)
        with self.lock:
            return self.run(op.plan)


class HasDriver(Protocol):
    @property
    def _driver(self) -> Any: ...


S = TypeVar("S", bound=HasDriver)


def blocking(plan: Callable[Concatenate[S, P], Plan[T]]) -> Callable[Concatenate[S, P], T]:
    """The blocking public method of a plan method (``ack = blocking(GuardCore._ack)``)."""

    @functools.wraps(plan)
    def method(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._driver.run(plan(self, *args, **kwargs))  # type: ignore[no-any-return]

    method.__name__ = method.__qualname__ = plan.__name__.lstrip("_")
    return cast("Callable[Concatenate[S, P], T]", method)


def awaiting(
    plan: Callable[Concatenate[S, P], Plan[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The asyncio public method of a plan method (``ack = awaiting(GuardCore._ack)``)."""

    @functools.wraps(plan)
    async def method(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._driver.run(plan(self, *args, **kwargs))  # type: ignore[no-any-return]

    method.__name__ = method.__qualname__ = plan.__name__.lstrip("_")
    return cast("Callable[Concatenate[S, P], Coroutine[Any, Any, T]]", method)
