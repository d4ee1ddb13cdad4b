"""Both APIs behind one blocking face, so a contract test is written once and run on each.

``api.Producer(r, queue, ...)`` and the others make the blocking class, or, for
"asyncio", the asyncio class on an asyncio client of the same server, wrapped so that
each call runs on an event loop in a thread (awaited, if it is a coroutine) and the test
waits for it. Guards, lists of guards and ``with``/``for`` work the same way; a task
(``GarbageCollector.start()``, a consumer's heartbeat) looks like the blocking API's
thread (``join``, ``is_alive``). A blocking handler given to the asyncio Worker is run in
the loop's thread pool, as an application would wrap one.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry

import orizuru_py
import orizuru_py.asyncio as aio


class Loop:
    """An event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def cancel_tasks(self) -> None:
        """Cancel what still runs (a call a thread still waits for, a consumer's heartbeat
        left beating): that thread gets CancelledError instead of waiting forever."""
        self.run(_cancel_others())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _cancel_others() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5.0)


def _wrap(loop: Loop, value: Any) -> Any:
    if isinstance(value, aio.MessageGuard | aio.Consumer | aio.Producer | aio.Worker):
        return Blocking(loop, value)
    if isinstance(value, aio.GarbageCollector | aio.Queue):
        return Blocking(loop, value)
    if isinstance(value, asyncio.Task):
        return TaskThread(loop, value)
    if isinstance(value, list):
        return [_wrap(loop, v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, Blocking):
        return value._target
    if isinstance(value, list | tuple):
        return type(value)(_unwrap(v) for v in value)
    return value


class Blocking:
    """An asyncio object's methods, run (and awaited) on the loop and waited for."""

    def __init__(self, loop: Loop, target: Any) -> None:
        object.__setattr__(self, "_loop", loop)
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutine(attr):  # a property awaited (``await q.paused``)
            return _wrap(self._loop, self._loop.run(_awaited(attr)))
        if not callable(attr) or inspect.isclass(attr):
            return _wrap(self._loop, attr)

        def call(*args: Any, **kwargs: Any) -> Any:
            args, kwargs = _unwrap(args), {k: _unwrap(v) for k, v in kwargs.items()}
            return _wrap(self._loop, self._loop.run(_called(attr, *args, **kwargs)))

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __eq__(self, other: object) -> bool:
        return self._target is _unwrap(other)

    def __hash__(self) -> int:
        return id(self._target)

    def __enter__(self) -> Blocking:
        self._loop.run(_awaited(self._target.__aenter__()))
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.run(_awaited(self._target.__aexit__(*exc)))

    def __iter__(self) -> Iterator[Any]:
        messages = self._target.__aiter__()
        while True:
            try:
                yield _wrap(self._loop, self._loop.run(_awaited(messages.__anext__())))
            except StopAsyncIteration:
                return


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _called(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(...)`` on the loop (a plain method may need it: ``start()``, ``stop()``),
    awaited if it gives an awaitable; a task (``start()``'s) is given back, not awaited."""
    result = function(*args, **kwargs)
    if inspect.isawaitable(result) and not isinstance(result, asyncio.Future):
        return await result
    return result


class TaskThread:
    """An asyncio task with the face of the blocking API's thread."""

    def __init__(self, loop: Loop, task: asyncio.Task[Any]) -> None:
        self._loop, self._task = loop, task

    def is_alive(self) -> bool:
        return not self._loop.run(_called(self._task.done))

    def join(self, timeout: float | None = None) -> None:
        self._loop.run(asyncio.wait({self._task}, timeout=timeout))


class Api:
    """The blocking API, or the asyncio one behind a blocking face (``name``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = Loop() if name == "asyncio" else None
        self._clients: dict[int, tuple[redis.Redis, redis.asyncio.Redis]] = {}

    @property
    def is_async(self) -> bool:
        return self._loop is not None

    def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel_tasks()
            for _, client in self._clients.values():
                self._loop.run(client.aclose())
            self._loop.close()

    def client(self, r: Any) -> Any:
        """The client an orizuru class of this API takes for the server of ``r``."""
        if self._loop is None or not isinstance(r, redis.Redis):
            return r
        if id(r) not in self._clients:
            accepted = inspect.signature(redis.asyncio.Redis.__init__).parameters
            kwargs = {
                k: v
                for k, v in r.connection_pool.connection_kwargs.items()
                if k in accepted and k not in ("retry", "redis_connect_func")
            }
            if issubclass(r.connection_pool.connection_class, redis.SSLConnection):
                kwargs["ssl"] = True  # rediss://: its ssl_* options are among the kwargs
            retry = r.connection_pool.connection_kwargs.get("retry")
            if isinstance(retry, redis.retry.Retry):  # as given: NoBackoff, 0 retries, say
                kwargs["retry"] = redis.asyncio.retry.Retry(
                    retry._backoff, retry.get_retries(), retry._supported_errors
                )
            self._clients[id(r)] = (r, redis.asyncio.Redis(**kwargs))  # r: no id reused
        return self._clients[id(r)][1]

    def _make(self, blocking: type, asynchronous: type) -> Callable[..., Any]:
        def make(r: Any, *args: Any, **kwargs: Any) -> Any:
            if self._loop is None:
                return blocking(r, *args, **kwargs)
            return Blocking(self._loop, asynchronous(self.client(r), *args, **kwargs))

        return make

    @property
    def Producer(self) -> Callable[..., Any]:
        return self._make(orizuru_py.Producer, aio.Producer)

    @property
    def Consumer(self) -> Callable[..., Any]:
        return self._make(orizuru_py.Consumer, aio.Consumer)

    @property
    def GarbageCollector(self) -> Callable[..., Any]:
        return self._make(orizuru_py.GarbageCollector, aio.GarbageCollector)

    @property
    def Queue(self) -> QueueClass:
        return QueueClass(self)

    @property
    def Worker(self) -> Callable[..., Any]:
        def make(r: Any, queues: Any, handler: Callable[..., Any], **kwargs: Any) -> Any:
            if self._loop is None:
                return orizuru_py.Worker(r, queues, handler, **kwargs)
            kwargs.setdefault("concurrency", 8)

            async def in_thread(arg: Any) -> Any:
                return await asyncio.to_thread(handler, arg)

            worker = aio.Worker(self.client(r), queues, in_thread, **kwargs)
            return Blocking(self._loop, worker)

        return make


class QueueClass:
    """``api.Queue(r, name)``, and the class's own ``all`` and ``stats_of``, on either API."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def __call__(self, r: Any, *args: Any, **kwargs: Any) -> Any:
        return self._api._make(orizuru_py.Queue, aio.Queue)(r, *args, **kwargs)

    def all(self, r: Any, prefix: str = "orizuru") -> list[str]:
        return self._static("all", r, prefix)  # type: ignore[no-any-return]

    def stats_of(self, r: Any, names: list[str], prefix: str = "orizuru") -> Any:
        return self._static("stats_of", r, names, prefix)

    def _static(self, name: str, r: Any, *args: Any) -> Any:
        api = self._api
        if api._loop is None:
            return getattr(orizuru_py.Queue, name)(r, *args)
        return api._loop.run(getattr(aio.Queue, name)(api.client(r), *args))
