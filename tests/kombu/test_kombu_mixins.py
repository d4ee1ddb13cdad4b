"""kombu's own integration mixins (from its sdist, at the pinned version) against
``orizuru://``. Two of kombu's BasePriority tests fail by design, as they do on kombu's
own Redis transport, which overrides them: priorities follow kombu's Redis transport
(a lower number is taken first) and one ``drain_events`` delivers one message; kombu's
Redis variants of those two run instead."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import kombu
import pytest
import redis

import orizuru_py.kombu  # noqa: F401  (registers orizuru://)
from tests.kombu.sdist import kombu_tests

sys.path.insert(0, str(kombu_tests()))
from t.integration import common
from t.integration.test_redis import test_RedisPriority


def orizuru_url(redis_url: str) -> str:
    parsed = urlparse(redis_url)
    return parsed._replace(scheme="orizuru").geturl()


@pytest.fixture
def options(admin: redis.Redis) -> Iterator[dict[str, str]]:
    """A prefix of its own for each test, for kombu's keys and ours (kombu's tests use
    fixed queue names, and runs share a server); its keys are deleted after it."""
    tag = f"kt{uuid.uuid4().hex[:8]}"
    yield {"prefix": tag, "global_keyprefix": f"{tag}:"}
    for key in admin.scan_iter(match=f"{tag}:*", count=1000):
        admin.delete(key)


@pytest.fixture
def connection(redis_url: str, options: dict[str, str]) -> Iterator[kombu.Connection]:
    conn = kombu.Connection(orizuru_url(redis_url), transport_options=options)
    yield conn
    conn.release()


@pytest.fixture
def invalid_connection() -> kombu.Connection:
    return kombu.Connection("orizuru://127.0.0.1:1")


@pytest.fixture
def failover_connection(redis_url: str, options: dict[str, str]) -> Iterator[kombu.Connection]:
    """A dead first URL, then the live one: kombu switches by the alias."""
    conn = kombu.Connection(f"orizuru://127.0.0.1:1;{orizuru_url(redis_url)}",
                            transport_options=options)  # fmt: skip
    yield conn
    conn.release()


class TestBasicFunctionality(common.BasicFunctionality):
    pass


class TestExchangeTypes(common.BaseExchangeTypes):
    pass


class TestMessage(common.BaseMessage):
    pass


class TestTimeToLive(common.BaseTimeToLive):
    pass


class TestEventLoop(common.BaseEventLoop):
    pass


class TestFailover(common.BaseFailover):
    pass


class TestPriority(common.BasePriority):
    PRIORITY_ORDER = "desc"

    @pytest.mark.xfail(strict=True, reason="by design: one drain_events delivers one message")
    def test_publish_consume(self, connection: kombu.Connection) -> None:
        super().test_publish_consume(connection)

    @pytest.mark.xfail(strict=True, reason="by design: one drain_events delivers one message")
    def test_publish_requeue_consume(self, connection: kombu.Connection) -> None:
        super().test_publish_requeue_consume(connection)


class TestRedisPriority(test_RedisPriority):
    """kombu's Redis transport's own variants of the two tests above."""
