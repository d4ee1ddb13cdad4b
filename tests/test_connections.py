"""The one connection a driver keeps between its requests (connections.py)."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from orizuru_py.asyncio.driver import AsyncDriver
from orizuru_py.connections import LOOK_AFTER
from orizuru_py.plan import Call, Driver


def _call(*args: Any) -> Any:
    async def plan() -> Any:
        return await Call(args)

    return plan()


def _echo(value: bytes) -> Any:
    return _call("ECHO", value)


@pytest.fixture
def counted(redis_url: str) -> Iterator[tuple[redis.Redis, list[int]]]:
    """A client on a pool of at most 3 connections, and how many checkouts it served."""
    r = redis.Redis.from_url(redis_url, max_connections=3)
    pool = r.connection_pool
    checkouts = [0]
    get = pool.get_connection

    def counting(*args: Any, **kwargs: Any) -> Any:
        checkouts[0] += 1
        return get(*args, **kwargs)

    pool.get_connection = counting  # type: ignore[method-assign]
    yield r, checkouts
    r.close()


def test_requests_in_turn_use_one_kept_connection(
    counted: tuple[redis.Redis, list[int]],
) -> None:
    r, checkouts = counted
    driver = Driver(r)
    assert [driver.run(_echo(b"%d" % i)) for i in range(20)] == [b"%d" % i for i in range(20)]
    assert checkouts[0] == 1


def test_overlapping_requests_take_others_from_the_pool_and_one_is_kept(
    counted: tuple[redis.Redis, list[int]], admin: redis.Redis, queue: str
) -> None:
    r, checkouts = counted
    driver = Driver(r)
    blocked = threading.Thread(target=driver.run, args=(_call("BLPOP", queue, 0.5),))
    blocked.start()
    while not any(
        c["cmd"] == "blpop" and queue in c.get("argv", queue) for c in admin.client_list()
    ):
        pass  # the BLPOP holds a connection now
    assert driver.run(_echo(b"meanwhile")) == b"meanwhile"
    blocked.join()
    assert checkouts[0] == 2
    pool = r.connection_pool
    others = [pool.get_connection(), pool.get_connection()]  # 3 at most: one is kept
    with pytest.raises(redis.exceptions.MaxConnectionsError):
        pool.get_connection()
    for conn in others:
        pool.release(conn)


def test_a_collected_driver_gives_its_connection_back(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url, max_connections=1)
    driver = Driver(r)
    assert driver.run(_echo(b"x")) == b"x"
    with pytest.raises(redis.ConnectionError):  # the only one is kept
        r.ping()
    del driver
    gc.collect()
    assert r.ping()
    r.close()


def test_a_forked_child_never_writes_to_its_parent_s_kept_connection(
    counted: tuple[redis.Redis, list[int]],
) -> None:
    r, checkouts = counted
    driver = Driver(r)
    assert driver.run(_echo(b"parent")) == b"parent"
    assert driver._kept is not None
    parents = driver._kept._conn
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own connection, from the pool it reset
        ok = driver.run(_echo(b"child")) == b"child"
        os.write(write, b"ok" if ok and driver._kept._conn not in (None, parents) else b"no")
        os._exit(0)
    os.close(write)
    assert os.read(read, 2) == b"ok"
    os.waitpid(pid, 0)
    os.close(read)
    assert driver.run(_echo(b"again")) == b"again"
    assert checkouts[0] == 1  # the parent's connection stayed the parent's


def test_a_kept_connection_the_server_closed_is_noticed_before_the_next_write(
    redis_url: str, admin: redis.Redis
) -> None:
    r = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0))  # no retry hides it
    driver = Driver(r)
    assert driver.run(_echo(b"x")) == b"x"
    assert driver._kept is not None
    kept = driver._kept._conn
    host, port = kept._sock.getsockname()[:2]
    assert admin.client_kill(f"{host}:{port}")
    time.sleep(LOOK_AFTER)  # polled after this idle time: a restart or an idle timeout takes longer
    assert driver.run(_echo(b"y")) == b"y"
    r.close()


def test_a_pool_of_another_kind_is_asked_for_every_request(redis_url: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=0.1)
    r = redis.Redis(connection_pool=pool)  # a Sentinel pool is of another kind too
    driver = Driver(r)
    assert driver.run(_echo(b"x")) == b"x"
    assert r.ping()  # the only connection was given back, not kept
    assert driver.run(_echo(b"y")) == b"y"
    r.close()


def test_an_asyncio_driver_keeps_one_connection_and_gives_it_back_when_collected(
    redis_url: str,
) -> None:
    async def main() -> None:
        r = redis.asyncio.Redis.from_url(redis_url, max_connections=1)
        pool = r.connection_pool
        checkouts = [0]
        get = pool.get_connection

        async def counting(*args: Any, **kwargs: Any) -> Any:
            checkouts[0] += 1
            return await get(*args, **kwargs)

        pool.get_connection = counting  # type: ignore[method-assign]
        driver = AsyncDriver(r)
        assert [await driver.run(_echo(b"%d" % i)) for i in range(20)] == [
            b"%d" % i for i in range(20)
        ]
        assert checkouts[0] == 1
        with pytest.raises(redis.exceptions.MaxConnectionsError):  # the only one is kept
            await r.ping()
        del driver
        gc.collect()
        for _ in range(3):  # the release runs as a task on this loop
            await asyncio.sleep(0)
        assert await r.ping()
        await r.aclose()

    asyncio.run(main())


def test_an_asyncio_kept_connection_the_server_closed_is_noticed_and_another_loop_is_served(
    redis_url: str, admin: redis.Redis
) -> None:
    r = redis.asyncio.Redis.from_url(redis_url, retry=AsyncRetry(NoBackoff(), 0))
    driver = AsyncDriver(r)

    async def kill_the_kept_one() -> None:
        assert await driver.run(_echo(b"x")) == b"x"
        assert driver._kept is not None
        kept = driver._kept._conn
        host, port = kept._writer.get_extra_info("sockname")[:2]
        assert admin.client_kill(f"{host}:{port}")
        await asyncio.sleep(LOOK_AFTER)
        assert await driver.run(_echo(b"y")) == b"y"

    asyncio.run(kill_the_kept_one())
    assert asyncio.run(driver.run(_echo(b"on another loop"))) == b"on another loop"
