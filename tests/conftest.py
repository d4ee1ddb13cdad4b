"""One real server per test session: the embedded Valkey, or ``REDIS_URL`` if set.

Each test gets its own queue name, so runs and tests never share keys.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from orizuru_py.embedded import EmbeddedServer


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        redis.Redis.from_url(url).ping()
        yield url
        return
    with EmbeddedServer() as server:
        yield server.url


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"
