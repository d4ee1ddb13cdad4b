"""Producer: put messages on a queue, now or after a delay, once per unique key.

A plain push is one ``LPUSH``. A push with a ``unique_key`` or a ``delay`` is
one ``push.lua``. ``push_many`` sends all its messages inside one MULTI/EXEC,
so it is queued whole or not at all (a server at ``maxmemory`` refuses the
whole transaction). With ``replicas``/``fsync`` each call waits, in the same
round trip, until the write reached that many replicas (``WAIT``) or the
append-only file (``WAITAOF``), and raises ``NotConfirmed`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError, ResponseError

from . import checks, envelope, scripts, tracing
from .client import Client, eviction_probe, eviction_verdict
from .codecs import Codec, MsgpackCodec
from .errors import EncodeError, NotConfirmed
from .keys import QueueKeys
from .plan import Batch, Call, Driver, Load, blocking, raise_any

DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
DEFAULT_UNIQUE_FOR = 3600.0
_CHUNK = 1000  # messages per command in push_many


class ProducerCore:
    """Everything a producer decides; ``Producer`` and the asyncio one only do the I/O."""

    driver_class: type[Any] = Driver

    def __init__(
        self,
        r: Client,
        queue: str,
        *,
        codec: Codec | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        prefix: str = "orizuru",
        replicas: int = 0,
        fsync: bool = False,
        confirm_timeout: float = 1.0,
    ) -> None:
        self.keys = QueueKeys(queue, prefix)
        self.r = r
        self._driver = self.driver_class(r)
        self.codec = codec or MsgpackCodec()
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
            raise ValueError(f"max_payload_bytes must be a positive int, got {max_payload_bytes}")
        self.max_payload_bytes = max_payload_bytes
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ValueError(f"replicas must be an int >= 0, got {replicas!r}")
        if not isinstance(fsync, bool):
            raise ValueError(f"fsync must be True or False, got {fsync!r}")
        self._confirm_ms = checks.ms(confirm_timeout, "confirm_timeout", positive=True)
        self.replicas, self.fsync = replicas, fsync
        self._cluster = isinstance(r, RedisCluster) or type(r).__name__ == "RedisCluster"
        if self._cluster and (replicas or fsync):
            raise ValueError(
                "replicas= and fsync= are not available on Redis Cluster: WAIT must run on "
                "the connection that wrote, which a cluster client does not expose"
            )
        self._fresh = True  # not yet in the registry, server not yet checked

    @property
    def queue(self) -> str:
        return self.keys.name

    async def _push(
        self,
        payload: Any,
        *,
        delay: float | None = None,
        unique_key: str | None = None,
        unique_for: float = DEFAULT_UNIQUE_FOR,
        ttl: float | None = None,
    ) -> str:
        """Queue one message (visible after ``delay`` seconds); return its id, or, when
        ``unique_key`` names a live message, queue nothing and return that one's id."""
        delay_ms, unique_ms, ttl_ms = self._times(delay, unique_for, ttl)
        key = checks.unique_key(unique_key)
        data = self._checked(self.codec.encode(payload))
        hook = tracing.hook  # None unless orizuru_py.otel.instrument() ran
        if hook is not None:
            plan = partial(self._push_one, data, key, delay_ms, unique_ms, ttl_ms)
            return await hook.send(self.queue, None, plan)
        return await self._push_one(data, key, delay_ms, unique_ms, ttl_ms, None)

    async def _push_one(
        self,
        data: bytes,
        key: str | None,
        delay_ms: int,
        unique_ms: int,
        ttl_ms: int,
        trace: bytes | None,
    ) -> str:
        """Queue one encoded payload carrying ``trace``; its id (see ``_push``)."""
        (mid,), (raw,) = self._encode([data], None if key is None else [key], delay_ms,
                                      ttl_ms, trace)  # fmt: skip
        plain = key is None and not delay_ms
        command = self._command([(key, mid, raw)], delay_ms, unique_ms, plain)
        reply = (await self._send([command], [mid], many=False))[0]
        return _ids(reply, [mid])[0]

    async def _push_many(
        self,
        payloads: Iterable[Any],
        *,
        delay: float | None = None,
        unique_keys: Iterable[str | None] | None = None,
        unique_for: float = DEFAULT_UNIQUE_FOR,
        ttl: float | None = None,
    ) -> list[str]:
        """Queue many messages in one round trip, all or none; return their ids in order
        (for a message whose unique key names a live one, that one's id). Every payload
        is encoded before anything is sent, so a bad one fails the call with nothing
        queued; so does a server that refuses any part (it runs inside MULTI/EXEC)."""
        delay_ms, unique_ms, ttl_ms = self._times(delay, unique_for, ttl)
        items = list(payloads)
        keys: list[str | None] = [None] * len(items)
        if unique_keys is not None:
            keys = [checks.unique_key(k) for k in unique_keys]
            if len(keys) != len(items):
                raise ValueError(f"{len(keys)} unique_keys for {len(items)} payloads")
        unique = unique_keys is not None and any(k is not None for k in keys)
        encode, checked = self.codec.encode, self._checked
        data = [checked(encode(p)) for p in items]
        if not data:
            return []
        plan = partial(self._push_all, data, keys if unique else None, delay_ms, unique_ms, ttl_ms)
        hook = tracing.hook  # None unless orizuru_py.otel.instrument() ran
        if hook is not None:
            return await hook.send(self.queue, len(data), plan)
        return await plan(None)

    async def _push_all(
        self,
        data: list[bytes],
        keys: list[str | None] | None,
        delay_ms: int,
        unique_ms: int,
        ttl_ms: int,
        trace: bytes | None,
    ) -> list[str]:
        """Queue encoded payloads (``keys``: their unique keys, None for none), each
        carrying ``trace``; their ids."""
        ids, raws = self._encode(data, keys, delay_ms, ttl_ms, trace)
        calls: list[scripts.Command]
        if not delay_ms and keys is None:  # the hot path: LPUSHes, no per-message tuples
            chunked = range(0, len(raws), _CHUNK)
            calls = [("LPUSH", self.keys.queue, *raws[i : i + _CHUNK]) for i in chunked]
        else:
            messages = list(zip(keys or [None] * len(raws), ids, raws, strict=True))
            calls = [
                self._command(messages[start : start + _CHUNK], delay_ms, unique_ms, False)
                for start in range(0, len(messages), _CHUNK)
            ]
        replies = await self._send(calls, ids, many=True)
        return [
            mid
            for i, reply in enumerate(replies)
            for mid in _ids(reply, ids[i * _CHUNK : (i + 1) * _CHUNK])
        ]

    # -- encoding -----------------------------------------------------------------------

    def _times(self, delay: float | None, unique_for: float, ttl: float | None) -> tuple[int, ...]:
        return (
            checks.delay_ms(delay),
            checks.ms(unique_for, "unique_for", positive=True),
            checks.ms(ttl, "ttl", positive=True),
        )

    def _encode(
        self,
        data: list[bytes],
        keys: list[str | None] | None,
        delay_ms: int,
        ttl_ms: int,
        trace: bytes | None,
    ) -> tuple[list[str], list[bytes]]:
        """Ids and envelopes for encoded payloads (``keys``: their unique keys, None for
        none; ``trace``: the trace context each carries), all stamped with this millisecond."""
        now = envelope.now_ms()
        expires = now + delay_ms + ttl_ms if ttl_ms else None
        if expires is None and keys is None:
            return envelope.new_messages(data, now, trace)
        ids = envelope.new_ids(len(data), now)
        keys = keys or [None] * len(data)
        return ids, [
            envelope.encode(mid, now, d, 0, k, expires, trace)
            for mid, d, k in zip(ids, data, keys, strict=True)
        ]

    def _checked(self, data: bytes) -> bytes:
        if len(data) > self.max_payload_bytes:
            raise EncodeError(
                f"payload is {len(data)} bytes encoded, "
                f"over max_payload_bytes={self.max_payload_bytes}"
            )
        return data

    def _command(
        self,
        messages: Sequence[tuple[str | None, str, bytes]],
        delay_ms: int,
        unique_ms: int,
        plain: bool,
    ) -> scripts.Command:
        """One command queueing ``messages``: an LPUSH when ``plain`` (no delay, no unique
        key), else push.lua. A call's commands are all of one kind, so a server that lost
        its scripts (NOSCRIPT) refuses all of them and they can be sent again whole."""
        if plain:
            return ("LPUSH", self.keys.queue, *(raw for _, _, raw in messages))
        return scripts.push(self.keys, delay_ms, unique_ms, messages)

    # -- sending --------------------------------------------------------------------------

    async def _send(self, calls: list[scripts.Command], ids: list[str], *, many: bool) -> list[Any]:
        """Send the commands of one call and return their replies. A single push is one
        command (as is a push_many that fits in one); more go inside MULTI/EXEC (all or
        none). The first push of a producer
        also joins the registry and checks the server's eviction policy, in the same round
        trip; with confirms, WAIT or WAITAOF follows in it too."""
        confirm = bool(self.replicas or self.fsync)
        head: list[tuple[Any, ...]] = []
        if self._fresh:
            await self._check_fsync()
            head = [*eviction_probe(self.r), ("SADD", self.keys.registry, self.keys.name)]
        if self._cluster and head:  # the registry lives in another slot
            replies = await Batch(tuple(head))
            if len(head) == 2:
                eviction_verdict(self.r, replies[0])
            self._fresh, head = False, []
        if not head and not confirm and len(calls) == 1:  # one command is all or none
            only = calls[0]
            return [await (only.run() if isinstance(only, scripts.ScriptCall) else Call(only))]
        commands = [c.command if isinstance(c, scripts.ScriptCall) else c for c in calls]
        if self._cluster:  # MULTI goes through redis-py's cluster transaction
            return raise_any(await _transaction(commands))
        body = [*commands]
        if many or confirm:
            body = [("MULTI",), *commands, ("EXEC",)]
        if confirm:
            body.append(self._wait())
        replies = await Batch((*head, *body))
        if _noscript(replies):  # the scripts were lost, so none of them ran: send it again
            await Load(scripts.PUSH.source)
            replies = await Batch((*head, *body))
            _raise_noscript(replies)
        if head:
            if len(head) == 2:
                eviction_verdict(self.r, replies[0])
            self._fresh = False
        tail = raise_any(replies[len(head) :])
        if confirm:
            self._check_confirmed(tail[-1], ids)
            tail = tail[:-1]
        return raise_any(list(tail[-1])) if (many or confirm) else tail

    async def _check_fsync(self) -> None:
        """With ``fsync``, that the server can confirm writes to its append-only file."""
        if self.fsync:
            try:
                await Call(("WAITAOF", 1, 0, 0))
            except ResponseError as exc:
                raise ValueError(
                    f"fsync=True needs WAITAOF (Redis 7.2+ or Valkey) and appendonly yes on "
                    f"the server; it answered: {exc}"
                ) from exc

    def _wait(self) -> tuple[Any, ...]:
        if self.fsync:
            return ("WAITAOF", 1, self.replicas, self._confirm_ms)
        return ("WAIT", self.replicas, self._confirm_ms)

    def _check_confirmed(self, reached: Any, ids: list[str]) -> None:
        if self.fsync:
            local, replicas = int(reached[0]), int(reached[1])
            if local < 1 or replicas < self.replicas:
                raise NotConfirmed(ids, replicas, local_fsync=bool(local))
        elif int(reached) < self.replicas:
            raise NotConfirmed(ids, int(reached))


