"""The pages in a real browser: what an operator sees, and what a hostile payload cannot do."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from playwright.sync_api import Page, expect

from orizuru_py import Consumer, GarbageCollector, Producer, Queue, RateLimit, Schedule, Worker
from orizuru_py.keys import QueueKeys
from tests.support import Proxy, running, wait_for

from .conftest import dead_letter, push, vanished_consumer
from .served import Served

Shots = Callable[[Page, str], Path]
DASH = "\u2013"  # the page writes ranges and missing values with an en dash


def cell(page: Page, queue: str, column: int) -> Any:
    return page.locator(f'tr[data-queue="{queue}"] td:nth-child({column})')


def test_overview_lists_every_queue_and_follows_pushes_and_acks_without_a_reload(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, shots: Shots
) -> None:
    push(r, prefix, "emails", [{"to": f"user{i}@example.com"} for i in range(4)])
    dead_letter(r, prefix, "emails", "smtp: 550 mailbox unavailable")
    push(r, prefix, "reports", [{"report": "daily"}, {"report": "weekly"}])
    Producer(r, "reports", prefix=prefix).push({"report": "monthly"}, delay=600)
    vanished_consumer(r, prefix, "reports", "report-builder", take=1)
    Queue(r, "reports", prefix=prefix).pause()
    dashboard = serve()

    page.goto(dashboard.url + "/")
    expect(page.locator("tbody tr[data-queue]")).to_have_count(2)
    expect(cell(page, "emails", 2)).to_have_text("3")  # waiting
    expect(cell(page, "emails", 6)).to_have_text("1")  # dead
    expect(cell(page, "reports", 2)).to_have_text("1")
    expect(cell(page, "reports", 3)).to_have_text("1")  # delayed
    expect(cell(page, "reports", 4)).to_have_text("1")  # in flight, with the vanished one
    expect(cell(page, "reports", 7)).to_have_text("0 1 overdue")
    expect(cell(page, "reports", 11)).to_have_text("paused")
    page.evaluate("window.__sameDocument = true")

    push(r, prefix, "emails", [{"to": "late@example.com"}] * 5)
    expect(cell(page, "emails", 2)).to_have_text("8")
    consumer = Consumer(r, "emails", prefix=prefix)
    consumer.ack_many(consumer.next_batch(8, timeout=5))
    expect(cell(page, "emails", 2)).to_have_text("0")
    expect(cell(page, "emails", 7)).to_contain_text("1")  # the consumer, live
    consumer.close()
    assert page.evaluate("window.__sameDocument") is True
    shots(page, "overview")


def orders(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"order": 1000 + i, "customer": f"c-{(i * 37) % 211}", "amount_cents": 1250 + 17 * i}
        for i in range(start, start + n)
    ]


def test_queue_page_marks_the_overdue_consumer_and_shows_gc_totals_latency_and_pages(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, shots: Shots
) -> None:
    q = "payments"
    push(r, prefix, q, orders(2))
    dead_letter(r, prefix, q, "ValueError: card declined (attempt 5 of 5)", n=2)
    push(r, prefix, q, orders(1, 2))
    rejecting = Consumer(r, q, prefix=prefix, name="billing-sync")
    guard = rejecting.next(timeout=5)
    assert guard is not None
    guard.reject()
    rejecting.close()
    push(
        r,
        prefix,
        q,
        [{**o, "items": [{"sku": f"SKU-{k}", "qty": k} for k in range(9)]} for o in orders(70, 3)],
    )
    producer = Producer(r, q, prefix=prefix)
    producer.push({"order": 2001, "retry_of": 1042}, delay=300)
    producer.push({"order": 2002, "retry_of": 1043}, delay=900)
    vanished_consumer(r, prefix, q, "worker-a", take=2)
    gc = GarbageCollector(r, q, prefix=prefix)
    assert wait_for(lambda: gc.collect().consumers_reaped) == 1
    vanished_consumer(r, prefix, q, "worker-b", take=3)
    live = Consumer(r, q, prefix=prefix, name="api-7")
    live.ack_many(live.next_batch(4, timeout=5))
    held = live.next(timeout=5)
    assert held is not None
    dashboard = serve()

    page.goto(f"{dashboard.url}/queues/{q}")
    overdue = page.locator("tr.overdue")
    expect(overdue).to_have_count(1)
    expect(overdue).to_contain_text("worker-b")
    expect(overdue).to_contain_text("OVERDUE")
    expect(overdue.locator("td:nth-child(3)")).to_have_text("3")  # held
    live_row = page.locator('tr[data-consumer^="api-7@"]')
    expect(live_row).to_contain_text("live")
    expect(live_row.locator("td:nth-child(6)")).to_have_text("4")  # handled
    tiles = page.locator(".tile")
    expect(tiles.filter(has_text="GC recovered")).to_contain_text("from 1 reaped consumers")
    expect(tiles.filter(has_text="GC recovered").locator(".value")).to_have_text("2")
    expect(tiles.filter(has_text="Latency").locator(".value")).not_to_have_text(DASH)
    waiting = Queue(r, q, prefix=prefix).stats().waiting
    expect(page.locator(".toolbar")).to_contain_text(f"1{DASH}50 of {waiting}")
    expect(page.locator("tbody tr[data-id]")).to_have_count(50)
    shots(page, "queue")

    page.get_by_role("button", name="Next").click()
    expect(page.locator(".toolbar")).to_contain_text(f"51{DASH}{waiting} of {waiting}")
    page.locator('[data-tab="delayed"]').click()
    expect(page.locator("tbody tr[data-id]")).to_have_count(2)
    expect(page.locator("tbody tr[data-id]").first).to_contain_text("in 4 min")
    page.locator('[data-tab="dead"]').click()
    expect(page.locator("tbody tr[data-id]")).to_have_count(2)
    expect(page.locator(".reason").first).to_have_text("ValueError: card declined (attempt 5 of 5)")
    shots(page, "queue-dead")
    live.close()


def test_a_dead_letter_is_requeued_by_a_click_and_the_counts_follow(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "thumbnails", [{"image": "a.png"}, {"image": "b.png"}])
    first, _ = dead_letter(r, prefix, "thumbnails", "PIL: cannot identify image file", n=2)
    dashboard = serve()

    page.goto(f"{dashboard.url}/queues/thumbnails?where=dead")
    row = page.locator(f'tr[data-id="{first}"]')
    row.get_by_role("button", name="Requeue").click()
    expect(page.locator('[data-tab="dead"] .count')).to_have_text("1")
    expect(page.locator('[data-tab="waiting"] .count')).to_have_text("1")
    expect(row).to_have_count(0)
    stats = Queue(r, "thumbnails", prefix=prefix).stats()
    assert (stats.dead, stats.waiting) == (1, 1)


HOSTILE = "<img src=x onerror=alert(1)>"
FLAG = "<img src=x onerror=\"window.__xss=1;document.title='pwned'\">"


def test_a_hostile_payload_reason_and_queue_name_render_as_text_and_run_nothing(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, shots: Shots
) -> None:
    q = "</script><svg/onload=window.__xss=1>"  # no spaces or braces: a valid queue name
    push(r, prefix, q, [HOSTILE, {"note": FLAG, "html": "<script>window.__xss=1</script>"}])
    push(r, prefix, q, [HOSTILE])
    dead_letter(r, prefix, q, FLAG)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    dashboard = serve()

    page.goto(dashboard.url + "/")
    expect(page.locator("td.name a")).to_have_text(q)
    page.locator("td.name a").click()
    expect(page.locator("h1")).to_have_text(q)
    expect(page.locator("code.preview").filter(has_text=HOSTILE)).to_have_text(f'"{HOSTILE}"')
    page.locator('[data-tab="dead"]').click()
    expect(page.locator(".reason")).to_have_text(FLAG)
    page.locator('[data-tab="waiting"]').click()
    page.get_by_role("button", name="expand").first.click()
    expect(page.locator("pre.payload")).to_contain_text("<script>window.__xss=1</script>")
    shots(page, "hostile")

    assert page.evaluate("window.__xss") is None
    assert page.title() == f"{q} · orizuru"
    assert page.locator("main img, main script, main svg[onload]").count() == 0
    assert dialogs == []


def test_read_only_offers_no_action_and_its_api_refuses_posts(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": 1}, {"n": 2}])
    dead_letter(r, prefix, "emails", "bounced")
    dashboard = serve(read_only=True)

    page.goto(f"{dashboard.url}/queues/emails?where=dead")
    expect(page.locator("tbody tr[data-id]")).to_have_count(1)
    expect(page.locator("#status")).to_contain_text("read-only")
    labels = page.locator("main button").all_inner_texts()
    assert not {"Requeue", "Requeue all", "Delete", "Cancel", "Pause", "Purge…"} & set(labels)
    status = page.evaluate(
        """async () => (await fetch("/api/actions/requeue/emails", {method: "POST",
            headers: {"Content-Type": "application/json"}, body: "{}"})).status"""
    )
    assert status == 403
    assert Queue(r, "emails", prefix=prefix).stats().dead == 1


def test_the_page_says_when_redis_is_unreachable_and_recovers_by_itself(
    serve: Callable[..., Served], page: Page, r: redis.Redis, redis_url: str, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": 1}])
    with Proxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url, socket_timeout=2, socket_connect_timeout=2)
        dashboard = serve(client=client)
        page.goto(dashboard.url + "/")
        expect(cell(page, "emails", 2)).to_have_text("1")

        proxy.cut()
        expect(page.locator("#status")).to_contain_text("not updating: Redis:")
        expect(cell(page, "emails", 2)).to_have_text("1")  # the last figures stay up
        proxy.restore()
        push(r, prefix, "emails", [{"n": 2}])
        expect(page.locator("#status")).to_contain_text("live", timeout=10_000)
        expect(cell(page, "emails", 2)).to_have_text("2")
        client.close()


# One evaluation finds the element and reads its style: the page redraws the pager on every
# poll, and a handle resolved before a redraw reads a detached node's empty style.
CONTRAST = """(selector) => {
  const el = document.querySelector(selector);
  const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgb(c).map((v) => v / 255)
      .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(el);
  const [a, b] = [lum(style.color), lum(style.backgroundColor)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def test_states_are_said_in_words_and_the_tabs_and_pager_are_accessible(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, shots: Shots
) -> None:
    deep: list[Any] = []
    for _ in range(1000):
        deep = [deep]
    push(r, prefix, "media", [{"ok": 1}, deep, {"blob": "z" * 20_000}])
    push(r, prefix, "media", [{"n": i} for i in range(60)])
    quiet = Consumer(r, "media", prefix=prefix, name="transcoder", heartbeat_timeout=60.0)
    assert quiet.next(timeout=5) is not None
    quiet.stop_heartbeat()
    dashboard = serve()

    page.goto(f"{dashboard.url}/queues/media")
    row = page.locator('tr[data-consumer^="transcoder@"]')
    expect(row).to_contain_text("silent")
    expect(page.locator(".tile.warn")).to_contain_text("1 silent")
    rows = page.locator("tbody tr[data-id]")
    expect(rows.nth(0)).to_contain_text("cannot show it as text")
    expect(rows.nth(1)).to_contain_text("the first 8,192 of")
    panel = page.get_by_role("tabpanel")
    expect(panel).to_have_attribute("aria-labelledby", "tab-waiting")
    for tab in page.get_by_role("tab").all():
        expect(tab).to_have_attribute("aria-controls", "messages-panel")
    prev = page.get_by_role("button", name="previous page")
    expect(prev).to_be_disabled()
    assert page.evaluate(CONTRAST, 'button[aria-label="previous page"]:disabled') >= 4.5
    shots(page, "states")

    page.locator("#tab-waiting").focus()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-delayed")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-delayed")).to_be_focused()
    quiet.close()


