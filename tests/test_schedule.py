"""Periodic messages: each due tick pushed exactly once, whoever promotes it, no leader.

When an entry is due is computed (daylight-saving changes included) without waiting for
it; that each tick is pushed once is counted on a real server, with promoters racing in
threads, in consumers' heartbeats of both APIs, and in separate ``orizuru scheduler``
processes. A tick's message carries the time it was due as its ``enqueued_ms``, so the
ticks of a run are counted one by one.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import logging
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest
import redis
from redis.cluster import RedisCluster

import orizuru_py
import orizuru_py.asyncio as aio
from orizuru_py import GarbageCollector, Queue, Schedule
from orizuru_py.cadence import Cadence
from orizuru_py.keys import QueueKeys, schedules
from tests.apis import Api
from tests.clirun import one_error_line, orizuru, started
from tests.support import running, wait_for
from tests.test_cluster import cluster  # noqa: F401 (a fixture: a three-node cluster)

BERLIN = "Europe/Berlin"


def utc_ms(*when: int) -> int:
    return int(datetime(*when, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def local(ms: int, zone: str = BERLIN) -> str:
    return datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).strftime("%m-%d %H:%M %Z")


def chain(cadence: Cadence, start_ms: int, n: int) -> list[int]:
    """``n`` successive due times from ``start_ms``, each tick pushed right when due."""
    due = cadence.first(start_ms)
    ticks = []
    while due is not None and len(ticks) < n:
        ticks.append(due)
        due = cadence.following(due, due)
    return ticks


def server_ms(r: redis.Redis) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


def ticks_in(r: redis.Redis, queue: str, prefix: str) -> list[int]:
    """The due time of each tick waiting in ``queue``."""
    return [m.enqueued_ms for m in Queue(r, queue, prefix=prefix).peek(1000) if m.enqueued_ms]


def assert_each_tick_once(ticks: list[int], period_ms: int) -> None:
    """No tick twice, and every one on the entry's grid (a late pass may collapse some)."""
    counts = collections.Counter(ticks)
    assert set(counts.values()) == {1}, [t for t, n in counts.items() if n > 1]
    assert all((t - min(ticks)) % period_ms == 0 for t in ticks)


@pytest.fixture
def prefix(r: redis.Redis) -> Iterator[str]:
    """A prefix of this test's own: ``list()`` and the scheduler see only its entries."""
    name = f"sched-{uuid.uuid4().hex[:10]}"
    yield name
    for key in r.scan_iter(match=f"{name}:*", count=1000):
        r.delete(key)


@pytest.fixture
def schedule_of(api: Api) -> Callable[..., Any]:
    """``Schedule`` of the API under test (asyncio: behind a blocking face)."""
    return api._make(orizuru_py.Schedule, aio.Schedule)


# -- when it is due: computed, daylight-saving changes included -------------------------


def test_a_period_keeps_its_phase_and_ticks_missed_collapse_into_one() -> None:
    every = Cadence.of(every=10.0)
    assert every.first(1_000) == 11_000
    assert every.following(11_000, 11_003) == 21_000
    assert every.following(11_000, 95_500) == 101_000  # eight missed: one tick, on the grid


def test_a_daily_time_the_spring_change_skips_fires_once_right_after_the_jump() -> None:
    nightly = Cadence.of(cron="30 2 * * *", tz=BERLIN)
    ticks = chain(nightly, utc_ms(2025, 3, 28, 12), 4)
    assert [local(t) for t in ticks] == [
        "03-29 02:30 CET",
        "03-30 03:00 CEST",  # 02:30 does not exist that night
        "03-31 02:30 CEST",
        "04-01 02:30 CEST",
    ]


def test_a_daily_time_the_autumn_change_repeats_fires_once() -> None:
    nightly = Cadence.of(cron="30 2 * * *", tz=BERLIN)
    ticks = chain(nightly, utc_ms(2025, 10, 24, 12), 4)
    assert [local(t) for t in ticks] == [
        "10-25 02:30 CEST",
        "10-26 02:30 CEST",  # the first of the two 02:30s
        "10-27 02:30 CET",
        "10-28 02:30 CET",
    ]


