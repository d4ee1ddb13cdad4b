"""The server's clock stepped forward past heartbeat_timeout (an NTP step, a VM resumed):
every deadline seems passed at once. A collector that runs in a loop reaps nobody on
the pass that sees the jump, so live consumers beat first; a dead one is still reaped.

The server runs under libfaketime (Debian's ``faketime``, installed by .ci/run), its
wall clock moved by writing an offset to a file; its monotonic clock is left alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orizuru_py import Consumer, GarbageCollector, Producer, QueueKeys
from orizuru_py.ops.embedded import EmbeddedServer
from tests.support import debian_package, wait_for


@pytest.fixture
def stepped(tmp_path: Path) -> Iterator[tuple[redis.Redis, Path]]:
    """A private server whose clock is offset by what is written to the returned file."""
    libfaketime = debian_package("faketime", "/usr/lib/*/faketime/libfaketime.so.1")
    offset = tmp_path / "offset"
    offset.write_text("+0\n")
    env = {
        "LD_PRELOAD": str(libfaketime),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the server process inherits them; this one is already loaded
    try:
        server = EmbeddedServer()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    with server:
        client = redis.Redis.from_url(server.url)
        yield client, offset
        client.close()


def _server_s(r: redis.Redis) -> float:
    seconds, micros = r.time()
    return seconds + micros / 1e6


def test_a_forward_clock_step_reaps_no_live_consumer(
    stepped: tuple[redis.Redis, Path], queue: str
) -> None:
    r, offset = stepped
    Producer(r, queue).push_many(range(5))
    live = [Consumer(r, queue, heartbeat_timeout=2.0) for _ in range(4)]
    held = [c.next_batch(1, timeout=1.0) for c in live]
    dead = Consumer(r, queue, heartbeat_timeout=2.0)
    assert len(dead.next_batch(1, timeout=1.0)) == 1
    dead.stop_heartbeat()
    gc = GarbageCollector(r, queue)
    thread = gc.start(interval=0.2)
    try:
        time.sleep(0.5)  # a pass or two on the old clock
        before = _server_s(r)
        offset.write_text("+60\n")  # the server's clock jumps a minute ahead
        wait_for(lambda: _server_s(r) - before > 55, timeout=5)
        time.sleep(2.0)  # several collector passes, several beats
        alive = set(r.zrange(QueueKeys(queue).consumers, 0, -1))
        assert {c.id.encode() for c in live} <= alive  # not one live consumer reaped
        for consumer, guards in zip(live, held, strict=True):
            assert consumer.ack_many(guards) == [True]  # what they held is still theirs
        wait_for(lambda: dead.id.encode() not in set(r.zrange(QueueKeys(queue).consumers, 0, -1)))
    finally:
        gc.stop()
        thread.join(5)
        for consumer in live:
            consumer.close()
    assert r.llen(QueueKeys(queue).queue) == 1  # the dead one's message came back
