"""The message on the wire: envelope round trip, ids, decode errors, dead-letter records."""

from __future__ import annotations

import os
import struct

import msgpack
import pytest
import redis

from orizuru_py import (
    Consumer,
    DeadLetter,
    DecodeError,
    GarbageCollector,
    Producer,
    Queue,
    scripts,
)
from orizuru_py import envelope as env
from orizuru_py.envelope import Envelope
from orizuru_py.keys import QueueKeys
from orizuru_py.plan import Driver

HEADER = b"OZ\x01\x00\x00\x00\x00"  # the earlier layout: magic, version, deliveries
BODY = (1_700_000_000_000).to_bytes(8, "big") + b"\x0c" + b"0123456789ab" + b"payload"


def test_envelope_round_trips_every_field() -> None:
    original = Envelope("0123456789ab", 1_700_000_000_123, b"\x00\xffdata", deliveries=7)
    assert Envelope.decode(original.encode()) == original


def test_deliveries_live_in_a_fixed_big_endian_header() -> None:
    raw = Envelope(env.new_id(5), 5, b"p", deliveries=0x0102).encode()
    assert raw[:5] == b"OZ\x03\x01\x02"
    assert Envelope.decode(env.with_deliveries(raw, 9)).deliveries == 9
    old = Envelope("id", 1, b"p", deliveries=0x01020304).encode()  # the earlier layout
    assert old[:7] == b"OZ\x01\x01\x02\x03\x04"
    assert Envelope.decode(env.with_deliveries(old, 9)).deliveries == 9


def test_a_new_message_carries_its_id_as_15_bytes_and_its_push_time_inside_it() -> None:
    """20 bytes before the payload (the earlier layout took 46 with these ids)."""
    ms = 1_700_000_000_123
    mid = env.new_id(ms)
    raw = env.encode(mid, ms, b"payload")
    assert raw == b"OZ\x03\x00\x00" + bytes.fromhex(mid) + b"payload"
    assert env.parse(raw) == (mid, ms, 0, None, None, b"payload")
    assert env.message_id(raw) == mid
    assert env.packed_ids([raw, raw]) == (b"\0" + bytes.fromhex(mid)) * 2
    ids, raws = env.new_messages([b"payload"], ms)
    assert raws == [env.encode(ids[0], ms, b"payload")]


def test_a_message_with_extensions_is_version_4_and_round_trips() -> None:
    ms = 1_700_000_000_123
    original = Envelope(env.new_id(ms), ms, b"p", 3, "key-\u00e9", ms + 5000, b"trace")
    raw = original.encode()
    assert raw[:3] == b"OZ\x04"
    assert Envelope.decode(raw) == original
    ids, raws = env.new_messages([b"p"], ms, b"trace")
    assert raws == [Envelope(ids[0], ms, b"p", trace=b"trace").encode()]


@pytest.mark.parametrize(
    "mid",
    ["0123456789ab", "0" * 30, "018BCFE56800" + "a" * 18, "0" * 29 + "g", "x" * 31],
)
def test_any_other_id_or_time_keeps_the_earlier_layout(mid: str) -> None:
    """An id not made by new_id at that millisecond (uppercase hex included: its bytes
    would come back lowercase) is stored as it is, and read back unchanged."""
    ms = 1_700_000_000_000
    raw = env.encode(mid, ms, b"p", unique_key="k" if len(mid) > 20 else None)
    assert raw[2] in (1, 2)
    assert env.parse(raw)[:2] == (mid, ms)
    assert env.encode(env.new_id(ms), ms, b"p")[2] == 3  # where new_id's would not


def test_a_delivery_count_stops_at_65535_in_two_bytes() -> None:
    raw = env.encode(env.new_id(5), 5, b"p", deliveries=70_000)
    assert env.parse(raw)[2] == 65_535
    assert env.parse(env.with_deliveries(raw, 65_536))[2] == 65_535


def test_new_messages_are_new_ids_and_encode_of_each() -> None:
    ms = 1_700_000_000_000
    payloads = [bytes([i]) * i for i in range(5)]
    ids, raws = env.new_messages(payloads, ms)
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert all(int(mid[:12], 16) == ms and mid[12:24] == env.new_id(ms)[12:24] for mid in ids)
    assert raws == [env.encode(mid, ms, p) for mid, p in zip(ids, payloads, strict=True)]


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


@pytest.mark.parametrize("version", [0, 5, 255])
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


def _earlier_layout(mid: str, ms: int, payload: bytes, unique_key: str | None = None) -> bytes:
    """A message as versions before 3 wrote it (built by hand, not by the encoder)."""
    head = struct.pack(">IQB", 0, ms, len(mid)) + mid.encode()
    if unique_key is None:
        return b"OZ\x01" + head + payload
    key = unique_key.encode()
    ext = b"\x01" + len(key).to_bytes(2, "big") + key
    return b"OZ\x02" + head + len(ext).to_bytes(2, "big") + ext + payload


def test_messages_of_the_earlier_layout_are_taken_counted_cancelled_and_settled(
    r: redis.Redis, queue: str
) -> None:
    """What a producer of an earlier version left in a queue goes on working: ids,
    delivery counts, cancellation, unique keys, searches."""
    k, ms = QueueKeys(queue), env.now_ms()
    kept, cancelled, keyed, deleted = (env.new_id(ms) for _ in range(4))
    r.lpush(k.queue, _earlier_layout(deleted, ms, msgpack.packb("deleted")))
    r.lpush(k.queue, _earlier_layout(kept, ms, msgpack.packb("kept")))
    r.lpush(k.queue, _earlier_layout(cancelled, ms, msgpack.packb("cancelled")))
    r.lpush(k.queue, _earlier_layout(keyed, ms, msgpack.packb("keyed"), unique_key="k"))
    r.hset(k.unique, "k", keyed)
    r.zadd(k.unique_expiry, {"k": ms + 60_000})
    q = Queue(r, queue)
    assert [p.id for p in q.peek(10)] == [deleted, kept, cancelled, keyed]  # next first
    assert q.delete(deleted) is True
    assert q.cancel(cancelled) is True
    with Consumer(r, queue) as consumer:
        first = consumer.next(timeout=1.0)
        assert first is not None and (first.id, first.payload, first.attempts) == (kept, "kept", 1)
        assert first.enqueued_ms == ms
        assert first.reject()
        GarbageCollector(r, queue).collect()  # the unack list back to the queue, counted
        keyed_guard = consumer.next(timeout=1.0)
        assert keyed_guard is not None and keyed_guard.id == keyed
        assert keyed_guard.unique_key == "k"
        assert keyed_guard.ack()
        again = consumer.next(timeout=1.0)
        assert again is not None and (again.id, again.attempts) == (kept, 2)
        assert again.raw[2] == 1  # counted in place, in its own layout
        assert again.ack()
        assert consumer.next(timeout=0.1) is None  # the cancelled one was never delivered
    assert r.hlen(k.unique) == 0  # the ack freed the key the earlier layout carried
    assert Producer(r, queue).push("new", unique_key="k") != keyed
    q.purge()
