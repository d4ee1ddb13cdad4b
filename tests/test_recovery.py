"""Recovery from a consumer process killed with SIGKILL while it holds messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import redis

from orizuru_py import Consumer, GarbageCollector, Producer
from orizuru_py.keys import QueueKeys

from .support import held_by, instances, wait_for

ROOT = Path(__file__).resolve().parent.parent


def test_messages_held_by_a_killed_consumer_are_all_recovered(
    redis_url: str, r: redis.Redis, queue: str
) -> None:
    keys = QueueKeys(queue)
    pushed = Producer(r, queue).push_many([{"n": i} for i in range(100)])
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.consumer_child",
            redis_url,
            queue,
            "child",
            "40",
            "15",
            "2.0",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # the child has acked 15 and holds 25
        assert held_by(r, queue, "child") == 25
        (member,) = instances(r, queue, "child")
    finally:
        child.kill()
        child.wait(timeout=10)
    report = json.loads(line)
    assert len(report["acked"]) == 15 and len(report["held"]) == 25
    gc = GarbageCollector(r, queue)
    assert gc.collect().requeued == 0  # its deadline has not passed yet
    recovered = wait_for(lambda: gc.collect().requeued, timeout=10.0)
    assert recovered == 25
    assert r.exists(keys.processing(member)) == 0
    acked_after: list[str] = []
    attempts: dict[str, int] = {}
    with Consumer(r, queue) as consumer:
        while guards := consumer.next_batch(100, timeout=0.5):
            attempts.update((g.id, g.attempts) for g in guards)
            acked_after += [
                g.id for g, ok in zip(guards, consumer.ack_many(guards), strict=True) if ok
            ]
    assert len(acked_after) == len(set(acked_after)) == 85
    assert sorted(report["acked"] + acked_after) == sorted(pushed)  # 0 lost, 0 duplicated
    assert sorted(i for i in attempts if attempts[i] == 2) == sorted(report["held"])
    assert r.llen(keys.queue) == 0
