"""The plan machinery: drivers perform what plans await, and refuse what they cannot;
a plan created and never run is reported; tracebacks name the public method."""

from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import traceback

import pytest
import redis
import redis.asyncio

from orizuru_py import AlreadySettled, Consumer, Producer, Queue, QueueKeys, scripts
from orizuru_py.asyncio.driver import AsyncDriver
from orizuru_py.plan import Batch, Call, Driver, UnknownRequest


async def _ping_twice() -> list[bytes]:
    return [await Call(("ECHO", b"a")), await Call(("ECHO", b"b"))]


def test_the_blocking_driver_runs_a_plan_and_returns_its_result(r: redis.Redis) -> None:
    assert Driver(r).run(_ping_twice()) == [b"a", b"b"]


def test_a_command_error_is_thrown_into_the_plan_which_may_handle_it(r: redis.Redis) -> None:
    async def plan() -> str:
        try:
            await Call(("NO-SUCH-COMMAND",))
        except redis.ResponseError:
            return "handled"
        return "not raised"

    assert Driver(r).run(plan()) == "handled"


@pytest.mark.parametrize("single", [False, True], ids=["own write", "pipeline"])
def test_a_batch_answers_each_command_in_its_place_errors_too(
    r: redis.Redis, queue: str, single: bool
) -> None:
    """A plain client's Batch is sent by the driver itself, a single-connection client's
    by its pipeline: the same replies, an error where its command failed, and the
    connection fit for the next request (no reply left on it)."""
    client = redis.Redis(connection_pool=r.connection_pool, single_connection_client=single)
    calls = (("SET", queue, "v"), ("LPUSH", queue, "x"), ("GET", queue), ("HGET", queue, "f"))

    async def plan() -> list[object]:
        return [await Batch(calls), await Call(("ECHO", b"after"))]

    (set_, lpush, get, hget), after = Driver(client).run(plan())
    assert (set_, get, after) == (True, b"v", b"after")
    assert isinstance(lpush, redis.ResponseError) and "WRONGTYPE" in str(lpush)
    assert isinstance(hget, redis.ResponseError)
    assert (Driver(client)._kept is None) is single
    client.delete(queue)
    client.close()


@pytest.mark.parametrize("single", [False, True], ids=["own write", "pipeline"])
def test_the_async_driver_answers_a_batch_and_a_call_in_place_errors_too(
    redis_url: str, queue: str, single: bool
) -> None:
    """The AsyncDriver's own write, as the blocking Driver's: each reply in its place, a
    Call's error raised as its class, the connection fit for the next request."""
    calls = (("SET", queue, "v"), ("LPUSH", queue, "x"), ("GET", queue))

    async def plan() -> list[object]:
        batch = await Batch(calls)
        try:
            await Call(("HGET", queue, "f"))
        except redis.ResponseError as exc:
            return [batch, type(exc), await Call(("ECHO", b"after")), await Call(("DEL", queue))]
        return []

    async def main() -> list[object]:
        client = redis.asyncio.Redis.from_url(redis_url, single_connection_client=single)
        driver = AsyncDriver(client)
        try:
            assert (driver._kept is None) is single
            return await driver.run(plan())
        finally:
            await client.aclose()

    (set_, lpush, get), kind, after, deleted = asyncio.run(main())
    assert (set_, get, kind, after, deleted) == (True, b"v", redis.ResponseError, b"after", 1)
    assert isinstance(lpush, redis.ResponseError) and "WRONGTYPE" in str(lpush)


