"""A dashboard served by uvicorn in a thread, a headless Chromium, and queues to show.

Each test gets its own key prefix, so the overview lists only the queues it made.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import Browser, Page, sync_playwright

from orizuru_py import Consumer, Producer
from orizuru_py.ops.dashboard.app import Settings, create_app
from tests.dashboard.served import Served
from tests.support import debian_package

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Set to a directory to keep the screenshots the browser tests take (they land in a temp dir).
SCREENSHOTS = os.environ.get("ORIZURU_SCREENSHOTS")


@pytest.fixture
def prefix() -> str:
    return f"dash-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def serve(r: redis.Redis, prefix: str) -> Iterator[Callable[..., Served]]:
    """serve(read_only=..., ...) starts a dashboard over this test's prefix (and over
    ``client`` instead of ``r`` when given)."""
    started: list[Served] = []

    def start(client: redis.Redis | None = None, **settings: Any) -> Served:
        settings = {"refresh_s": 0.25, "sample_s": 0.2, **settings}
        served = Served(create_app(client or r, Settings(prefix=prefix, **settings)))
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One browser for this package, closed when it ends: a live sync Playwright leaves its
    event loop running in the main thread, where later tests call asyncio.run()."""
    chromium = debian_package("chromium", CHROMIUM)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Page, str], Path]:
    """shots(page, name): a full-page screenshot in a temp dir (and in $ORIZURU_SCREENSHOTS)."""
    folder = tmp_path_factory.mktemp("screenshots")

    def take(page: Page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(SCREENSHOTS) / path.name)
        return path

    return take


def push(r: redis.Redis, prefix: str, queue: str, payloads: list[Any]) -> list[str]:
    return Producer(r, queue, prefix=prefix).push_many(payloads)


def dead_letter(r: redis.Redis, prefix: str, queue: str, reason: str, n: int = 1) -> list[str]:
    """Take ``n`` messages and dead-letter them with ``reason``."""
    consumer = Consumer(r, queue, prefix=prefix)
    ids = []
    for _ in range(n):
        guard = consumer.next(timeout=5)
        assert guard is not None
        guard.dead_letter(reason)
        ids.append(guard.id)
    consumer.close()
    return ids


def vanished_consumer(r: redis.Redis, prefix: str, queue: str, name: str, take: int) -> Consumer:
    """A consumer that takes ``take`` messages and stops beating, as if its process died;
    it is overdue 0.2 s later."""
    consumer = Consumer(r, queue, prefix=prefix, name=name, heartbeat_timeout=0.2)
    got = consumer.next_batch(take, timeout=5)
    assert len(got) == take
    consumer.stop_heartbeat()
    return consumer
