"""The JSON API: its documents, its bounds, and who may act through it."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import redis

from orizuru_py import Consumer, Producer, Queue
from orizuru_py.ops.dashboard.app import ACTIONS, PAGE, Dashboard, Settings
from orizuru_py.ops.dashboard.history import History
from orizuru_py.ops.dashboard.security import exposure_refusal
from orizuru_py.stats import QueueStats
from tests.support import counting_client, wait_for

from .conftest import dead_letter, push
from .served import Served

MOVING = {"oldest_waiting_s", "last_beat_s", "uptime_s", "acked_per_s", "failed_per_s"}


def steady(doc: Any) -> Any:
    """A stats document without the figures that move with the clock."""
    if isinstance(doc, dict):
        return {k: steady(v) for k, v in doc.items() if k not in MOVING}
    if isinstance(doc, list):
        return [steady(v) for v in doc]
    return doc


def basic(password: str, user: str = "ops") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_api_queues_is_the_stats_json_document_of_every_known_queue(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": i} for i in range(3)])
    push(r, prefix, "reports", [{"n": 1}])
    consumer = Consumer(r, "reports", prefix=prefix, name="reporter")
    assert consumer.next(timeout=5) is not None
    dashboard = serve()

    status, doc = dashboard.call("/api/queues")

    expected = [s.to_json() for s in Queue.stats_of(r, ["emails", "reports"], prefix)]
    assert status == 200
    assert steady(doc["queues"]) == steady(expected)
    assert (doc["total"], doc["offset"], doc["more"], doc["totals"]["waiting"]) == (2, 0, False, 3)
    assert [(q["queue"], q["waiting"], q["in_flight"]) for q in doc["queues"]] == [
        ("emails", 3, 0),
        ("reports", 0, 1),
    ]
    assert dashboard.call("/api/queues/reports")[1]["consumers"][0]["name"] == consumer.id
    consumer.close()


def test_an_unknown_queue_is_a_404_and_a_malformed_name_a_400(
    serve: Callable[..., Served], prefix: str
) -> None:
    dashboard = serve()
    assert dashboard.call("/api/queues/nosuch")[0] == 404
    assert dashboard.act("/api/actions/pause/nosuch")[0] == 404
    assert dashboard.call("/api/queues/a%7Bb%7D")[0] == 400


def test_messages_come_in_pages_of_50_in_the_order_they_will_be_taken(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    ids = push(r, prefix, "bulk", [{"n": i} for i in range(120)])
    dashboard = serve()

    first = dashboard.call("/api/messages/bulk?where=waiting")[1]
    last = dashboard.call("/api/messages/bulk?where=waiting&offset=100")[1]

    assert PAGE == 50
    assert [m["id"] for m in first["messages"]] == ids[:50] and first["more"] is True
    assert [m["id"] for m in last["messages"]] == ids[100:] and last["more"] is False
    assert first["messages"][0]["payload"] == '{\n  "n": 0\n}'
    assert dashboard.call("/api/messages/bulk?where=inbox")[0] == 400
    assert dashboard.call("/api/messages/bulk?offset=-1")[0] == 400
    assert dashboard.call("/api/messages/bulk?offset=x")[0] == 400


def test_a_payload_is_cut_and_a_non_json_one_is_shown_in_python_notation(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    long_text = list(range(1000, 3000))  # 6 KB stored, 16,000 characters pretty-printed
    push(r, prefix, "odd", [{"blob": b"\x00\xff", 1: "int key"}, long_text, "x" * 30_000])
    dashboard = serve()

    odd, long, big = dashboard.call("/api/messages/odd")[1]["messages"]

    assert odd["payload"] == "{'blob': b'\\x00\\xff', 1: 'int key'}"
    assert odd["truncated"] is False and odd["note"] is None
    assert long["truncated"] is True and len(long["payload"]) == 10_000
    assert long["note"].startswith("the first 10,000 characters")
    assert big["truncated"] is True and big["payload"].startswith("b'\\xdau0xxx")
    assert big["size"] > 30_000 and big["note"].startswith("the first 8,192 of 30,0")


def test_an_action_without_the_csrf_token_or_with_a_wrong_one_is_refused(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": 1}])
    dashboard = serve()
    q = Queue(r, "emails", prefix=prefix)

    missing = dashboard.call("/api/actions/pause/emails", body={})
    wrong = dashboard.call("/api/actions/pause/emails", body={}, headers={"X-CSRF-Token": "x"})
    assert (missing[0], wrong[0], q.paused) == (403, 403, False)
    assert "X-CSRF-Token" in missing[1]["error"]

    token = dashboard.call("/api/csrf")[1]["token"]
    right = dashboard.call("/api/actions/pause/emails", body={}, headers={"X-CSRF-Token": token})
    assert right == (200, {"paused": True}) and q.paused


def test_read_only_refuses_every_action_and_hands_out_no_token(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": 1}])
    dashboard = serve(read_only=True)

    assert dashboard.call("/api/csrf")[0] == 403
    for action in ACTIONS:
        status, doc = dashboard.act(f"/api/actions/{action}/emails", {"confirm": "emails"})
        assert status == 403, action
        assert doc == {"error": "the dashboard is read-only"}
    assert dashboard.call("/api/queues")[0] == 200
    assert Queue(r, "emails", prefix=prefix).stats().waiting == 1


def test_a_password_is_asked_for_with_http_basic_auth(
    serve: Callable[..., Served], prefix: str
) -> None:
    dashboard = serve(password="correct horse")

    assert dashboard.call("/api/queues")[0] == 401
    assert dashboard.call("/api/queues", headers=basic("wrong"))[0] == 401
    assert dashboard.call("/api/queues", headers=basic("correct horse"))[0] == 200
    assert dashboard.call("/", headers=basic("correct horse", user="anyone"))[0] == 200


def test_a_page_asked_for_under_a_foreign_host_name_is_refused_while_bound_to_loopback(
    serve: Callable[..., Served], prefix: str
) -> None:
    """A DNS-rebinding page would ask under its own name: it must read nothing."""
    dashboard = serve()
    assert dashboard.call("/api/queues", headers={"Host": "evil.example:9181"})[0] == 400
    assert dashboard.call("/api/queues", headers={"Host": "localhost:9181"})[0] == 200


def test_every_response_carries_a_policy_that_runs_no_inline_script(
    serve: Callable[..., Served], prefix: str
) -> None:
    dashboard = serve()
    with urllib.request.urlopen(dashboard.url + "/queues/emails", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        page = response.read().decode()
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert '"queue": "emails"' in page


def test_purge_needs_the_queue_name_as_confirmation(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": i} for i in range(3)])
    dead_letter(r, prefix, "emails", "bounced")
    dashboard = serve()

    assert dashboard.act("/api/actions/purge/emails", {"confirm": "other"})[0] == 400
    assert dashboard.act("/api/actions/purge/emails", {"confirm": "emails"}) == (
        200,
        {"purged": 2},
    )
    assert Queue(r, "emails", prefix=prefix).stats().dead == 1
    assert dashboard.act("/api/actions/purge/emails", {"confirm": "emails", "dead": True}) == (
        200,
        {"purged": 1},
    )


def test_one_message_is_requeued_deleted_or_cancelled_by_id_and_a_gone_one_is_a_404(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    a, b = push(r, prefix, "jobs", [{"n": 1}, {"n": 2}])
    later = Producer(r, "jobs", prefix=prefix).push({"n": 3}, delay=600)
    dead_letter(r, prefix, "jobs", "boom")  # a
    dashboard = serve()
    q = Queue(r, "jobs", prefix=prefix)

    assert dashboard.act("/api/actions/requeue/jobs", {"id": a}) == (
        200,
        {"requeued": 1, "garbage": 0},
    )
    assert dashboard.act("/api/actions/requeue/jobs", {"id": a})[0] == 404
    assert dashboard.act("/api/actions/delete/jobs", {"id": later, "where": "delayed"})[0] == 200
    assert dashboard.act("/api/actions/cancel/jobs", {"id": b}) == (200, {"cancelled": True})
    assert dashboard.act("/api/actions/delete/jobs", {"id": "nope", "where": "dead"})[0] == 404
    assert dashboard.act("/api/actions/delete/jobs", {"where": "dead"})[0] == 400
    assert dashboard.act("/api/actions/explode/jobs")[0] == 404
    stats = q.stats()
    assert (stats.dead, stats.delayed, stats.cancelled) == (0, 0, 1)
    assert [m.id for m in q.peek(10)] == [a]


def test_requeue_without_an_id_revives_every_dead_letter(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "jobs", [{"n": i} for i in range(3)])
    dead_letter(r, prefix, "jobs", "boom", n=3)
    dashboard = serve()

    assert dashboard.act("/api/actions/requeue/jobs") == (200, {"requeued": 3, "garbage": 0})
    assert Queue(r, "jobs", prefix=prefix).stats().waiting == 3


def test_the_overview_costs_three_round_trips_however_many_queues(
    redis_url: str, r: redis.Redis, prefix: str
) -> None:
    for i in range(100):
        push(r, prefix, f"q{i:03}", [{"n": i}] * 2)
    consumers = [Consumer(r, f"q{i:03}", prefix=prefix) for i in range(0, 100, 5)]
    for consumer in consumers:
        assert consumer.next(timeout=5) is not None
    client, trips = counting_client(redis_url)
    dashboard = Dashboard(client, Settings(prefix=prefix))
    dashboard.overview()  # loads the script that reads the next message's age
    before = trips.here()

    doc = dashboard.overview()

    assert len(doc["queues"]) == 100
    assert sum(q["in_flight"] for q in doc["queues"]) == 20
    assert trips.here() - before == 3  # SMEMBERS, the counts of all, the consumers' list lengths
    client.close()
    for consumer in consumers:
        consumer.close()


def test_history_samples_every_queue_and_their_sum(
    serve: Callable[..., Served], r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "a", [{"n": 1}] * 2)
    push(r, prefix, "b", [{"n": 1}] * 3)
    dashboard = serve(sample_s=0.05)

    total = wait_for(lambda: (h := dashboard.call("/api/history")[1])["t"] and h)
    one = dashboard.call("/api/history?queue=b")[1]

    assert total["waiting"][-1] == 5 and one["waiting"][-1] == 3
    assert total["interval_s"] == 0.05 and total["size"] == 360


def test_the_history_ring_keeps_its_size_and_skips_a_queue_absent_from_a_sample() -> None:
    history = History(size=3)
    for t in range(5):
        history.add(t, [_stats("a", t)] + ([_stats("b", 10)] if t == 4 else []))

    assert history.series("a")["t"] == [2, 3, 4]
    assert history.series("a")["waiting"] == [2, 3, 4]
    assert (history.series("b")["t"], history.series("b")["waiting"]) == ([4], [10])
    assert history.series()["waiting"] == [2, 3, 14]
    assert history.series("nosuch")["t"] == []


def _stats(name: str, waiting: int) -> QueueStats:
    return QueueStats(name, waiting, 0, 0, 0, 0, 0, False, None, 0, 0, [])


@pytest.mark.parametrize(
    ("host", "read_only", "password", "warns"),
    [
        ("127.0.0.1", False, None, False),
        ("localhost", False, None, False),
        ("::1", False, None, False),
        ("0.0.0.0", False, None, True),
        ("0.0.0.0", True, None, False),
        ("192.0.2.7", False, "pw", False),
    ],
)
def test_binding_beyond_loopback_with_actions_and_no_password_is_refused(
    host: str, read_only: bool, password: str | None, warns: bool
) -> None:
    assert (exposure_refusal(host, read_only, password) is not None) is warns
