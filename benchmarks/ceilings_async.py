"""Raw redis.asyncio ceilings: the command patterns of orizuru_py's asyncio paths, as
``ceilings.py`` has them for the blocking client (same messages, same packing)."""

from __future__ import annotations

from typing import Any

import msgpack
from ceilings import _ACK, _MOVE, _fill, _keys

from orizuru_py.ops.bench import BATCH, message
from orizuru_py.ops.bench_async import measure
from orizuru_py.ops.benchdata import Bench, Case, Result


def lpush(b: Bench, n: int) -> Result:
    """One awaited LPUSH per message."""
    queue, _ = _keys(b, "async-lpush")
    payloads = [message(i) for i in range(n)]

    async def body(r: Any) -> None:
        packb = msgpack.packb
        for p in payloads:
            await r.lpush(queue, packb(p))

    result = measure(b, n, body)
    b.r.delete(queue)
    return result


def blmove_lrem(b: Bench, n: int) -> Result:
    """Awaited BLMOVE into a processing list, unpack, LREM, one at a time."""
    queue, processing = _keys(b, "async-blmove")
    _fill(b, queue, n)

    async def body(r: Any) -> None:
        unpackb = msgpack.unpackb
        for _ in range(n):
            raw = await r.blmove(queue, processing, 1, "RIGHT", "LEFT")
            unpackb(raw)
            await r.lrem(processing, 1, raw)

    result = measure(b, n, body)
    b.r.delete(queue, processing)
    return result


def lua_batch(b: Bench, n: int) -> Result:
    """An awaited Lua move of ``BATCH`` messages, unpack each, an awaited Lua ack."""
    queue, processing = _keys(b, "async-lua")
    _fill(b, queue, n)

    async def body(r: Any) -> None:
        move, ack, unpackb = r.register_script(_MOVE), r.register_script(_ACK), msgpack.unpackb
        got = 0
        while got < n:
            raws = await move(keys=[queue, processing], args=[min(BATCH, n - got)])
            for raw in raws:
                unpackb(raw)
            await ack(keys=[processing], args=raws)
            got += len(raws)

    result = measure(b, n, body)
    b.r.delete(queue, processing)
    return result


def cases(single: int, batched: int, slices: int = 1) -> list[Case]:
    """The ceilings, named as ``orizuru_py.ops.bench_async.cases`` refers to them."""
    return [
        Case("raw_async_lpush", "raw redis.asyncio LPUSH", single, lpush, None, slices),
        Case(
            "raw_async_blmove_lrem",
            "raw redis.asyncio BLMOVE + LREM",
            single,
            blmove_lrem,
            None,
            slices,
        ),
        Case(
            "raw_async_lua_batch",
            f"raw redis.asyncio Lua move + ack x{BATCH}",
            batched,
            lua_batch,
            None,
            slices,
        ),
    ]