def test_a_tick_pushed_late_in_the_repeated_hour_is_not_pushed_again_that_night() -> None:
    nightly = Cadence.of(cron="30 2 * * *", tz=BERLIN)
    first_pass = utc_ms(2025, 10, 26, 0, 30)  # 02:30 CEST
    pushed_at = utc_ms(2025, 10, 26, 1, 35)  # 02:35 CET, after the second 02:30
    assert nightly.following(first_pass, pushed_at) == utc_ms(2025, 10, 27, 1, 30)
    # Read in the second pass of the hour, local time already had its 02:30 that night.
    assert nightly.first(utc_ms(2025, 10, 26, 1, 15)) == utc_ms(2025, 10, 27, 1, 30)


def test_an_hourly_entry_fires_every_real_hour_across_both_changes() -> None:
    hourly = Cadence.of(cron="0 * * * *", tz=BERLIN)
    for start in (utc_ms(2025, 3, 29, 22), utc_ms(2025, 10, 25, 21)):
        ticks = chain(hourly, start, 8)
        assert {b - a for a, b in itertools.pairwise(ticks)} == {3_600_000}


def test_a_cron_entry_defaults_to_utc_and_describes_itself() -> None:
    nightly = Cadence.of(cron="0  3 * * *")
    assert (nightly.tz, nightly.describe()) == ("UTC", "0 3 * * * (UTC)")
    assert nightly.first(utc_ms(2025, 1, 1, 3)) == utc_ms(2025, 1, 2, 3)
    assert Cadence.of(every=0.25).describe() == "every 0.25s"


@pytest.mark.parametrize(
    "stored",
    [
        b"",
        b"\xc1",
        msgpack.packb({"cron": "0 3 * * *"}),
        msgpack.packb([2, "0 3 * * *", "UTC", None]),
        msgpack.packb([1, "61 * * * *", "UTC", None]),
        msgpack.packb([1, "0 3 * * *", "Nowhere/Atlantis", None]),
        msgpack.packb([1, None, None, -5]),
        msgpack.packb([1, "0 3 * * *", None, 1000]),
    ],
)
def test_a_stored_cadence_is_checked_as_add_checks_one(stored: bytes) -> None:
    with pytest.raises(ValueError):
        Cadence.unpack(stored)


