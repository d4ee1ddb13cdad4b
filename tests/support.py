"""Helpers the tests share."""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from orizuru_py.keys import QueueKeys


def debian_package(package: str, *paths: str) -> Path:
    """The first file matching one of ``paths`` (globs) that Debian's ``package`` installs;
    when none is there, the test is skipped with one line naming the package (CI, which
    installs it, sets ORIZURU_NO_SKIP: there the skip fails the run)."""
    for pattern in paths:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    pytest.skip(f"needs Debian's {package} package: apt-get install {package}")


@contextlib.contextmanager
def running(worker: Any) -> Iterator[threading.Thread]:
    """Run a blocking ``worker`` in a thread; on exit stop it, wait for ``run()`` to
    return, and fail if it did not or if it raised."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "Worker.run() did not return after stop()"
        assert not errors, errors


def keys_of(r: redis.Redis, queue: str) -> list[bytes]:
    """Every key of ``queue`` in the server (tests may SCAN; the library never does)."""
    return sorted(r.scan_iter(match=f"*{{{queue}}}*", count=1000))


def instances(r: redis.Redis, queue: str, name: str, prefix: str = "orizuru") -> list[str]:
    """The ids of the registered consumers named ``name`` (each instance is ``name@token``)."""
    members = r.zrange(QueueKeys(queue, prefix).consumers, 0, -1)
    return [m.decode() for m in members if m.decode().rsplit("@", 1)[0] == name]


def held_by(r: redis.Redis, queue: str, name: str, prefix: str = "orizuru") -> int:
    """Messages in the lists (processing and prefetch) of the consumers named ``name``."""
    keys = QueueKeys(queue, prefix)
    return sum(
        r.llen(keys.processing(i)) + r.llen(keys.prefetch(i)) for i in instances(r, queue, name)
    )


def alive(pid: int) -> bool:
    """Whether a process of this id exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


class RoundTrips:
    """The requests a client wrote, per thread: each write (a pipeline is one) is a round trip."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_thread: collections.Counter[int] = collections.Counter()

    def record(self) -> None:
        with self._lock:
            self._by_thread[threading.get_ident()] += 1

    def total(self) -> int:
        """Round trips made so far from every thread."""
        with self._lock:
            return sum(self._by_thread.values())

    def here(self) -> int:
        """Round trips made so far from the calling thread."""
        with self._lock:
            return self._by_thread[threading.get_ident()]


def counting_client(url: str, **kwargs: Any) -> tuple[redis.Redis, RoundTrips]:
    """A client whose connections count the requests they send (connection handshakes excluded)."""
    trips = RoundTrips()

    secure = url.startswith("rediss://")
    base: type[redis.Connection] = redis.SSLConnection if secure else redis.Connection

    class CountingConnection(base):  # type: ignore[misc,valid-type]
        _handshaking = False

        def on_connect_check_health(self, check_health: bool = True) -> None:
            self._handshaking = True
            try:
                super().on_connect_check_health(check_health)
            finally:
                self._handshaking = False

        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            if not self._handshaking:
                trips.record()
            super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]

    pool = redis.ConnectionPool.from_url(url, connection_class=CountingConnection, **kwargs)
    return redis.Redis(connection_pool=pool), trips


class Proxy:
    """A loopback TCP proxy to a Redis server that a test can cut and restore, so a client
    meets real connection failures: open sockets are reset and new connects are refused.
    While muted it drops the server's replies: the server acts, the client never hears."""

    def __init__(self, redis_url: str) -> None:
        parsed = urllib.parse.urlsplit(redis_url)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
        self._parsed = parsed  # its scheme, user and TLS options hold through the proxy
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.muted = threading.Event()
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = self._start_acceptor()

    @property
    def url(self) -> str:
        """``redis_url`` with the proxy for its server."""
        user, _, _ = self._parsed.netloc.rpartition("@")
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit(self._parsed._replace(netloc=netloc))

    def cut(self) -> None:
        """Stop listening and reset every proxied connection."""
        self._stop.set()
        self._acceptor.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def restore(self) -> None:
        """Listen again on the same port."""
        self._stop.clear()
        self._listener = self._listen(self.port)
        self._acceptor = self._start_acceptor()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self.cut()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        listener.settimeout(0.05)  # so the acceptor notices cut() promptly
        return listener

    def _start_acceptor(self) -> threading.Thread:
        thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self._target, timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst, mutable in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, mutable), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, mutable: bool) -> None:
        try:
            while data := src.recv(65536):
                if not (mutable and self.muted.is_set()):
                    dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)