def _noscript(replies: list[Any]) -> NoScriptError | None:
    """Where a server answered NOSCRIPT, directly or inside EXEC's reply: the error."""
    for r in replies:
        found = r if isinstance(r, NoScriptError) else _noscript(r) if isinstance(r, list) else None
        if found is not None:
            return found
    return None


def _raise_noscript(replies: list[Any]) -> None:
    """After the load: a NOSCRIPT again came from another server (``scripts.lost``)."""
    again = _noscript(replies)
    if again is not None:
        raise scripts.lost(again)


async def _transaction(calls: list[tuple[Any, ...]]) -> list[Any]:
    replies: list[Any] = await Batch(tuple(calls), transaction=True)
    if _noscript(replies):
        await Load(scripts.PUSH.source)
        replies = await Batch(tuple(calls), transaction=True)
        _raise_noscript(replies)
    return replies


def _ids(reply: Any, own: list[str]) -> list[str]:
    """The ids one command queued: those push.lua returned (bytes or str, as the client
    decodes), or, for a plain LPUSH (which returns a length), the messages' ``own``."""
    if isinstance(reply, list):
        return [m.decode() if isinstance(m, bytes) else str(m) for m in reply]
    return own


class Producer(ProducerCore):
    """Pushes messages onto one queue. Safe to share between threads.

    A push returns only once Redis has the message; a push that did not reach
    Redis raises (redis-py's ``ConnectionError``/``TimeoutError``), never loses
    silently. After such an error the message may or may not be queued.
    """

    push = blocking(ProducerCore._push)
    push_many = blocking(ProducerCore._push_many)
