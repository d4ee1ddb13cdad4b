"""AsyncDriver: performs the queue's plans with an asyncio redis-py client.

The same plans as the blocking API's ``Driver`` (see ``orizuru_py.plan``), each
request awaited instead of called; nothing else differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, TypeVar

from ..plan import Batch, Call, Load, Pause

T = TypeVar("T")


class AsyncDriver:
    """Performs plans with an asyncio redis-py client, one request at a time."""

    def __init__(self, r: Any) -> None:
        self.r = r
        self.lock = asyncio.Lock()
        self.closed = asyncio.Event()

    async def run(self, plan: Generator[Any, Any, T]) -> T:
        send, throw, perform = plan.send, plan.throw, self._perform
        try:
            op = send(None)
            while True:
                try:
                    reply = await perform(op)
                except Exception as exc:
                    op = throw(exc)
                else:
                    op = send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _perform(self, op: Any) -> Any:
        kind = type(op)
        if kind is Call:
            return await self.r.execute_command(*op.args)
        if kind is Batch:
            pipe = self.r.pipeline(transaction=op.transaction)
            for args in op.calls:
                pipe.execute_command(*args)
            return await pipe.execute(raise_on_error=False)
        if kind is Load:
            return await self.r.script_load(op.script.source)
        if kind is Pause:
            try:
                await asyncio.wait_for(self.closed.wait(), op.seconds)
            except TimeoutError:
                return False
            return True
        async with self.lock:  # Exclusive
            return await self.run(op.plan)
