"""The message on the wire: envelope round trip, ids, decode errors, dead-letter records."""

from __future__ import annotations

import os

import pytest
import redis

from orizuru_py import DeadLetter, DecodeError, scripts
from orizuru_py import envelope as env
from orizuru_py.envelope import Envelope
from orizuru_py.keys import QueueKeys
from orizuru_py.plan import Driver

HEADER = b"OZ\x01\x00\x00\x00\x00"  # magic, version, deliveries
BODY = (1_700_000_000_000).to_bytes(8, "big") + b"\x0c" + b"0123456789ab" + b"payload"


def test_envelope_round_trips_every_field() -> None:
    original = Envelope("0123456789ab", 1_700_000_000_123, b"\x00\xffdata", deliveries=7)
    assert Envelope.decode(original.encode()) == original


def test_deliveries_live_in_a_fixed_big_endian_header() -> None:
    raw = Envelope("id", 1, b"p", deliveries=0x01020304).encode()
    assert raw[:7] == b"OZ\x01\x01\x02\x03\x04"
    assert Envelope.decode(env.with_deliveries(raw, 9)).deliveries == 9


def test_encode_many_is_encode_of_each_whatever_the_id_lengths() -> None:
    ids = [*env.new_ids(3, 1_700_000_000_000), "short", "a-much-longer-id-than-the-rest", "x"]
    payloads = [bytes([i]) * i for i in range(len(ids))]
    assert env.encode_many(ids, 1_700_000_000_000, payloads) == [
        env.encode(mid, 1_700_000_000_000, p) for mid, p in zip(ids, payloads, strict=True)
    ]


def test_ids_are_unique_and_time_ordered() -> None:
    before = env.now_ms()
    ids = [env.new_id() for _ in range(10_000)]
    after = env.now_ms()
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)
    assert before <= int(ids[0][:12], 16) <= int(ids[-1][:12], 16) <= after


def test_ids_are_unique_across_a_fork() -> None:
    same_ms = 1_700_000_000_000  # both processes stamp the same millisecond
    env.new_id(same_ms)  # the counter has moved before the fork
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its ids and leave without running pytest's exit
        try:
            os.close(read_end)
            os.write(write_end, "\n".join(env.new_id(same_ms) for _ in range(1000)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    parent_ids = {env.new_id(same_ms) for _ in range(1000)}
    with os.fdopen(read_end, "rb") as pipe:
        child_ids = set(pipe.read().decode().split("\n"))
    os.waitpid(pid, 0)
    assert len(child_ids) == 1000
    assert len(parent_ids) == 1000
    assert child_ids.isdisjoint(parent_ids)


@pytest.mark.parametrize("raw", [b"", b"X", b"hello world", b"ZO\x01\x00\x00\x00\x00" + BODY])
def test_decode_error_carries_raw_for_bad_magic(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="bad magic") as info:
        Envelope.decode(raw)
    assert info.value.raw == raw


@pytest.mark.parametrize("raw", [b"OZ", b"OZ\x01", b"OZ\x01\x00\x00\x00", (HEADER + BODY)[:15]])
def test_decode_error_carries_raw_for_a_truncated_header(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="truncated") as info:
        Envelope.decode(raw)
    assert info.value.raw == raw


@pytest.mark.parametrize("version", [0, 3, 255])
def test_decode_error_carries_raw_for_an_unknown_version(version: int) -> None:
    raw = b"OZ" + bytes([version]) + b"\x00\x00\x00\x00" + BODY
    with pytest.raises(DecodeError, match=f"version {version}") as info:
        Envelope.decode(raw)
    assert info.value.raw == raw


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (BODY[:8] + b"\x00" + b"payload", "empty"),  # an empty id
        (BODY[:8] + b"\x0c" + b"0123", "past the end"),  # the id runs past the end
        (BODY[:8] + b"\x02" + b"\xff\xfe", "not ASCII"),  # the id is not ASCII
    ],
)
def test_decode_error_carries_raw_for_a_malformed_envelope(body: bytes, problem: str) -> None:
    raw = HEADER + body
    with pytest.raises(DecodeError, match=f"malformed envelope: .*{problem}") as info:
        Envelope.decode(raw)
    assert info.value.raw == raw


def test_dead_letter_decode_rejects_what_is_not_a_record() -> None:
    with pytest.raises(DecodeError) as info:
        DeadLetter.decode(b"OZD\x01\x00\x00\x00\x09short")
    assert info.value.raw == b"OZD\x01\x00\x00\x00\x09short"


def test_dead_letter_decodes_a_record_written_by_the_lua_script(r: redis.Redis, queue: str) -> None:
    keys = QueueKeys(queue)
    original = Envelope(env.new_id(), env.now_ms(), b"payload", deliveries=2)
    reason = "délai dépassé ✓"  # multi-byte: the script counts bytes, not characters
    r.lpush(keys.processing("c@1"), original.encode())
    server_before = int(r.time()[0]) * 1000
    step = scripts.dead_letter(keys, keys.processing("c@1"), reason, [original.encode()])
    moved = Driver(r).run(step.run())
    server_after = (int(r.time()[0]) + 1) * 1000
    assert moved == 1
    records = r.lrange(keys.dead, 0, -1)
    assert len(records) == 1
    dead = DeadLetter.decode(records[0])
    assert dead.reason == reason
    assert server_before <= dead.dead_ms <= server_after
    assert dead.raw == original.encode()
    assert dead.envelope() == original
    assert r.llen(keys.processing("c@1")) == 0
