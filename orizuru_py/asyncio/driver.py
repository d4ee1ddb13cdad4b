"""AsyncDriver: performs the queue's plans with an asyncio redis-py client.

The same plans as the blocking API's ``Driver`` (see ``orizuru_py.plan``), each
request awaited instead of called; nothing else differs.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

from redis.exceptions import ResponseError

from ..client import Commands, own_pool, packer
from ..connections import AsyncGiveBack, KeptConnection, closed_async
from ..plan import Batch, Call, Exclusive, Load, Pause, Plan, UnknownRequest, unknown

T = TypeVar("T")


class AsyncDriver:
    """Performs plans with an asyncio redis-py client, one request at a time."""

    def __init__(self, r: Commands) -> None:
        self.r = r
        self.lock = asyncio.Lock()
        self.closed = asyncio.Event()
        pool = own_pool(r)  # as the blocking Driver's
        self._give_back = AsyncGiveBack(pool)
        self._kept = KeptConnection(self, pool, self._give_back) if pool is not None else None
        self._pack = packer(pool)

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
            if self._kept is None:
                return await self.r.execute_command(*op.args)
            (reply,) = await self._send(self._kept, (op.args,))
            if isinstance(reply, ResponseError):
                raise reply
            return reply
        if kind is Batch:
            if self._kept is not None and not op.transaction:
                return await self._send(self._kept, op.calls)
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

    async def _send(self, kept: KeptConnection, calls: tuple[tuple[Any, ...], ...]) -> list[Any]:
        """The blocking Driver's ``_send_batch``, awaited: the commands in one write, a
        reply or an error for each, sent again as the client's retry policy says when the
        connection fails; without redis-py's pipeline object and per-command hooks (a
        two-command ack: about 15 us of client CPU less). Interrupted while replies are
        due (a cancellation, say), the connection is dropped, never left with them."""
        r: Any = self.r  # redis-py's parse_response is untyped
        loop = asyncio.get_running_loop()
        conn, look = kept.take()
        if conn is not None and self._give_back.loop is not loop:  # kept on a loop now gone
            self._give_back(conn)
            conn = None
        if conn is None:
            conn, look = await kept.pool.get_connection(), False

        async def send() -> list[Any]:
            try:
                await conn.send_packed_command(self._pack(conn, calls))
                replies: list[Any] = []
                for args in calls:
                    try:
                        replies.append(await r.parse_response(conn, args[0]))
                    except ResponseError as exc:
                        replies.append(exc)
            except BaseException:
                await conn.disconnect(nowait=True)
                raise
            return replies

        try:
            if look and await closed_async(conn):
                await conn.disconnect()  # connects again on the write
            return cast(
                list[Any], await conn.retry.call_with_retry(send, lambda _: conn.disconnect())
            )
        finally:
            self._give_back.loop = loop
            if not kept.put(conn):
                await kept.pool.release(conn)

    @staticmethod
    def new_lock() -> asyncio.Lock:
        """A lock for ``Exclusive`` shared by the plans of several drivers of this API."""
        return asyncio.Lock()
