"""How the drivers pack the commands of one write: hiredis directly, where it writes what
redis-py would (client.packer)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from orizuru_py import client

ARG = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
)


@given(st.lists(st.lists(ARG, min_size=1, max_size=6), min_size=1, max_size=4))
def test_hiredis_packs_every_command_as_redis_py_does(calls: list[list[Any]]) -> None:
    conn = redis.Connection()  # packs without connecting
    pack = client.packer(redis.ConnectionPool())
    commands = [("ECHO", *args) for args in calls]
    assert pack is not client._redis_py_pack
    assert b"".join(pack(conn, commands)) == b"".join(conn.pack_commands(commands))


def test_an_argument_hiredis_refuses_is_packed_or_refused_as_redis_py_does() -> None:
    conn = redis.Connection()
    pack = client.packer(redis.ConnectionPool())
    calls = [("ECHO", bytearray(b"ab")), ("ECHO", memoryview(b"cd"))]
    assert b"".join(pack(conn, calls)) == b"".join(conn.pack_commands(calls))
    with pytest.raises(redis.DataError, match="bool"):
        pack(conn, [("ECHO", True)])


def test_a_pool_that_encodes_text_otherwise_packs_through_redis_py() -> None:
    latin = redis.ConnectionPool(encoding="latin-1")
    lenient = redis.ConnectionPool(encoding_errors="replace")
    assert client.packer(latin) is client._redis_py_pack
    assert client.packer(lenient) is client._redis_py_pack
