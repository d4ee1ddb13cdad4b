"""Key layout: one hash slot per queue, a configurable prefix, and validated names."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
from redis.crc import key_slot

from orizuru_py import Consumer, GarbageCollector, Producer, QueueKeys
from orizuru_py.keys import validate_name


def _every_key(keys: QueueKeys) -> list[str]:
    return [
        *keys.all_fixed(),
        keys.processing("host-1@abc"),
        keys.processing("other:consumer@def"),
        keys.prefetch("host-1@abc"),
    ]


def test_every_key_carries_the_queue_as_its_hash_tag() -> None:
    keys = QueueKeys("emails")
    assert all("{emails}" in key for key in _every_key(keys))
    assert len(set(_every_key(keys))) == len(keys.all_fixed()) + 3 == 14


@pytest.mark.parametrize("name", ["emails", "a", "orders:eu-west", "x" * 200, "ünïcødé"])
def test_all_keys_of_a_queue_map_to_the_slot_of_its_name(name: str) -> None:
    slots = {key_slot(key.encode()) for key in _every_key(QueueKeys(name))}
    assert slots == {key_slot(name.encode())}


def test_different_queues_land_in_different_slots() -> None:
    emails, orders = QueueKeys("emails").queue, QueueKeys("orders").queue
    assert key_slot(emails.encode()) != key_slot(orders.encode())


def test_default_prefix_is_orizuru() -> None:
    assert QueueKeys("emails").queue == "orizuru:{emails}:queue"
    assert QueueKeys("emails").processing("c1") == "orizuru:{emails}:processing:c1"


def test_prefix_is_configurable() -> None:
    keys = QueueKeys("emails", prefix="app:v2")
    assert all(key.startswith("app:v2:{emails}:") for key in _every_key(keys))


def test_producer_writes_under_its_prefix() -> None:
    fake = fakeredis.FakeRedis()
    Producer(fake, "emails", prefix="app").push({"n": 1})
    assert sorted(fake.keys()) == [b"app:queues", b"app:{emails}:queue"]  # and its registry


@pytest.mark.parametrize("prefix", ["", "a{b", "a b", 5])
def test_bad_prefix_is_a_value_error(prefix: Any) -> None:
    with pytest.raises(ValueError, match="prefix"):
        QueueKeys("emails", prefix=prefix)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("{emails}", "contains '{'"),
        ("emails}", "contains '}'"),
        ("a b", "contains ' '"),
        ("a\tb", r"contains '\\t'"),
        ("a\nb", r"contains '\\n'"),
        ("a\x00b", r"contains '\\x00'"),
        ("x" * 201, "201 characters long; the limit is 200"),
        (b"emails", "must be a str, got bytes"),
        (5, "must be a str, got int"),
        (None, "must be a str, got NoneType"),
    ],
)
def test_bad_queue_name_is_a_value_error_naming_the_problem(name: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        QueueKeys(name)


def test_a_name_of_exactly_200_characters_is_allowed() -> None:
    assert validate_name("x" * 200) == "x" * 200


@pytest.mark.parametrize("build", [Producer, GarbageCollector, Consumer])
def test_every_entry_point_rejects_a_bad_queue_name(build: Any) -> None:
    with pytest.raises(ValueError, match="queue name"):
        build(fakeredis.FakeRedis(), "bad name")


def test_consumer_rejects_a_bad_consumer_name() -> None:
    with pytest.raises(ValueError, match=r"consumer name .* contains '\{'"):
        Consumer(fakeredis.FakeRedis(), "emails", name="{c}")
