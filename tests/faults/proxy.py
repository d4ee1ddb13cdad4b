"""A TCP proxy on loopback that cuts connections at random.

Each chunk it forwards, in either direction, is with probability ``cut_probability``
dropped instead and its connection cut (both sockets closed). A cut of a command
means the server never saw it; a cut of a reply means the server did the work
and the client never heard: the case a reliable queue must survive.
``lose_reply_with`` makes that happen, once, to a chosen command. Threads and
blocking sockets; at most ``max_connections`` at once, loopback only.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from types import TracebackType

_CHUNK = 65536


class _Pair:
    """One client connection and its upstream connection; closed once, by whoever first."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self._lock = threading.Lock()
        self.closed = False

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class ChaosProxy:
    """Forwards 127.0.0.1:<port> to ``target`` (a loopback port), cutting at random."""

    def __init__(
        self,
        target_port: int,
        cut_probability: float = 0.0,
        *,
        max_connections: int = 64,
        seed: int | None = None,
    ) -> None:
        self.target = ("127.0.0.1", target_port)
        self.cut_probability = cut_probability
        self.max_connections = max_connections
        self.cuts = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._marker: bytes | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # so the accept loop notices close()
        self.port: int = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._accepter = threading.Thread(target=self._accept, name="faults-proxy", daemon=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                full = len(self._pairs) >= self.max_connections
            try:
                if full:
                    raise OSError("proxy full")
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
            for to_server in (True, False):
                threading.Thread(target=self._pump, args=(pair, to_server), daemon=True).start()

    def _pump(self, pair: _Pair, to_server: bool) -> None:
        src, dst = (pair.client, pair.upstream) if to_server else (pair.upstream, pair.client)
        try:
            while data := src.recv(_CHUNK):
                if self._should_cut(data if not to_server else b""):
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            pair.close()
            with self._lock:
                self._pairs.discard(pair)

    def _should_cut(self, reply: bytes) -> bool:
        with self._lock:
            marked = self._marker is not None and self._marker in reply
            if marked:
                self._marker = None
            cut = marked or self._rng.random() < self.cut_probability
            self.cuts += cut
        return cut

    def lose_reply_with(self, marker: bytes) -> None:
        """Once: drop the next reply that contains ``marker`` and cut its connection (the
        command ran; its client never hears)."""
        self._marker = marker

    def cut_all(self) -> int:
        """Cut every open connection now; returns how many."""
        with self._lock:
            pairs = list(self._pairs)
            self.cuts += len(pairs)
        for p in pairs:
            p.close()
        return len(pairs)

    def close(self) -> None:
        self._closing.set()
        self._accepter.join(5)
        self._listener.close()
        self.cut_all()

    def __enter__(self) -> ChaosProxy:
        self._accepter.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
