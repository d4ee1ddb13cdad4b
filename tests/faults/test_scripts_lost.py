"""A failover between loading a script and calling it: the load reaches the new primary,
the call the old one, which answers NOSCRIPT again. That is an outage like a cut
connection (``ScriptsLost``, a ``ConnectionError``): consumers and workers ride it out
with backoff, and a push raises it; none of them dies of it or loses a message.

The client here sends its first few SCRIPT LOADs to another server than its calls,
which go to a fresh server that knows no script."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from orizuru_py import Consumer, Producer, QueueKeys, Worker
from orizuru_py import asyncio as oz_asyncio
from orizuru_py.errors import ScriptsLost
from orizuru_py.ops.embedded import EmbeddedServer
from tests.support import wait_for


class SplitLoads(redis.Redis):
    """Its first ``misses`` script loads go to ``elsewhere``."""

    def __init__(self, url: str, elsewhere: redis.Redis, misses: int) -> None:
        super().__init__(connection_pool=redis.ConnectionPool.from_url(url))
        self.elsewhere, self.misses = elsewhere, misses
        self._lock = threading.Lock()

    def script_load(self, script: Any) -> Any:
        with self._lock:
            self.misses -= 1
            if self.misses >= 0:
                return self.elsewhere.script_load(script)
        return super().script_load(script)


class AsyncSplitLoads(redis.asyncio.Redis):
    """The same for asyncio."""

    def __init__(self, url: str, elsewhere: redis.Redis, misses: int) -> None:
        super().__init__(connection_pool=redis.asyncio.ConnectionPool.from_url(url))
        self.elsewhere, self.misses = elsewhere, misses

    async def script_load(self, script: Any) -> Any:
        self.misses -= 1
        if self.misses >= 0:
            return self.elsewhere.script_load(script)
        return await super().script_load(script)


@pytest.fixture
def fresh() -> Iterator[str]:
    """A server of its own: its script cache is empty, and no other test touches it."""
    with EmbeddedServer() as server:
        yield server.url


def test_a_take_rides_out_scripts_lost_on_the_way(r: redis.Redis, fresh: str, queue: str) -> None:
    client = SplitLoads(fresh, r, misses=2)
    Producer(client, queue).push("m")
    with Consumer(client, queue) as consumer:
        guard = consumer.next(timeout=30)
        assert guard is not None and guard.payload == "m"
        assert guard.ack() is True
    assert client.misses < 0  # every misrouted load was met, and ridden out


def test_an_asyncio_take_rides_out_scripts_lost_on_the_way(
    r: redis.Redis, fresh: str, queue: str
) -> None:
    async def main() -> None:
        client = AsyncSplitLoads(fresh, r, misses=2)
        await oz_asyncio.Producer(client, queue).push("m")
        async with oz_asyncio.Consumer(client, queue) as consumer:
            guard = await consumer.next(timeout=30)
            assert guard is not None and guard.payload == "m"
            assert await guard.ack() is True
        assert client.misses < 0
        await client.aclose()

    asyncio.run(main())


def test_a_worker_rides_out_scripts_lost_and_handles_every_message(
    r: redis.Redis, fresh: str, queue: str
) -> None:
    client = SplitLoads(fresh, r, misses=8)
    Producer(client, queue).push_many(range(20))
    handled: list[int] = []
    worker = Worker(client, queue, handled.append, concurrency=4)
    crash: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # WorkerCrashed: what the fix prevents
            crash.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: worker.stats.handled >= 20 or crash, timeout=60)
    finally:
        worker.stop()
        thread.join(30)
    assert crash == []
    assert sorted(set(handled)) == list(range(20))
    assert client.misses < 0
    keys = QueueKeys(queue)
    assert client.llen(keys.queue) == 0


def test_a_unique_push_that_meets_scripts_lost_raises_a_connection_error(
    r: redis.Redis, fresh: str, queue: str
) -> None:
    client = SplitLoads(fresh, r, misses=1)
    producer = Producer(client, queue)
    with pytest.raises(redis.ConnectionError, match="lost a script") as raised:
        producer.push("first", unique_key="k")
    assert isinstance(raised.value, ScriptsLost)
    assert client.llen(QueueKeys(queue).queue) == 0  # NOSCRIPT: it did not run
    producer.push("again", unique_key="k")  # the load now reaches this server
    assert client.llen(QueueKeys(queue).queue) == 1
