"""Scenario 4: garbage pushed raw between valid messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orizuru_py.envelope import VERSION

from .garbage import Item, decodable, garbage, truncated, with_payload_bytes, with_version

ints = st.integers(-(2**63), 2**64 - 1)  # what msgpack can carry
payloads = st.one_of(
    st.none(),
    ints,
    st.text(max_size=20),
    st.binary(max_size=20),
    st.lists(ints, max_size=3),
    st.dictionaries(st.text(max_size=5), ints, max_size=3),
)
bad_values = st.one_of(
    st.binary(max_size=64),
    st.builds(truncated, payloads, st.floats(0, 1, exclude_max=True)),
    st.builds(with_version, payloads, st.integers(0, 255).filter(lambda v: v != VERSION)),
    st.builds(with_payload_bytes, st.binary(min_size=1, max_size=20)),
).filter(lambda raw: not decodable(raw))
items = st.lists(
    st.one_of(st.tuples(st.just("valid"), payloads), st.tuples(st.just("bad"), bad_values)),
    min_size=1,
    max_size=30,
)


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(items=items, batch=st.integers(1, 8))
def test_garbage_is_dead_lettered_with_a_reason_and_valid_messages_still_delivered(
    redis_url: str, items: list[Item], batch: int
) -> None:
    figures = garbage(redis_url, items, batch=batch)
    assert figures["lost"] == figures["duplicates"] == 0, figures
    assert figures["delivered"] == figures["valid"], figures
    assert figures["bad_not_dead"] == figures["wrongly_dead"] == 0, figures
    assert figures["dead"] == figures["bad"], figures
    assert figures["without_reason"] == 0, figures
    assert figures["left"] == {}, figures
