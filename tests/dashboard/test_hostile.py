"""The dashboard against what anyone who can push may send it: big payloads, thousands of
queue names, a rebinding page, deep nesting, malformed records, names with slashes.
Sizes, times and memory are asserted with wide margins; the figures before each fix
are in the comments."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import redis

from orizuru_py import Consumer, Queue
from orizuru_py.envelope import Envelope, new_id, now_ms
from orizuru_py.keys import QueueKeys, registry
from orizuru_py.ops.dashboard.history import History
from orizuru_py.stats import QueueStats
from tests.support import wait_for

from .conftest import push
from .served import Served
from .test_command import ROOT

MB = 1 << 20
AUTH = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}


def _push_big(r: redis.Redis, prefix: str, queue: str, n: int, size: int) -> list[str]:
    """``n`` messages of ``size`` bytes, straight into the list (no producer caps them)."""
    ids = [new_id() for _ in range(n)]
    payload = msgpack.packb(b"x" * size)
    raws = [Envelope(mid, now_ms(), payload).encode() for mid in ids]
    r.lpush(QueueKeys(queue, prefix).queue, *raws)
    r.sadd(registry(prefix), queue)
    return ids


def _measured(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``call()``, the seconds it took, and the most memory (MB) Python held meanwhile
    (the dashboard serves from a thread of this process)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = call()
        return result, time.monotonic() - started, tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def test_a_page_of_big_messages_reads_kilobytes(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    """Before: 12 x 50 MB took 6.3 s to 48 s and 1.3 GB of the dashboard's memory."""
    ids = _push_big(r, prefix, "big", 4, 20 * MB)
    dashboard = serve()
    assert dashboard.call("/api/queues")[0] == 200  # the scripts are loaded

    (status, doc), seconds, peak = _measured(lambda: dashboard.call("/api/messages/big"))

    assert status == 200 and [m["id"] for m in doc["messages"]] == ids
    assert all(m["truncated"] and m["size"] > 20 * MB for m in doc["messages"])
    assert len(json.dumps(doc)) < 100_000
    assert peak < 20  # read whole: 80 MB
    assert seconds < 10


def test_the_overview_reads_the_next_messages_age_not_the_message(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    """Before: LINDEX fetched the whole 50 MB message on every call (0.11 s, not 3 ms)."""
    _push_big(r, prefix, "big", 1, 30 * MB)
    dashboard = serve()
    assert dashboard.call("/api/queues")[0] == 200

    (status, doc), seconds, peak = _measured(lambda: dashboard.call("/api/queues"))

    assert status == 200 and doc["queues"][0]["oldest_waiting_s"] is not None
    assert peak < 10  # the message: 30 MB
    assert seconds < 5


def test_twenty_thousand_queue_names_cost_one_page(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    """Before: 4.7 MB in 1.35 s to 2.7 s for every poll of the overview."""
    names = [f"q{i:05d}" for i in range(20_000)]
    r.sadd(registry(prefix), *names)
    push(r, prefix, "q00003", [1, 2])
    dashboard = serve(sample_s=60)
    first = wait_for(lambda: (doc := dashboard.call("/api/queues")[1])["totals"] and doc, 60)
    assert first["totals"]["queues"] == 20_000 and first["totals"]["waiting"] == 2

    (status, doc), seconds, _ = _measured(lambda: dashboard.call("/api/queues"))

    assert status == 200 and len(doc["queues"]) == 100 and doc["more"] is True
    assert doc["total"] == 20_000 and len(json.dumps(doc)) < 200_000
    assert seconds < 1.5
    last = dashboard.call("/api/queues?offset=19950")[1]
    assert [q["queue"] for q in last["queues"]] == names[19950:] and last["more"] is False
    assert dashboard.call("/api/queues?limit=501")[0] == 400
    r.delete(registry(prefix))


def test_the_history_keeps_the_totals_and_a_bounded_set_of_queues() -> None:
    """Before: 779 MB for an hour of 20,000 queues."""
    waiting = [1000 if i == 6 else i % 7 for i in range(5000)]
    stats = [_stats(f"q{i:05d}", n) for i, n in enumerate(waiting)]
    history = History(size=50, tracked=20)

    _, _, peak = _measured(lambda: [history.add(t, iter(stats)) for t in range(50)])

    assert peak < 8  # every queue kept: 80 MB
    assert history.series()["waiting"] == [sum(waiting)] * 50
    assert history.series("q00006")["waiting"] == [1000] * 50  # the busiest
    assert history.series("q00000")["t"] == []  # idle: only in the totals


def _stats(name: str, waiting: int) -> QueueStats:
    return QueueStats(name, waiting, 0, 0, 0, 0, 0, False, None, 0, 0, [])


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:9181", "[::1].evil.example", "[::1]x", "127.0.0.1.evil.example",
     "localhost@evil.example", "localhost:9181/x", "0.0.0.0:9181"],
)  # fmt: skip
def test_a_foreign_host_is_refused_wherever_the_dashboard_is_bound(
    serve: Callable[..., Served], host: str
) -> None:
    """Before: bound to 0.0.0.0 there was no Host check, and a rebinding page purged."""
    dashboard = serve(host="0.0.0.0", password="pw")
    status, doc = dashboard.call("/api/csrf", headers={"Host": host, **AUTH})
    assert status == 400 and "--allowed-host" in doc["error"]


