"""AsyncDriver: performs the queue's plans with an asyncio redis-py client.

The same plans as the blocking API's ``Driver`` (see ``orizuru_py.plan``), each
request awaited instead of called; nothing else differs.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

from ..client import Commands
from ..plan import Batch, Call, Exclusive, Load, Pause, Plan, UnknownRequest, unknown

T = TypeVar("T")


class AsyncDriver:
    """Performs plans with an asyncio redis-py client, one request at a time."""

    def __init__(self, r: Commands) -> None:
        self.r = r
        self.lock = asyncio.Lock()
        self.closed = asyncio.Event()

    async def run(self, plan: Plan[T]) -> T:
        send, throw, perform = plan.send, plan.throw, self._perform
        try:
            op = send(None)
            while True:
                try:
                    reply = await perform(op)
                except UnknownRequest:
                    plan.close()
                    raise
                except BaseException as exc:  # CancelledError too: at any await the plan
                    op = throw(exc)  # learns its request's fate is unknown, and tidies up
                else:
                    op = send(reply)
        except StopIteration as stop:
            return cast(T, stop.value)

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
            return await self.r.script_load(op.source)
        if kind is Pause:
            try:  # not wait_for: on 3.11 it can swallow a cancellation that meets the end
                async with asyncio.timeout(op.seconds):
                    await self.closed.wait()
            except TimeoutError:
                return False
            return True
        if kind is Exclusive:
            async with op.lock or self.lock:
                return await self.run(op.plan)
        raise unknown(op)

    @staticmethod
    def new_lock() -> asyncio.Lock:
        """A lock for ``Exclusive`` shared by the plans of several drivers of this API."""
        return asyncio.Lock()
