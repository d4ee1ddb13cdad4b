"""The redis-py client we were given, and the server behind it: what we check once.

We never open connections of our own: every part takes the user's client (a
``Redis``, a ``RedisCluster``, a Sentinel master, blocking or asyncio) and
finds here which of its errors mean "try again later", how long its socket
waits, and whether the server could evict queue keys.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Generator, Sequence
from typing import Any, Protocol, TypeAlias, cast

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.client import Pipeline
from redis.cluster import RedisCluster
from redis.connection import Connection
from redis.exceptions import (
    ClusterDownError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

_pack_command: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # an optional speed-up (hiredis < 2.1 has no packer either)
    _pack_command = None
else:
    _pack_command = _hiredis_pack

log = logging.getLogger("orizuru_py")

SyncClient: TypeAlias = Redis | RedisCluster  # a Sentinel master is a Redis
AsyncClient: TypeAlias = AsyncRedis | AsyncRedisCluster
Client: TypeAlias = SyncClient | AsyncClient  # what the parts shared by both APIs take


class Commands(Protocol):
    """What a driver asks of a client (of either API; the asyncio one returns awaitables)."""

    def execute_command(self, *args: Any, **options: Any) -> Any: ...

    def pipeline(self, transaction: bool = ..., shard_hint: Any = ...) -> Any: ...

    def script_load(self, script: str) -> Any: ...


def own_pool(r: object) -> Any | None:
    """The pool of ``r`` when the drivers may write its requests themselves, without
    redis-py's pipeline object and the hooks ``execute_command`` runs for each command: a
    plain ``Redis`` of either API (not a subclass: one may override ``execute_command``),
    on a pool rather than one connection, whose ``execute_command`` and pipeline no
    instrumentation has wrapped (a tracer's wrapper would miss our commands). Else None:
    the drivers go through redis-py's own paths. Read when a driver is made."""
    cls: Any = type(r)
    pipe: Any = {Redis: Pipeline, AsyncRedis: AsyncPipeline}.get(cls)
    if pipe is None:
        return None
    if getattr(r, "single_connection_client", False) or getattr(r, "connection", None):
        return None  # an asyncio one makes its connection on its first command
    methods = (cls.execute_command, pipe.execute, pipe.execute_command)
    if any(hasattr(method, "__wrapped__") for method in methods):
        return None
    return getattr(r, "connection_pool", None)


Packer: TypeAlias = Callable[[Any, Sequence[tuple[Any, ...]]], list[bytes]]


def _redis_py_pack(conn: Any, calls: Sequence[tuple[Any, ...]]) -> list[bytes]:
    return cast(list[bytes], conn.pack_commands(calls))


def packer(pool: Any) -> Packer:
    """How the drivers pack the commands of one write for a connection of ``pool``: with
    hiredis directly where it is installed and the pool encodes text as hiredis does
    (UTF-8, strict), which skips redis-py's encoding of each argument (about 9 us of
    client CPU for a script run of 15 arguments); else, and for an argument hiredis does
    not take (a bool, a bytearray: redis-py then says why), as redis-py packs them."""
    kwargs = getattr(pool, "connection_kwargs", {})
    encoding = str(kwargs.get("encoding", "utf-8")).lower().replace("_", "-")
    if _pack_command is None or encoding not in ("utf-8", "utf8"):
        return _redis_py_pack
    if kwargs.get("encoding_errors", "strict") != "strict":
        return _redis_py_pack
    pack = _pack_command

    def packed(conn: Any, calls: Sequence[tuple[Any, ...]]) -> list[bytes]:
        try:
            if len(calls) == 1:
                return [pack(calls[0])]
            return [b"".join([pack(args) for args in calls])]
        except (TypeError, UnicodeError):
            return _redis_py_pack(conn, calls)

    return packed


# Errors every loop rides out with backoff: the server, a cluster node or the primary
# is unreachable for now. ReadOnlyError: a primary demoted by a failover (Sentinel
# clients reconnect to the new one after it). redis-py's "cluster cannot be connected"
# is not even a RedisError.
TRANSIENT = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisReadOnlyError,
    RedisClusterException,
    ClusterDownError,
    TryAgainError,
)

_warned: set[int] = set()


def _connection_options(r: Client) -> tuple[dict[str, Any], type]:
    """The keyword arguments and class the client makes its connections with."""
    for holder in (getattr(r, "connection_pool", None), getattr(r, "nodes_manager", None)):
        kwargs = getattr(holder, "connection_kwargs", None)
        if isinstance(kwargs, dict):
            return kwargs, getattr(holder, "connection_class", Connection)
    return {}, Connection


def _default_socket_timeout(cls: type) -> Any:
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        param = inspect.signature(init).parameters.get("socket_timeout")
        if param is not None and param.default is not inspect.Parameter.empty:
            return param.default
    return None


def socket_timeout(r: Client) -> float | None:
    """The client's socket timeout in seconds (None: none). A client made by ``from_url``
    leaves it out of its kwargs and gets the connection class's default (5 s in redis-py 8)."""
    kwargs, cls = _connection_options(r)
    value = kwargs["socket_timeout"] if "socket_timeout" in kwargs else _default_socket_timeout(cls)
    return float(value) if value is not None else None


def check_client(r: Client) -> None:
    """Refuse a client that would hand us messages as str: they are bytes, exactly."""
    if _connection_options(r)[0].get("decode_responses"):
        raise ValueError(
            "orizuru_py needs a client with decode_responses=False: messages are bytes "
            "and must come back byte for byte"
        )


def where(r: Client) -> str:
    """host:port of the client's server, for log lines."""
    kwargs, _ = _connection_options(r)
    if "host" in kwargs:
        return f"{kwargs['host']}:{kwargs.get('port', 6379)}"
    return type(r).__name__


def eviction_probe(r: Client) -> list[tuple[Any, ...]]:
    """The command that reads the server's eviction policy, the first time this client
    asks (none after): send it along with other work, then pass its reply to
    ``eviction_verdict``."""
    pool = id(getattr(r, "connection_pool", None) or getattr(r, "nodes_manager", r))
    if pool in _warned:
        return []
    _warned.add(pool)
    return [("INFO", "memory")]


def eviction_verdict(r: Client, info: Any) -> None:
    """Warn when the server may evict keys: an evicted queue key is a lost message.
    A server that denied INFO (a least-privilege user) is left unchecked."""
    if isinstance(info, RedisError):
        log.debug("could not read maxmemory-policy (%s); not checked", info)
        return
    for policy in sorted(_policies(info)):
        if policy.startswith("allkeys-"):
            log.warning(
                "the server at %s has maxmemory-policy %s: when it reaches maxmemory it "
                "evicts keys, queue keys included, and their messages are lost. Set "
                "maxmemory-policy noeviction (pushes then fail instead)",
                where(r),
                policy,
            )


def _policies(info: Any) -> Generator[str, None, None]:
    """maxmemory_policy of an INFO reply: a dict, or (cluster) a dict of them per node."""
    if isinstance(info, bytes):
        for line in info.decode(errors="replace").splitlines():
            if line.startswith("maxmemory_policy:"):
                yield line.split(":", 1)[1].strip()
    elif isinstance(info, dict):
        if "maxmemory_policy" in info:
            yield str(info["maxmemory_policy"])
        else:
            for value in info.values():
                yield from _policies(value)