def test_the_overview_comes_a_page_of_queues_at_a_time(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, shots: Shots
) -> None:
    for i in range(120):
        push(r, prefix, f"tenant-{i:03}", [{"n": i}] * (1 + i % 3))
    dashboard = serve()

    page.goto(dashboard.url + "/")
    expect(page.locator("tbody tr[data-queue]")).to_have_count(100)
    expect(page.locator(".toolbar")).to_contain_text(f"1{DASH}100 of 120 queues")
    expect(page.locator(".tile").filter(has_text="Waiting").locator(".value")).to_have_text("240")
    page.get_by_role("button", name="next page").click()
    expect(page.locator("tbody tr[data-queue]")).to_have_count(20)
    expect(page.locator(".toolbar")).to_contain_text(f"101{DASH}120 of 120 queues")
    shots(page, "overview-page-2")


def test_the_overview_lists_periodic_messages_soonest_first_and_marks_the_late_and_unreadable(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, shots: Shots
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    dashboard = serve()
    page.goto(dashboard.url + "/")
    expect(page.locator("tbody tr.empty-row").first).to_be_visible()
    expect(page.locator("#schedules")).to_be_hidden()  # none yet: no card

    sched = Schedule(r, prefix=prefix)
    sched.add("leap-day", "reports", {"kind": "leap"}, cron="0 3 29 2 *", tz="Europe/Berlin")
    sched.add("ping", "pings", {}, every=600.0)
    sched.add("heartbeat", "pings", {}, every=0.3)  # nobody pushes it: late within 2 s
    sched.add("<img/src=x/onerror=window.__xss=1>", "pings", {}, every=120.0)
    sched.add("broken", "pings", {}, every=60.0)
    r.hset(QueueKeys("pings", prefix).schedule, "broken", b"\xc1 not a cadence")
    rows = page.locator("#schedules tbody tr[data-entry]")
    expect(rows).to_have_count(5)  # it appears without a reload
    order = ["heartbeat", "broken", "<img/src=x/onerror=window.__xss=1>", "ping", "leap-day"]
    for i, name in enumerate(order):  # soonest due first
        expect(rows.nth(i)).to_have_attribute("data-entry", name)
    expect(rows.nth(3)).to_contain_text(re.compile(r"every 600s\s*in (9|10) min"))
    leap = page.locator('tr[data-entry="leap-day"]')
    expect(leap).to_contain_text("0 3 29 2 * (Europe/Berlin)")
    expect(leap.locator("a")).to_have_attribute("href", "/queues/reports")
    expect(page.locator('tr[data-entry="heartbeat"] .badge.warn')).to_have_text("late")
    expect(page.locator('tr[data-entry="broken"] .badge.bad')).to_have_text("unreadable")
    expect(page.locator('tr[data-entry="broken"]')).to_contain_text("?")
    expect(page.locator('tr[data-entry="<img/src=x/onerror=window.__xss=1>"]')).to_have_count(1)
    doc = page.evaluate("async () => (await fetch('/api/schedules')).json()")
    by_name = {e["name"]: e for e in doc["schedules"]}
    assert doc["total"] == len(by_name) == 5 and "msgpack" in by_name["broken"]["error"]
    shots(page, "schedules")

    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0
    assert dialogs == []


def test_a_throttled_queue_is_marked_and_its_hostile_limiter_key_is_only_text(
    serve: Callable[..., Served], page: Page, r: redis.Redis, prefix: str, queue: str
) -> None:
    tenant = "<img src=x onerror=window.__xss=1>"
    push(r, prefix, queue, [{"tenant": tenant, "n": i} for i in range(3)])
    limit = RateLimit(1, per=60.0, key=lambda payload: payload["tenant"])
    worker = Worker(r, queue, lambda payload: None, prefix=prefix, rate_limit=limit)
    with running(worker):
        wait_for(lambda: Queue(r, queue, prefix=prefix).stats().throttled)
        dashboard = serve()
        page.goto(dashboard.url + "/")
        badge = page.locator(f'tr[data-queue="{queue}"] [data-field="throttled"]')
        expect(badge).to_have_text("throttled")
        expect(badge).to_have_attribute("title", re.compile(re.escape(tenant)))
        page.goto(dashboard.url + f"/queues/{queue}")
        expect(page.locator('[data-field="throttled"]')).to_have_text("throttled")
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img").count() == 0
