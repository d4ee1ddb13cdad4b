"""Producer confirms: a push returns once ``replicas`` replicas have it (WAIT), and with
``fsync`` once the append-only file has it (WAITAOF); otherwise ``NotConfirmed``.

A primary and a replica of our own (two embedded Valkeys); the replica is frozen with
SIGSTOP to make it lag, as a slow network or a paused VM would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from orizuru_py import NotConfirmed, Producer, QueueKeys
from orizuru_py.envelope import message_id
from orizuru_py.ops.embedded import EmbeddedServer
from tests.support import counting_client, wait_for


@pytest.fixture
def pair() -> Iterator[tuple[EmbeddedServer, EmbeddedServer]]:
    """A primary and its replica, in sync."""
    with EmbeddedServer() as primary, EmbeddedServer() as replica:
        r = redis.Redis(port=replica.port)
        r.replicaof("127.0.0.1", primary.port)
        wait_for(lambda: r.info("replication")["master_link_status"] == "up", timeout=10)
        yield primary, replica


@contextmanager
def frozen(server: EmbeddedServer) -> Iterator[None]:
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def test_a_confirmed_push_is_on_the_replica_when_it_returns(
    pair: tuple[EmbeddedServer, EmbeddedServer], queue: str
) -> None:
    primary, replica = pair
    producer = Producer(redis.Redis.from_url(primary.url), queue, replicas=1)
    for i in range(20):
        mid = producer.push({"n": i})
        last = redis.Redis(port=replica.port).lindex(QueueKeys(queue).queue, 0)
        assert last is not None and message_id(last) == mid  # already there, no waiting
    ids = producer.push_many({"n": i} for i in range(100))
    assert redis.Redis(port=replica.port).llen(QueueKeys(queue).queue) == 120
    assert len(ids) == 100


def test_a_push_no_replica_acknowledges_raises_not_confirmed(
    pair: tuple[EmbeddedServer, EmbeddedServer], queue: str
) -> None:
    primary, replica = pair
    producer = Producer(redis.Redis.from_url(primary.url), queue, replicas=1, confirm_timeout=0.2)
    producer.push("before")  # the first push also joins the registry
    with frozen(replica):
        started = time.monotonic()
        with pytest.raises(NotConfirmed) as caught:
            producer.push("while the replica lags")
        assert time.monotonic() - started < 2.0
        with pytest.raises(NotConfirmed) as many:
            producer.push_many(["a", "b", "c"])
    assert caught.value.replicas_reached == 0 and len(caught.value.ids) == 1
    assert len(many.value.ids) == 3
    # "may still be queued": they are, on the primary; a retry would duplicate, not lose
    assert redis.Redis.from_url(primary.url).llen(QueueKeys(queue).queue) == 5


def test_confirms_add_no_round_trip(
    pair: tuple[EmbeddedServer, EmbeddedServer], queue: str
) -> None:
    primary, _ = pair
    client, trips = counting_client(primary.url)
    producer = Producer(client, queue, replicas=1)
    producer.push(0)
    producer.push(0, unique_key="first")  # the server loads push.lua once
    before = trips.here()
    producer.push(1)
    producer.push_many(range(2500))
    producer.push(2, unique_key="k")
    assert trips.here() - before == 3


def test_fsync_confirms_once_the_append_only_file_has_it(queue: str) -> None:
    with EmbeddedServer(appendonly="yes", appendfsync="everysec") as server:
        producer = Producer(redis.Redis.from_url(server.url), queue, fsync=True)
        producer.push("durable")
        producer.push_many(["a", "b"])
        assert redis.Redis.from_url(server.url).llen(QueueKeys(queue).queue) == 3


def test_fsync_without_an_append_only_file_is_a_clear_error_with_nothing_queued(
    queue: str,
) -> None:
    with EmbeddedServer() as server:
        producer = Producer(redis.Redis.from_url(server.url), queue, fsync=True)
        with pytest.raises(ValueError, match="appendonly"):
            producer.push("x")
        assert redis.Redis.from_url(server.url).exists(QueueKeys(queue).queue) == 0


@pytest.fixture
def redis_70() -> Iterator[redis.Redis]:
    """The system's redis-server (7.0, no WAITAOF), on a port of its own."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    assert os.path.exists(binary), "the tests need Debian's redis-server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="orizuru-redis70-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--dir", directory, "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    try:
        wait_for(lambda: _answers(client), timeout=10)
        yield client
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_fsync_on_a_server_without_waitaof_is_a_clear_error(
    redis_70: redis.Redis, queue: str
) -> None:
    if int(redis_70.info()["redis_version"].split(".")[1]) >= 2:
        pytest.fail("this test needs a Redis older than 7.2")
    with pytest.raises(ValueError, match="WAITAOF"):
        Producer(redis_70, queue, fsync=True).push("x")
    assert redis_70.exists(QueueKeys(queue).queue) == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"replicas": -1}, "replicas"),
        ({"fsync": "yes"}, "fsync"),
        ({"confirm_timeout": 0}, "confirm"),
    ],
)
def test_bad_confirm_settings_are_value_errors(
    r: redis.Redis, queue: str, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        Producer(r, queue, **kwargs)  # type: ignore[arg-type]


def test_confirms_on_a_cluster_are_refused_at_construction(queue: str) -> None:
    class RedisCluster:  # what the check looks at: the client's class
        connection_pool = None

    with pytest.raises(ValueError, match="Cluster"):
        Producer(RedisCluster(), queue, replicas=1)
