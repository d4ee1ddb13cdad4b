"""The servers of tests/servers.py work with plain redis-py: a Sentinel group fails over and
takes its old primary back, a TLS-only server talks TLS only, a restricted user is restricted."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import SentinelGroup, TlsServer, restricted_user
from tests.support import wait_for


def _set_when_reachable(client: redis.Redis, key: str, value: str) -> bool:
    """One SET; False while the client still meets the failover (a lost connection)."""
    try:
        return bool(client.set(key, value))
    except redis.ConnectionError:
        return False


async def _async_round_trip(group: SentinelGroup, key: str) -> bytes | str | None:
    client = group.async_master_for(socket_timeout=1)
    try:
        await client.set(key, "async")
        return await client.get(key)
    finally:
        await client.aclose()


@pytest.mark.slow
def test_sentinel_group_fails_over_and_the_old_primary_rejoins_as_a_replica() -> None:
    with SentinelGroup() as group:
        client = group.master_for(socket_timeout=1)
        client.set("before", "1")
        assert client.wait(1, 1000) == 1
        assert asyncio.run(_async_round_trip(group, "async")) == b"async"

        old = group.kill_primary()
        new = group.wait_for_failover(timeout=20)
        assert new != old and group.primary_address() == new

        wait_for(lambda: _set_when_reachable(client, "after", "2"), timeout=10)
        on_new = redis.Redis(*new)
        assert on_new.mget("before", "after") == [b"1", b"2"]
        assert asyncio.run(_async_round_trip(group, "async")) == b"async"

        assert group.restart_old_primary(timeout=20) == old
        on_old = redis.Redis(*old)
        assert on_old.role()[:3] == [b"slave", b"127.0.0.1", new[1]]
        wait_for(lambda: on_old.get("after") == b"2")
        on_new.close()
        on_old.close()
        client.close()


@pytest.mark.slow
def test_sentinel_group_with_appendonly_confirms_fsyncs_with_waitaof() -> None:
    with SentinelGroup(appendonly=True) as group:
        client = group.master_for(socket_timeout=5)
        pipe = client.pipeline(transaction=False)
        pipe.lpush("q", "m")
        pipe.waitaof(1, 1, 3000)
        assert pipe.execute() == [1, [1, 1]]  # fsynced here and on the replica
        client.close()


def test_tls_server_serves_tls_clients_and_refuses_plain_tcp() -> None:
    with TlsServer() as tls:
        by_url = redis.Redis.from_url(tls.url)
        assert by_url.set("k", "url") and by_url.get("k") == b"url"
        by_kwargs = redis.Redis(**tls.kwargs)
        assert by_kwargs.get("k") == b"url"
        plain = redis.Redis(port=tls.port, retry=Retry(NoBackoff(), 0))  # no 10 retries
        with pytest.raises(redis.ConnectionError, match="reset by peer"):
            plain.ping()
        by_url.close()
        by_kwargs.close()


def test_tls_server_serves_asyncio_clients_from_the_url() -> None:
    async def round_trip(url: str) -> bytes | str | None:
        client = redis.asyncio.Redis.from_url(url)
        try:
            await client.set("k", "async")
            return await client.get("k")
        finally:
            await client.aclose()

    with TlsServer() as tls:
        assert asyncio.run(round_trip(tls.url)) == b"async"


def test_restricted_user_may_use_only_its_keys_and_commands(r: redis.Redis, queue: str) -> None:
    name, key = f"user-{queue}", f"{{{queue}}}:ready"
    commands = ["lpush", "lrange", "publish"]
    with restricted_user(r, name, "s3cret:/@", [f"{{{queue}}}*"], commands) as url:
        user = redis.Redis.from_url(url)
        assert user.lpush(key, "m") == 1
        assert user.lrange(key, 0, -1) == [b"m"]
        for forbidden in (
            lambda: user.lpush("other", "m"),  # another key
            lambda: user.llen(key),  # another command
            lambda: user.publish(queue, "m"),  # an allowed command, but channels are off
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                forbidden()
        user.close()
        assert r.acl_getuser(name) is not None
    assert r.acl_getuser(name) is None
    r.delete(key)


def test_restricted_user_url_keeps_the_tls_settings() -> None:
    with TlsServer() as tls:
        admin = redis.Redis.from_url(tls.url)
        with restricted_user(admin, "producer", "pw", ["q*"], ["lpush"]) as url:
            assert url.startswith("rediss://producer:pw@")
            user = redis.Redis.from_url(url)
            assert user.lpush("q", "m") == 1
            with pytest.raises(redis.exceptions.NoPermissionError):
                user.get("q")
            user.close()
        admin.close()
