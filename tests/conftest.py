"""One real server per test session: the embedded Valkey, or ``REDIS_URL`` if set.

Each test gets its own queue name, so runs and tests never share keys.

Two switches run the contract suite (``CONTRACT``: what the queue promises, on both APIs)
under a deployment's constraints, and only it: ``ORIZURU_TLS=1`` on the system
``redis-server`` serving TLS only, with certificates made for the run (``rediss://``);
``ORIZURU_ACL=1`` as a user with exactly the README's ACL rule (tests look at keys the
rule does not open, such as with ``SCAN``, through ``admin``).

A test that needs a Debian package (chromium, faketime) skips with one line naming it
when it is missing; ``ORIZURU_NO_SKIP=1`` (CI, which installs them) turns any skip into
a failure, so nothing is left out silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orizuru_py.ops.embedded import EmbeddedServer
from tests.acl import readme_user
from tests.apis import Api
from tests.servers import TlsServer

TLS = bool(os.environ.get("ORIZURU_TLS"))
NO_SKIP = bool(os.environ.get("ORIZURU_NO_SKIP"))
ACL = bool(os.environ.get("ORIZURU_ACL"))
CONTRACT = {
    "test_producer.py",
    "test_consumer.py",
    "test_guard.py",
    "test_collector.py",
    "test_garbage.py",
    "test_delays.py",
    "test_recovery.py",
    "test_keyspace.py",
    "test_worker.py",
    "test_worker_edges.py",
    "test_poison.py",
    "test_job_control.py",
    "test_queue.py",
    "test_readme.py",
    "test_asyncio.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ORIZURU_TLS or ORIZURU_ACL, only the contract suite runs."""
    if not (TLS or ACL):
        return
    here = Path(__file__).parent
    contract = [i for i in items if i.path.parent == here and i.path.name in CONTRACT]
    config.hook.pytest_deselected(items=[i for i in items if i not in contract])
    items[:] = contract


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | pytest.TestReport:
    """Under ORIZURU_NO_SKIP a skipped test fails, saying why it would have skipped."""
    report: pytest.TestReport = yield
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, and ORIZURU_NO_SKIP forbids skips: {reason}"
    return report


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """The session's server, as its default user."""
    url = os.environ.get("REDIS_URL")
    if TLS:
        with TlsServer() as tls:
            yield tls.url
    elif url:
        redis.Redis.from_url(url).ping()
        yield url
    else:
        with EmbeddedServer() as server:
            yield server.url


@pytest.fixture(scope="session")
def redis_url(admin_url: str) -> Iterator[str]:
    """What the tests connect as: the default user, or under ORIZURU_ACL the README's."""
    if not ACL:
        yield admin_url
        return
    admin = redis.Redis.from_url(admin_url)
    with readme_user(admin) as url:
        yield url
    admin.close()


@pytest.fixture
def admin(admin_url: str) -> Iterator[redis.Redis]:
    """A client that may do anything: for looking at keys beyond the ACL rule."""
    client = redis.Redis.from_url(admin_url)
    yield client
    client.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["blocking", "asyncio"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    """The API a contract test runs on: each test taking it runs once on each."""
    chosen = Api(request.param)
    yield chosen
    chosen.close()
