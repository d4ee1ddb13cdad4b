"""Raw redis-py ceilings: the plain command patterns orizuru_py's paths are built from.

Same 100-byte msgpack messages, same client; each loop packs what it pushes and
unpacks what it takes, as any real producer or consumer must. Keys live under
the run's prefix (and one hash tag per queue), so the run's cleanup finds them.
"""

from __future__ import annotations

import msgpack

from orizuru_py.ops.bench import BATCH, message
from orizuru_py.ops.benchdata import Bench, Case, Result, Timer

# Move up to ARGV[1] messages from the right of KEYS[1] to the left of KEYS[2]; return them.
_MOVE = """
local taken = redis.call("RPOP", KEYS[1], tonumber(ARGV[1]))
if not taken then return {} end
redis.call("LPUSH", KEYS[2], unpack(taken))
return taken
"""
# Remove each of ARGV from KEYS[1], scanning from the tail where the oldest sit: acks in
# taking order cost O(1) each (LREM count 1 would scan the whole batch for each).
_ACK = """
for i = 1, #ARGV do redis.call("LREM", KEYS[1], -1, ARGV[i]) end
return #ARGV
"""


def _keys(b: Bench, case: str) -> tuple[str, str]:
    base = f"{b.prefix}:{{raw-{b.queue(case)}}}"
    return f"{base}:queue", f"{base}:processing"


def _fill(b: Bench, key: str, n: int) -> None:
    for lo in range(0, n, 1000):
        b.r.lpush(key, *(msgpack.packb(message(i)) for i in range(lo, min(lo + 1000, n))))


def lpush(b: Bench, n: int) -> Result:
    """One LPUSH per message."""
    queue, _ = _keys(b, "lpush")
    payloads = [message(i) for i in range(n)]
    r, packb = b.r, msgpack.packb
    with Timer(r) as t:
        for p in payloads:
            r.lpush(queue, packb(p))
    r.delete(queue)
    return t.result(n)


def lpush_batch(b: Bench, n: int) -> Result:
    """One multi-value LPUSH per ``BATCH`` messages."""
    queue, _ = _keys(b, "lpush-batch")
    batches = [[message(i) for i in range(lo, min(lo + BATCH, n))] for lo in range(0, n, BATCH)]
    r, packb = b.r, msgpack.packb
    with Timer(r) as t:
        for batch in batches:
            r.lpush(queue, *(packb(p) for p in batch))
    r.delete(queue)
    return t.result(n)


def blmove_lrem(b: Bench, n: int) -> Result:
    """BLMOVE into a processing list, unpack, LREM: the reliable-queue pattern, one at a time."""
    queue, processing = _keys(b, "blmove")
    _fill(b, queue, n)
    r, unpackb = b.r, msgpack.unpackb
    with Timer(r) as t:
        for _ in range(n):
            raw = r.blmove(queue, processing, 1, "RIGHT", "LEFT")
            unpackb(raw)
            r.lrem(processing, 1, raw)
    r.delete(queue, processing)
    return t.result(n)


def lua_batch(b: Bench, n: int) -> Result:
    """A Lua move of ``BATCH`` messages, unpack each, a Lua ack of the batch."""
    queue, processing = _keys(b, "lua")
    _fill(b, queue, n)
    r, unpackb = b.r, msgpack.unpackb
    move, ack = r.register_script(_MOVE), r.register_script(_ACK)
    with Timer(r) as t:
        got = 0
        while got < n:
            raws = move(keys=[queue, processing], args=[min(BATCH, n - got)])
            for raw in raws:
                unpackb(raw)
            ack(keys=[processing], args=raws)
            got += len(raws)
    r.delete(queue, processing)
    return t.result(n)


def cases(single: int, batched: int, slices: int = 1) -> list[Case]:
    """The ceilings, named as ``orizuru_py.ops.bench.orizuru_cases`` refers to them."""
    return [
        Case("raw_lpush", "raw LPUSH, one at a time", single, lpush, None, slices),
        Case(
            "raw_blmove_lrem", "raw BLMOVE + LREM, one at a time", single, blmove_lrem, None, slices
        ),
        Case("raw_lpush_batch", f"raw LPUSH x{BATCH}", batched, lpush_batch, None, slices),
        Case(
            "raw_lua_batch", f"raw Lua move + Lua ack, x{BATCH}", batched, lua_batch, None, slices
        ),
    ]
