"""``orizuru dashboard`` as a process: its options reach the app, Ctrl-C ends it cleanly."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from orizuru_py.ops.embedded import _free_port
from tests.support import wait_for

from .conftest import push
from .served import Client

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def dashboard(
    redis_url: str, prefix: str, *options: str, env: dict[str, str] | None = None
) -> Iterator[tuple[Client, subprocess.Popen[str]]]:
    """The real command on a free port; yields (a client for it, the process)."""
    port = _free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.dashboard.serve_child", redis_url, "--prefix", prefix,
         "--port", str(port), *options],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    client = Client(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: _answers(client) or child.poll() is not None, timeout=20)
        assert child.poll() is None, child.communicate()[1]
        yield client, child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
        child.wait(timeout=10)


def _answers(client: Client) -> bool:
    try:
        client.call("/favicon.ico")
    except OSError:
        return False
    return True


def test_read_only_command_serves_the_pages_and_refuses_actions(
    redis_url: str, r: redis.Redis, prefix: str
) -> None:
    push(r, prefix, "emails", [{"n": 1}])
    with dashboard(redis_url, prefix, "--read-only") as (client, child):
        status, page = client.call("/")
        assert status == 200 and '"read_only": true' in page
        assert client.call("/api/queues")[1]["queues"][0]["waiting"] == 1
        assert client.call("/api/actions/pause/emails", body={})[0] == 403
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) == 0


def test_the_password_comes_from_the_environment(redis_url: str, prefix: str) -> None:
    auth = "Basic " + base64.b64encode(b"ops:hunter2").decode()
    with dashboard(redis_url, prefix, env={"ORIZURU_DASHBOARD_PASSWORD": "hunter2"}) as (
        client,
        _,
    ):
        assert client.call("/api/queues")[0] == 401
        assert client.call("/api/queues", headers={"Authorization": auth})[0] == 200