@pytest.mark.parametrize("single", [False, True], ids=["own write", "execute_command"])
def test_a_call_raises_its_error_by_its_kind_and_a_lost_script_is_loaded_again(
    r: redis.Redis, queue: str, single: bool
) -> None:
    """A plain client's Call goes by the driver's own write too: an error is raised as
    redis-py's own class (NOSCRIPT as NoScriptError, which a script call answers by
    loading its script), and the connection serves the next request. The unknown script
    is one never loaded (a SCRIPT FLUSH would reach the passes sharing the server)."""
    client = redis.Redis(connection_pool=r.connection_pool, single_connection_client=single)
    client.lpush(queue, "x")

    async def wrong_type() -> object:
        try:
            await Call(("HGET", queue, "f"))
        except redis.ResponseError as exc:
            return type(exc), await Call(("ECHO", b"after"))
        return None

    assert Driver(client).run(wrong_type()) == (redis.ResponseError, b"after")
    client.delete(queue)
    keys, consumer = QueueKeys(queue), "c1"
    take = scripts.take(keys, keys.processing(consumer), keys.processing(consumer), consumer,
                        2**40, 1, False)  # fmt: skip
    unknown = scripts.Script("take")  # the same script, with a sha no server knows yet
    unknown.source += f"\n-- {queue}"
    unknown.sha = hashlib.sha1(unknown.source.encode()).hexdigest()
    with pytest.raises(redis.exceptions.NoScriptError):
        Driver(client).run(plan_of(Call(("EVALSHA", unknown.sha, 0))))
    reply = Driver(client).run(scripts.ScriptCall(unknown, take.keys, take.argv).run())
    assert reply[5:] == [] and client.script_exists(unknown.sha) == [True]
    Queue(client, queue).forget()
    client.close()


async def plan_of(request: Call) -> object:
    return await request


def test_a_subclass_or_an_instrumented_client_sees_every_command(
    r: redis.Redis, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drivers write requests themselves only for redis-py's own client: a subclass
    that overrides ``execute_command`` (the dashboard's tests fail a client that way), or a
    tracer that wraps it or the pipeline (as opentelemetry-instrumentation-redis does, with
    ``__wrapped__``), sees every command of ours. Before: their Calls went by unseen."""
    seen: list[str] = []

    class Counting(redis.Redis):
        def execute_command(self, *args: object, **options: object) -> object:
            seen.append(str(args[0]))
            return super().execute_command(*args, **options)

    client = Counting(connection_pool=r.connection_pool)
    producer = Producer(client, queue)
    producer.push("a")  # the first, in a pipeline with the producer's checks
    producer.push("b")
    assert "LPUSH" in seen and Driver(client)._kept is None
    kept = Driver(r)._kept
    assert kept is not None and kept.pool is r.connection_pool

    plain = redis.Redis.execute_command

    @functools.wraps(plain)
    def traced(self: redis.Redis, *args: object, **options: object) -> object:
        seen.append(f"traced {args[0]}")
        return plain(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", traced)
    with Consumer(r, queue) as consumer:
        guard = consumer.next(timeout=1.0)
        assert guard is not None and guard.ack()
    assert "traced EVALSHA" in seen  # the take
    Queue(r, queue).purge()
    Queue(r, queue).forget()
    async_client = redis.asyncio.Redis(connection_pool=None)
    assert AsyncDriver(async_client)._kept is not None
    pipeline = redis.asyncio.client.Pipeline
    monkeypatch.setattr(pipeline, "execute", functools.wraps(pipeline.execute)(lambda *a: None))
    assert AsyncDriver(async_client)._kept is None


class _Stranger:
    def __await__(self):  # type: ignore[no-untyped-def]
        return (yield self)


@pytest.mark.parametrize("make", [Driver, AsyncDriver], ids=["blocking", "asyncio"])
def test_a_driver_raises_on_a_request_it_does_not_know_and_the_plan_cannot_catch_it(
    r: redis.Redis, make: type
) -> None:
    caught: list[BaseException] = []

    async def plan() -> None:
        try:
            await _Stranger()
        except Exception as exc:  # a plan that catches everything still never sees it
            caught.append(exc)

    with pytest.raises(UnknownRequest, match="_Stranger"):
        if make is Driver:
            Driver(r).run(plan())
        else:
            asyncio.run(AsyncDriver(r).run(plan()))
    assert caught == []


def test_a_plan_created_and_never_run_is_reported(r: redis.Redis) -> None:
    async def forgetful() -> None:
        _ping_twice()  # no await: it never runs  # type: ignore[unused-coroutine]

    with pytest.warns(RuntimeWarning, match="coroutine '_ping_twice' was never awaited"):
        Driver(r).run(forgetful())
        gc.collect()


def test_tracebacks_name_the_public_method(r: redis.Redis, queue: str) -> None:
    Producer(r, queue).push("x")
    with Consumer(r, queue) as consumer:
        guard = consumer.next(timeout=1.0)
        assert guard is not None
        guard.ack()
        with pytest.raises(AlreadySettled) as raised:
            guard.ack()
    names = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert "ack" in names and "method" not in names
    assert type(guard).ack.__qualname__ == "GuardCore.ack"