# -- add, list, remove ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"cron": "61 * * * *"}, "not a valid expression"),
        ({"cron": "* * *"}, "five"),
        ({"cron": "0 3 * * * *"}, "five"),
        ({"cron": "0 0 30 2 *"}, "not a valid expression"),
        ({"cron": "0 3 * * *", "tz": "Mars/Olympus"}, "no time zone"),
        ({"cron": "0 3 * * *", "tz": "../../etc/passwd"}, "no time zone"),
        ({"cron": "0 3 * * *", "tz": ""}, "time zone name"),
        ({"every": 0}, "positive"),
        ({"every": float("nan")}, "positive"),
        ({"every": 1.0, "tz": "UTC"}, "cron= only"),
        ({"every": 1.0, "cron": "* * * * *"}, "exactly one"),
        ({}, "exactly one"),
    ],
)
def test_a_bad_cadence_is_a_value_error_at_add_and_nothing_is_stored(
    r: redis.Redis, prefix: str, queue: str, kwargs: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Schedule(r, prefix=prefix).add("nightly", queue, {"kind": "nightly"}, **kwargs)
    assert list(r.scan_iter(match=f"{prefix}:*")) == []


def test_a_bad_name_or_payload_is_a_value_error_at_add(
    r: redis.Redis, prefix: str, queue: str
) -> None:
    sched = Schedule(r, prefix=prefix, max_payload_bytes=100)
    with pytest.raises(ValueError, match="entry name"):
        sched.add("two words", queue, {}, every=1.0)
    with pytest.raises(ValueError, match="queue name"):
        sched.add("ping", "a{b}", {}, every=1.0)
    with pytest.raises(ValueError, match="msgpack"):
        sched.add("ping", queue, object(), every=1.0)
    with pytest.raises(ValueError, match="max_payload_bytes"):
        sched.add("ping", queue, "x" * 200, every=1.0)
    assert list(r.scan_iter(match=f"{prefix}:*")) == []


def test_entries_are_listed_by_next_due_time_reckoned_on_the_servers_clock(
    r: redis.Redis, schedule_of: Callable[..., Any], prefix: str, queue: str
) -> None:
    sched = schedule_of(r, prefix=prefix)
    before = server_ms(r)
    ping = sched.add("ping", queue, {"n": 1}, every=10.0)
    after = server_ms(r)
    assert before + 10_000 <= ping.next_due_ms <= after + 10_000
    nightly = sched.add("nightly", queue, {"kind": "nightly"}, cron="0 3 * * *", tz="UTC")
    assert (nightly.next_due.hour, nightly.next_due.minute) == (3, 0)
    assert 0 < nightly.next_due_ms - after <= 24 * 3600 * 1000
    listed = sched.list()
    assert [(e.name, e.queue, e.payload, e.cadence) for e in listed] == [
        ("ping", queue, {"n": 1}, "every 10s"),
        ("nightly", queue, {"kind": "nightly"}, "0 3 * * * (UTC)"),
    ]
    assert [e.next_due_ms for e in listed] == [ping.next_due_ms, nightly.next_due_ms]
    assert [e.payload for e in sched.list(payloads=False)] == [None, None]
    assert queue in Queue.all(r, prefix)  # the queue is known before its first tick
    assert sched.remove("ping") is True
    assert sched.remove("ping") is False
    assert [e.name for e in sched.list()] == ["nightly"]


def test_adding_an_entry_again_keeps_its_due_time_and_a_change_sets_a_new_one(
    r: redis.Redis, schedule_of: Callable[..., Any], prefix: str, queue: str
) -> None:
    sched = schedule_of(r, prefix=prefix)
    first = sched.add("ping", queue, {"n": 1}, every=60.0)
    time.sleep(0.02)
    assert sched.add("ping", queue, {"n": 1}, every=60.0).next_due_ms == first.next_due_ms
    changed = sched.add("ping", queue, {"n": 2}, every=60.0)
    assert changed.next_due_ms > first.next_due_ms
    assert [e.payload for e in sched.list()] == [{"n": 2}]


def test_an_entry_added_again_for_another_queue_moves_there(
    r: redis.Redis, prefix: str, queue: str
) -> None:
    sched = Schedule(r, prefix=prefix)
    sched.add("report", queue, {}, every=60.0)
    sched.add("report", f"{queue}-b", {}, cron="0 3 * * *")
    assert [(e.name, e.queue) for e in sched.list()] == [("report", f"{queue}-b")]
    assert r.hlen(QueueKeys(queue, prefix).schedule) == 0


# -- pushing ticks -------------------------------------------------------------------------


def test_a_tick_is_a_plain_message_enqueued_at_the_time_it_was_due(
    r: redis.Redis, api: Api, schedule_of: Callable[..., Any], prefix: str, queue: str
) -> None:
    sched = schedule_of(r, prefix=prefix)
    entry = sched.add("ping", queue, {"n": 1}, every=0.1)
    assert wait_for(sched.promote) == 1
    with api.Consumer(r, queue, prefix=prefix) as consumer:
        guard = consumer.next(timeout=5)
        assert guard is not None
        assert (guard.payload, guard.attempts, guard.enqueued_ms) == (
            {"n": 1},
            1,
            entry.next_due_ms,
        )
        assert guard.ack() is True


def test_ticks_missed_while_nothing_ran_are_pushed_once(
    r: redis.Redis, prefix: str, queue: str
) -> None:
    sched = Schedule(r, prefix=prefix)
    entry = sched.add("ping", queue, {}, every=0.1)
    time.sleep(0.75)  # six or more ticks due, nobody promoting
    assert sched.promote() == 1
    assert sched.promote() == 0
    assert ticks_in(r, queue, prefix) == [entry.next_due_ms]
    (listed,) = sched.list()
    assert listed.next_due_ms > server_ms(r) - 50
    assert (listed.next_due_ms - entry.next_due_ms) % 100 == 0


def test_three_promoters_racing_push_each_tick_once(
    r: redis.Redis, prefix: str, queue: str
) -> None:
    Schedule(r, prefix=prefix).add("tick", queue, {}, every=0.05)
    racers = [
        Schedule(redis.Redis(connection_pool=r.connection_pool), prefix=prefix) for _ in range(3)
    ]
    threads = [s.start(interval=0.005) for s in racers]
    time.sleep(2.0)
    for s in racers:
        s.stop()
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    ticks = ticks_in(r, queue, prefix)
    assert len(ticks) >= 5  # about 40 on an idle machine
    assert_each_tick_once(ticks, 50)


def test_consumers_of_either_api_push_due_ticks_as_they_beat_each_once(
    r: redis.Redis, api: Api, prefix: str, queue: str
) -> None:
    consumers = [api.Consumer(r, queue, prefix=prefix, heartbeat_timeout=0.4) for _ in range(3)]
    for c in consumers:
        assert c.next(timeout=0) is None  # registered: beating every 0.1 s
    entry = Schedule(r, prefix=prefix).add("tick", queue, {}, every=0.1)
    wait_for(lambda: len(ticks_in(r, queue, prefix)) >= 5, timeout=15)
    for c in consumers:
        c.close()
    ticks = ticks_in(r, queue, prefix)
    assert min(ticks) == entry.next_due_ms
    assert_each_tick_once(ticks, 100)


def test_a_worker_pushes_due_ticks_and_handles_each_once(
    r: redis.Redis, prefix: str, queue: str
) -> None:
    handled: list[int] = []
    worker = orizuru_py.Worker(
        r, queue, lambda guard: handled.append(guard.enqueued_ms), pass_guard=True,
        prefix=prefix, heartbeat_timeout=0.4,
    )  # fmt: skip
    entry = Schedule(r, prefix=prefix).add("tick", queue, {}, every=0.1)
    with running(worker):
        wait_for(lambda: len(handled) >= 5, timeout=15)
    assert min(handled) == entry.next_due_ms
    assert_each_tick_once(handled, 100)


def test_a_gc_pass_pushes_due_ticks(r: redis.Redis, prefix: str, queue: str) -> None:
    entry = Schedule(r, prefix=prefix).add("tick", queue, {}, every=0.05)
    time.sleep(0.1)
    assert GarbageCollector(r, queue, prefix=prefix).collect().promoted == 1
    assert ticks_in(r, queue, prefix) == [entry.next_due_ms]


@pytest.mark.slow
def test_three_scheduler_processes_push_each_tick_exactly_once(
    r: redis.Redis, redis_url: str, prefix: str, queue: str
) -> None:
    Schedule(r, prefix=prefix).add("tick", queue, {"n": 1}, every=0.1)
    args = ["scheduler", "--interval", "0.05", "--redis-url", redis_url, "--prefix", prefix]
    with contextlib.ExitStack() as stack:
        schedulers = [stack.enter_context(started(args, stderr=subprocess.PIPE)) for _ in range(3)]
        wait_for(lambda: len(ticks_in(r, queue, prefix)) >= 10, timeout=30)
        time.sleep(2.0)
        for p in schedulers:
            p.send_signal(signal.SIGTERM)
        logs = [p.communicate(timeout=15)[1] for p in schedulers]
        assert [p.returncode for p in schedulers] == [0, 0, 0], logs
    assert not any("Traceback" in text for text in logs), logs
    ticks = ticks_in(r, queue, prefix)
    (listed,) = Schedule(r, prefix=prefix).list()
    assert_each_tick_once(ticks, 100)
    # Every tick from the first to the last one pushed, save those a late pass collapsed.
    assert len(ticks) <= (listed.next_due_ms - min(ticks)) // 100
    assert len(ticks) >= 20  # about 30 on an idle machine


def test_entries_of_queues_on_three_cluster_nodes_are_added_moved_pushed_and_removed(
    cluster: RedisCluster,  # noqa: F811 (the fixture)
) -> None:
    prefix = f"sched-{uuid.uuid4().hex[:10]}"
    sched = Schedule(cluster, prefix=prefix)
    queues = [f"q{i}" for i in range(6)]  # their slots spread over the three nodes
    for i, q in enumerate(queues):
        sched.add(f"e{i}", q, {"i": i}, every=0.1)
    sched.add("e0", "q5", {"moved": True}, every=0.1)
    time.sleep(0.15)
    assert sched.promote() == 6
    assert sorted((e.name, e.queue) for e in sched.list()) == [("e0", "q5")] + [
        (f"e{i}", q) for i, q in enumerate(queues) if i
    ]
    assert [Queue(cluster, q, prefix=prefix).stats().waiting for q in queues] == [0, 1, 1, 1, 1, 2]
    assert sched.remove("e3") is True and sched.remove("e3") is False


# -- whatever could write the keys ---------------------------------------------------------


def test_an_entry_stored_unreadable_stops_and_says_why_and_the_others_go_on(
    r: redis.Redis, prefix: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    sched = Schedule(r, prefix=prefix)
    sched.add("good", queue, {"ok": True}, every=0.05)
    sched.add("bad", queue, {"ok": False}, every=0.05)
    k = QueueKeys(queue, prefix)
    r.hset(k.schedule, "bad", b"\xc1 not msgpack")
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="orizuru_py.schedule"):
        assert sched.promote() == 1
    assert "periodic entry 'bad'" in caplog.text
    assert r.zscore(k.schedule_due, "bad") is None
    entries = {e.name: e for e in sched.list()}
    assert entries["bad"].next_due_ms is None and "msgpack" in (entries["bad"].error or "")
    assert entries["good"].error is None and entries["good"].next_due_ms is not None
    sched.add("bad", queue, {"ok": "again"}, every=0.05)  # added again: it runs again
    time.sleep(0.1)
    assert sched.promote() == 2


def test_a_queue_key_of_the_wrong_type_makes_a_pass_push_and_change_nothing(
    r: redis.Redis, prefix: str, queue: str
) -> None:
    sched = Schedule(r, prefix=prefix)
    entry = sched.add("tick", queue, {}, every=0.05)
    k = QueueKeys(queue, prefix)
    r.set(k.queue, b"not a list")
    time.sleep(0.1)
    assert sched.promote() == 0
    assert r.zscore(k.schedule_due, "tick") == entry.next_due_ms
    assert r.get(k.queue) == b"not a list"


def test_a_foreign_value_in_the_schedule_keys_never_stops_a_consumer(
    r: redis.Redis, prefix: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    k = QueueKeys(queue, prefix)
    r.set(k.schedule_due, b"not a sorted set")
    orizuru_py.Producer(r, queue, prefix=prefix).push({"n": 1})
    consumer = orizuru_py.Consumer(r, queue, prefix=prefix, heartbeat_timeout=0.4)
    with caplog.at_level(logging.WARNING, logger="orizuru_py.schedule"), consumer:
        guard = consumer.next(timeout=5)
        assert guard is not None and guard.payload == {"n": 1}
        assert guard.ack() is True
        time.sleep(0.3)  # beats meet the foreign value, log it, and go on
        assert consumer.next(timeout=0) is None
    assert "could not push due periodic messages" in caplog.text
    assert r.get(k.schedule_due) == b"not a sorted set"


def test_a_name_in_the_index_no_queue_could_have_is_passed_over_and_logged_once(
    r: redis.Redis, prefix: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = f"a{{{uuid.uuid4().hex}}}"
    r.sadd(schedules(prefix), bad, "\x1b[31m")
    sched = Schedule(r, prefix=prefix)
    sched.add("tick", queue, {}, every=0.05)
    time.sleep(0.1)
    with caplog.at_level(logging.WARNING, logger="orizuru_py.schedule"):
        assert sched.promote() == 1
        assert [e.name for e in sched.list()] == ["tick"]
    assert caplog.text.count(bad) == 1


def test_a_scheduler_wakes_when_an_entry_is_due_and_stops_promptly_whatever_its_interval(
    r: redis.Redis, schedule_of: Callable[..., Any], prefix: str, queue: str
) -> None:
    sched = schedule_of(r, prefix=prefix)
    sched.add("tick", queue, {}, every=0.1)
    running = sched.start(interval=30.0)  # new entries seen every 30 s; known ones when due
    wait_for(lambda: len(ticks_in(r, queue, prefix)) >= 3, timeout=15)
    stopped = time.monotonic()
    sched.stop()
    running.join(10)
    assert not running.is_alive()
    assert time.monotonic() - stopped < 5.0
    assert_each_tick_once(ticks_in(r, queue, prefix), 100)


# -- the command line ----------------------------------------------------------------------


def test_the_cli_adds_lists_and_removes_entries(redis_url: str, prefix: str, queue: str) -> None:
    common = ["--redis-url", redis_url, "--prefix", prefix]
    added = orizuru(
        "schedule", "add", "nightly", queue, "--cron", "0 3 * * *", "--tz", BERLIN,
        "--payload", '{"kind": "nightly"}', *common,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"nightly: to {queue}, 0 3 * * * (Europe/Berlin), next due ")
    assert orizuru("schedule", "add", "ping", queue, "--every", "10", *common).returncode == 0
    table = orizuru("schedule", "list", *common).stdout.splitlines()
    assert table[0].split() == ["entry", "queue", "cadence", "next", "due", "payload"]
    assert table[1].split()[:4] == ["ping", queue, "every", "10s"]
    assert "{'kind': 'nightly'}" in table[2]
    doc = json.loads(orizuru("schedule", "list", "--json", *common).stdout)
    assert [(e["name"], e["every"], e["payload"]) for e in doc["schedules"]] == [
        ("ping", 10.0, None),
        ("nightly", None, {"kind": "nightly"}),
    ]
    assert orizuru("schedule", "remove", "ping", *common).stdout == "removed ping\n"
    gone = orizuru("schedule", "remove", "ping", *common)
    assert gone.returncode == 1
    assert (
        one_error_line(gone)
        == f"orizuru: error: no periodic entry named 'ping' (prefix {prefix!r})"
    )


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["add", "x", "q", "--cron", "61 * * * *"], "cron '61 * * * *' is not a valid expression"),
        (["add", "x", "q", "--cron", "0 3 * * *", "--tz", "Mars/Olympus"], "no time zone"),
        (["add", "x", "q", "--every", "1", "--payload", "{"], "--payload is not JSON"),
        (["add", "x"], "schedule add needs QUEUE"),
        (["list", "x"], "schedule list takes no NAME"),
        (["remove"], "schedule remove needs NAME"),
    ],
)
def test_a_bad_schedule_command_is_one_error_line(
    redis_url: str, prefix: str, args: list[str], problem: str
) -> None:
    done = orizuru("schedule", *args, "--redis-url", redis_url, "--prefix", prefix)
    assert done.returncode == 2
    assert problem in one_error_line(done)


def test_stats_shows_the_entries_with_their_next_due_time(
    r: redis.Redis, redis_url: str, prefix: str, queue: str
) -> None:
    sched = Schedule(r, prefix=prefix)
    sched.add("nightly", queue, {"kind": "nightly"}, cron="0 3 * * *")
    sched.add("ping", f"{queue}-other", {}, every=30.0)
    common = ["--redis-url", redis_url, "--prefix", prefix]
    text = orizuru("stats", *common).stdout.splitlines()
    ping = next(line for line in text if line.startswith("ping "))
    assert ping.split()[2:5] == ["every", "30s", "in"]
    assert any(line.startswith("nightly ") and "0 3 * * * (UTC)" in line for line in text)
    doc = json.loads(orizuru("stats", queue, "--json", *common).stdout)
    (entry,) = doc["schedules"]  # of the queue asked for only
    assert (entry["name"], entry["cadence"]) == ("nightly", "0 3 * * * (UTC)")
    assert entry["next_due_ms"] == sched.list()[1].next_due_ms
