"""The ``orizuru`` command: demo, stats, peek, requeue, purge, gc."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
import redis

from orizuru_py import Consumer, Producer, cli, demo
from orizuru_py.keys import QueueKeys
from tests.support import keys_of


def run(capsys: pytest.CaptureFixture[str], redis_url: str, *args: str) -> tuple[int, str]:
    code = cli.main(["--redis-url", redis_url, *args])
    return code, capsys.readouterr().out


def test_demo_loses_nothing_when_a_consumer_is_killed(redis_url: str) -> None:
    out = io.StringIO()
    assert demo.main(redis_url, 600, 2, out) == 0
    text = out.getvalue()
    assert "lost              0" in text
    assert "recovered        50" in text  # the killed consumer's whole batch


def test_orizuru_demo_runs_on_its_own_embedded_server() -> None:
    env_free = {"PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "orizuru_py", "demo", "--messages", "1000"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env_free)
    assert done.returncode == 0, done.stderr
    assert "embedded Valkey" in done.stdout
    assert "lost              0" in done.stdout


def test_stats_counts_each_list(
    capsys: pytest.CaptureFixture[str], r: redis.Redis, redis_url: str, queue: str
) -> None:
    producer = Producer(r, queue)
    producer.push_many(range(5))
    producer.push(9, delay=60)
    consumer = Consumer(r, queue)
    consumer.next(timeout=1)
    code, out = run(capsys, redis_url, "stats", queue)
    consumer.close()
    assert code == 0
    row = out.splitlines()[1].split()
    assert row == [queue, "4", "1", "0", "0", "1", "1"]
    r.delete(QueueKeys(queue).delayed, QueueKeys(queue).queue)


def test_peek_shows_the_next_messages_without_taking_them(
    capsys: pytest.CaptureFixture[str], r: redis.Redis, redis_url: str, queue: str
) -> None:
    ids = Producer(r, queue).push_many(["first", "second"])
    code, out = run(capsys, redis_url, "peek", queue)
    assert code == 0
    assert out.splitlines() == [f"{ids[0]}  attempt 1  'first'", f"{ids[1]}  attempt 1  'second'"]
    assert r.llen(QueueKeys(queue).queue) == 2
    r.delete(QueueKeys(queue).queue)


def test_requeue_moves_dead_letters_back_and_keeps_garbage_dead(
    capsys: pytest.CaptureFixture[str], r: redis.Redis, redis_url: str, queue: str
) -> None:
    keys = QueueKeys(queue)
    r.lpush(keys.queue, b"garbage")
    Producer(r, queue).push("poison")
    consumer = Consumer(r, queue)
    guard = consumer.next(timeout=1)  # the garbage was dead-lettered on the way
    assert guard is not None and guard.payload == "poison"
    guard.dead_letter("handler gave up")
    consumer.close()
    code, out = run(capsys, redis_url, "peek", queue, "--dead")
    assert "[dead: handler gave up]" in out and "<undecodable" in out
    code, out = run(capsys, redis_url, "requeue", queue)
    assert code == 0 and out.startswith("requeued 1 ")
    assert r.llen(keys.queue) == 1 and r.llen(keys.dead) == 1
    code, out = run(capsys, redis_url, "purge", queue, "--dead")
    assert out.strip() == f"purged 2 message(s) from {queue}"
    assert keys_of(r, queue) == []


def test_gc_command_reaps_a_dead_consumer(
    capsys: pytest.CaptureFixture[str], r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push_many(range(3))
    dead = Consumer(r, queue, heartbeat_timeout=0.2)
    assert len(dead.next_batch(3, timeout=1)) == 3
    dead._heartbeat.stop()
    time.sleep(0.3)
    code, out = run(capsys, redis_url, "gc", queue)
    assert code == 0
    assert "requeued=3" in out and "consumers_reaped=1" in out
    assert r.llen(QueueKeys(queue).queue) == 3
    r.delete(QueueKeys(queue).queue)


def test_bench_command_measures_on_the_given_server(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    code, out = run(capsys, redis_url, "bench", "--messages", "200", "--rounds", "1")
    assert code == 0
    assert "next_batch" in out and "Worker" in out


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_colon", "must look like module:function"),
        ("tests.handlers:missing", "has no attribute 'missing'"),
        ("tests.handlers:not_callable", "not a function"),
    ],
)
def test_bad_handler_paths_are_clear_errors(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cli.load_handler(path)
