"""The command line's clients: which server the environment names, which server a URL
names (``redis://``, ``rediss://``, or ``sentinel://`` for a primary found through
Sentinel), and the client that reaches it."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel

DEFAULT_URL = "redis://127.0.0.1:6379/0"
# ORIZURU_REDIS_URL first: for a shell whose REDIS_URL belongs to another application.
URL_VARIABLES = ("ORIZURU_REDIS_URL", "REDIS_URL")
# Connection errors that mean the server answered and refused us: no wait mends them.
REFUSED = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)


def environment_url() -> tuple[str, str] | None:
    """The server the environment names, and the variable that names it."""
    for name in URL_VARIABLES:
        url = os.environ.get(name)
        if url:
            return name, url
    return None


def safe(url: str) -> str:
    """``url`` without its password, to print."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def client(url: str) -> redis.Redis:
    """A client for the command line: a server that does not answer fails in seconds.
    ``sentinel://host:port[,host:port...]/MASTER[?db=N]`` (what ``--sentinel`` and
    ``--master`` make) is the primary those sentinels name, followed across failovers."""
    found = _sentinel(url)
    if found is None:
        return redis.Redis.from_url(url, socket_connect_timeout=5)
    addresses, master, options = found
    sentinel = redis.sentinel.Sentinel(addresses, sentinel_kwargs={"socket_timeout": 5})
    primary: redis.Redis = sentinel.master_for(master, socket_connect_timeout=5, **options)
    return primary


def async_client(url: str) -> redis.asyncio.Redis:
    """The same for asyncio (an ``async def`` handler's worker)."""
    found = _sentinel(url)
    if found is None:
        return redis.asyncio.Redis.from_url(url, socket_connect_timeout=5)
    addresses, master, options = found
    sentinel = redis.asyncio.sentinel.Sentinel(addresses, sentinel_kwargs={"socket_timeout": 5})
    primary: redis.asyncio.Redis = sentinel.master_for(master, socket_connect_timeout=5, **options)
    return primary


def sentinel_url(sentinels: str, master: str, db: int = 0) -> str:
    """The server string of ``--sentinel HOST:PORT[,HOST:PORT...] --master NAME``."""
    return f"sentinel://{sentinels}/{master}?db={db}"


def _sentinel(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]] | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "sentinel":
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    addresses = []
    for hostport in hosts.split(","):
        host, _, port = hostport.rpartition(":")
        addresses.append((host or "127.0.0.1", int(port or 26379)))
    query = urllib.parse.parse_qs(parts.query)
    options: dict[str, Any] = {"db": int(query.get("db", ["0"])[0])}
    if userinfo:
        user, _, password = userinfo.partition(":")
        options.update(username=user or None, password=urllib.parse.unquote(password) or None)
    return addresses, parts.path.strip("/"), options
