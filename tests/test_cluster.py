"""On a real three-node Valkey Cluster: every script's keys share one slot, and the
whole flow (push, take, ack, GC, worker, push to another queue) works."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from orizuru_py import Consumer, GarbageCollector, Producer, Queue, Worker
from orizuru_py.keys import QueueKeys
from orizuru_py.ops.embedded import EmbeddedServer
from tests.support import wait_for

SLOTS = 16384


def _free_port_pair() -> int:
    """A port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    config = {"cluster-enabled": "yes", "cluster-node-timeout": "2000"}
    servers = []
    try:
        for _ in range(3):
            servers.append(EmbeddedServer(port=_free_port_pair(), **config))
        nodes = [redis.Redis(port=s.port) for s in servers]
        step = SLOTS // len(nodes)
        for i, node in enumerate(nodes):
            last = SLOTS - 1 if i == len(nodes) - 1 else (i + 1) * step - 1
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
        for s in servers[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", s.port)
        wait_for(
            lambda: all(b"cluster_state:ok" in n.execute_command("CLUSTER", "INFO") for n in nodes),
            timeout=30,
            interval=0.2,
        )
        client = RedisCluster(host="127.0.0.1", port=servers[0].port)
        yield client
        client.close()
    finally:
        for s in servers:
            s.stop()


def _slots_of(cluster: RedisCluster, queue: str) -> set[int]:
    keys = cluster.scan_iter(match=f"*{{{queue}}}*", target_nodes=RedisCluster.ALL_NODES)
    return {key_slot(k) for k in keys}


def test_one_queue_lives_in_one_slot_and_every_script_runs(cluster: RedisCluster) -> None:
    queue = f"c-{uuid.uuid4().hex[:8]}"
    producer = Producer(cluster, queue)
    producer.push_many({"n": i} for i in range(10))
    producer.push({"n": 99}, delay=60)
    consumer = Consumer(cluster, queue)
    guards = consumer.next_batch(10, timeout=2)
    assert [g.payload["n"] for g in guards] == list(range(10))
    guards[0].reject()
    guards[1].retry(delay=60)
    guards[2].dead_letter("checked")
    assert consumer.ack_many(guards[3:]) == [True] * 7
    assert len(_slots_of(cluster, queue)) == 1  # queue, unack, dead, delayed, consumers
    report = GarbageCollector(cluster, queue).collect()
    assert report.requeued == 1
    assert consumer.next(timeout=2) is not None
    consumer.close()


def test_a_dead_consumer_is_recovered_on_a_cluster(cluster: RedisCluster) -> None:
    queue = f"c-{uuid.uuid4().hex[:8]}"
    Producer(cluster, queue).push_many(range(5))
    dead = Consumer(cluster, queue, heartbeat_timeout=0.3)
    assert len(dead.next_batch(5, timeout=2)) == 5
    dead.stop_heartbeat()
    time.sleep(0.4)
    report = GarbageCollector(cluster, queue).collect()
    assert (report.consumers_reaped, report.requeued) == (1, 5)
    assert cluster.llen(QueueKeys(queue).queue) == 5


def test_push_to_a_queue_in_another_slot_moves_the_message(cluster: RedisCluster) -> None:
    queue, other = f"c-{uuid.uuid4().hex[:8]}", f"d-{uuid.uuid4().hex[:8]}"
    assert key_slot(QueueKeys(queue).queue.encode()) != key_slot(QueueKeys(other).queue.encode())
    Producer(cluster, queue).push("hop")
    consumer = Consumer(cluster, queue)
    guard = consumer.next(timeout=2)
    assert guard is not None and guard.push(other)
    assert cluster.llen(consumer.processing_key) == 0
    with Consumer(cluster, other) as receiver:
        moved = receiver.next(timeout=2)
        assert moved is not None and (moved.id, moved.payload) == (guard.id, "hop")
    consumer.close()


def test_a_worker_drains_a_queue_on_a_cluster(cluster: RedisCluster) -> None:
    queue = f"c-{uuid.uuid4().hex[:8]}"
    Producer(cluster, queue).push_many(range(300))
    seen: list[int] = []
    worker = Worker(cluster, queue, seen.append, concurrency=4)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(seen) == 300)
    finally:
        worker.stop()
        thread.join(30)
    assert sorted(seen) == list(range(300))
    assert _slots_of(cluster, queue) == set()  # nothing left behind


def _on_three_nodes(cluster: RedisCluster) -> list[str]:
    """Three queue names whose slots live on three different nodes."""
    names: dict[str, str] = {}
    while len(names) < 3:
        name = f"c-{uuid.uuid4().hex[:8]}"
        node = cluster.get_node_from_key(QueueKeys(name).queue).name
        names.setdefault(node, name)
    return list(names.values())


def test_a_worker_on_queues_of_three_nodes_keeps_strict_priority(cluster: RedisCluster) -> None:
    names = _on_three_nodes(cluster)
    for name in reversed(names):
        Producer(cluster, name).push_many({"q": name, "n": i} for i in range(10))
    order: list[str] = []
    worker = Worker(cluster, names, lambda p: order.append(p["q"]), concurrency=1)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(order) == 30, timeout=20)
        Producer(cluster, names[2]).push({"q": "late", "n": 0})  # idle: any queue wakes it
        wait_for(lambda: order[-1] == "late", timeout=5)
    finally:
        worker.stop()
        thread.join(20)
    assert order[:30] == [names[0]] * 10 + [names[1]] * 10 + [names[2]] * 10


def test_pause_unique_keys_cancel_and_expiry_on_a_cluster(cluster: RedisCluster) -> None:
    queue = f"c-{uuid.uuid4().hex[:8]}"
    q = Queue(cluster, queue)
    producer = Producer(cluster, queue)
    first = producer.push("one", unique_key="k")
    assert producer.push("one again", unique_key="k") == first
    doomed = producer.push("cancelled")
    producer.push("expired", ttl=0.1)
    assert q.cancel(doomed) is True
    q.pause()
    time.sleep(0.2)
    with Consumer(cluster, queue) as consumer:
        assert consumer.next(timeout=0.3) is None
        q.resume()
        guards = consumer.next_batch(10, timeout=2.0)
        assert [g.payload for g in guards] == ["one"]
        consumer.ack_many(guards)
    assert producer.push("one", unique_key="k") != first
    stats = q.stats()
    assert (stats.cancelled, stats.expired, stats.waiting) == (1, 1, 1)