@pytest.mark.parametrize("host", ["localhost:9181", "127.0.0.1", "[::1]:9181", "Dash.Example"])
def test_loopback_the_bound_address_and_allowed_hosts_are_answered(
    serve: Callable[..., Served], host: str
) -> None:
    dashboard = serve(host="10.1.2.3", password="pw", allowed_hosts=("dash.example",))
    assert dashboard.call("/api/csrf", headers={"Host": host, **AUTH})[0] == 200
    assert dashboard.call("/api/csrf", headers={"Host": "10.1.2.3:9181", **AUTH})[0] == 200


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (["--host", "0.0.0.0"], "refusing to bind 0.0.0.0 with actions on and no password"),
        (["--allowed-host", "a b"], "--allowed-host: 'a b' is not a host name or address"),
    ],
)
def test_the_command_refuses_to_start_exposed_in_one_line(
    redis_url: str, prefix: str, options: list[str], error: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.dashboard.serve_child", redis_url, "--prefix", prefix,
         "--port", "1", *options],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    (line,) = done.stderr.strip().splitlines()
    assert done.returncode == 1 and line.startswith("orizuru: error: ") and error in line


def test_a_payload_nested_too_deep_degrades_alone(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    """Before: a RecursionError made the whole page a 500."""
    deep: list[Any] = []
    for _ in range(1000):
        deep = [deep]
    push(r, prefix, "deep", [deep, {"fine": True}])
    dashboard = serve()

    status, doc = dashboard.call("/api/messages/deep")

    assert status == 200
    nested, fine = doc["messages"]
    assert "cannot show it as text" in nested["payload"]
    assert fine["payload"] == '{\n  "fine": true\n}'


class _Failing(redis.Redis):
    """A client whose registry reads raise ``failures`` times an error no one expects."""

    failures = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.failures and args[0] == "SMEMBERS":
            self.failures -= 1
            raise RuntimeError("an unexpected failure")
        return super().execute_command(*args, **options)


def test_an_internal_error_still_carries_the_security_headers(
    serve: Callable[..., Served], r: redis.Redis
) -> None:
    """Before: a 500 came from outside the middleware that set them."""
    client = _Failing(connection_pool=r.connection_pool)
    client.failures = 10**9
    dashboard = serve(client=client)
    status, headers = dashboard.headers_of("/api/queues")
    assert status == 500
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


def test_one_malformed_consumer_record_hides_no_queue(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    """Before: /api/queues answered 400 or 500, so every queue disappeared."""
    push(r, prefix, "a", [1])
    push(r, prefix, "b", [2])
    keys = QueueKeys("b", prefix)
    record = {"acked_per_s": float("inf"), "handled": "abc", "pid": [1]}
    r.hset(keys.info, "bad@1", msgpack.packb(record))
    r.zadd(keys.consumers, {"bad@1": now_ms() + 60_000})
    dashboard = serve()

    status, doc = dashboard.call("/api/queues")

    assert status == 200 and [q["queue"] for q in doc["queues"]] == ["a", "b"]
    (bad,) = doc["queues"][1]["consumers"]
    assert (bad["acked_per_s"], bad["handled"], bad["pid"]) == (0.0, 0, 0)
    r.delete(keys.info, keys.consumers)


def test_the_sampler_survives_failures_and_logs_them(
    serve: Callable[..., Served], r: redis.Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: the first error that was not a RedisError stopped it for good."""
    push(r, prefix, "a", [1, 2, 3])
    client = _Failing(connection_pool=r.connection_pool)
    client.failures = 3
    with caplog.at_level(logging.ERROR, logger="orizuru_py.ops.dashboard.app"):
        dashboard = serve(client=client, sample_s=0.05)
        history = wait_for(lambda: (h := dashboard.call("/api/history")[1])["t"] and h)
    assert history["waiting"][-1] == 3
    failures = [rec for rec in caplog.records if "cannot sample" in rec.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None


def test_no_queue_name_reaches_another_queues_routes(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    """Before: a queue named x/messages answered to the messages route of x."""
    push(r, prefix, "x", [{"in": "x"}])
    push(r, prefix, "x/messages", [{"in": "x/messages"}] * 2)
    dashboard = serve()

    assert dashboard.call("/api/queues/x/messages")[1]["queue"] == "x/messages"
    assert dashboard.call("/api/queues/x")[1]["waiting"] == 1
    assert dashboard.call("/api/messages/x")[1]["messages"][0]["payload"] == '{\n  "in": "x"\n}'
    assert len(dashboard.call("/api/messages/x/messages")[1]["messages"]) == 2
    assert dashboard.act("/api/actions/pause/x/messages") == (200, {"paused": True})
    assert Queue(r, "x/messages", prefix=prefix).paused
    assert not Queue(r, "x", prefix=prefix).paused


@pytest.mark.parametrize("query", ["offset=" + "9" * 30, "offset=4294967297", "offset=1e3",
                                   "offset=%EF%BC%91", "where=inbox"])  # fmt: skip
def test_a_bad_query_is_a_400_not_a_server_error(
    serve: Callable[..., Served], r: redis.Redis, prefix: str, query: str
) -> None:
    """Before: an offset of 30 digits reached Redis and answered 503."""
    push(r, prefix, "q", [1])
    dashboard = serve()
    assert dashboard.call(f"/api/messages/q?{query}")[0] == 400


def test_a_silent_consumer_is_told_apart_before_it_is_overdue(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "q", [1])
    quiet = Consumer(r, "q", prefix=prefix, heartbeat_timeout=30.0)
    assert quiet.next(timeout=5) is not None
    quiet.stop_heartbeat()
    dashboard = serve()
    silent = wait_for(
        lambda: (c := dashboard.call("/api/queues/q")[1]["consumers"][0])["state"] == "silent" and c
    )
    assert silent["overdue"] is False and silent["timeout_s"] == 30.0
    quiet.close()
