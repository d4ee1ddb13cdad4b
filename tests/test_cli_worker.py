"""``orizuru worker``, run as a user runs it: loading the handler (errors in one line),
waiting for a server that is not up yet, and the asyncio Worker for an ``async def``
handler. ``--processes`` is in ``test_processes``."""

from __future__ import annotations

import signal
import subprocess
import urllib.parse
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from subprocess import Popen

import pytest
import redis

from orizuru_py import Producer, Queue
from orizuru_py.ops.embedded import _free_port
from tests.clirun import Lines, environment, one_error_line, orizuru, started
from tests.support import Proxy, wait_for

# -- a handler that does not load ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("def send(payload)\n    pass\n", ["SyntaxError: ", "line 1"]),
        (
            "import os\n\nAPI_KEY = os.environ['ORIZURU_TEST_NEVER_SET']\n",
            ["KeyError: 'ORIZURU_TEST_NEVER_SET'", ".py, line 3)"],
        ),
        ("import sys\nsys.exit('set API_KEY first')\n", ["SystemExit: set API_KEY first"]),
        ("1 / 0\n", ["ZeroDivisionError: division by zero", ".py, line 1)"]),
    ],
)
def test_a_handler_module_that_raises_on_import_is_one_line_naming_it(
    tmp_path: Path, source: str, says: list[str]
) -> None:
    module = f"tasks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(source)
    done = orizuru("worker", f"{module}:send", "q", env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 2
    line = one_error_line(done)
    assert f"cannot import {module!r}: " in line
    assert [part for part in says if part not in line] == []


# -- a server that is not up yet ----------------------------------------------------------


def worker(url: str, queue: str, redis_url: str) -> AbstractContextManager[Popen[str]]:
    """``orizuru worker`` on ``url``, recording what it handles on ``redis_url``."""
    env = environment(HANDLED_URL=redis_url, HANDLED_KEY=f"{queue}:handled")
    args = ["worker", "tests.handlers:record", queue, "--redis-url", url]
    return started(args, env=env, stderr=subprocess.PIPE)


def test_a_worker_started_before_its_server_waits_for_it_then_works(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    with Proxy(redis_url) as proxy:
        proxy.cut()  # the port refuses connections, as a server that is not up yet
        with worker(proxy.url, queue, redis_url) as p:
            assert p.stderr is not None
            lines = Lines(p.stderr)
            try:
                first = lines.until("waiting for the server")
                assert f"127.0.0.1:{proxy.port}" in first
                lines.until("waiting for the server")  # it tries again
                proxy.restore()
                lines.until("answers")
                Producer(r, queue).push_many([{"n": i} for i in range(20)])
                wait_for(lambda: r.scard(f"{queue}:handled") == 20, timeout=30)
            finally:
                p.send_signal(signal.SIGTERM)
                assert p.wait(30) == 0, lines.rest()
    assert Queue(r, queue).stats().waiting == 0
    r.delete(f"{queue}:handled", f"{queue}:handled:calls")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_worker_waiting_for_its_server_stops_on_a_signal(
    redis_url: str, queue: str, signum: signal.Signals
) -> None:
    nowhere = f"redis://127.0.0.1:{_free_port()}/0"
    with worker(nowhere, queue, redis_url) as p:
        assert p.stderr is not None
        lines = Lines(p.stderr)
        lines.until("waiting for the server")
        p.send_signal(signum)
        assert p.wait(10) == 0
        assert "stopped before the server answered" in lines.rest()[-1]


def test_a_worker_whose_server_refuses_its_password_fails_at_once(
    redis_url: str, queue: str
) -> None:
    """Waiting cannot mend a wrong password (or database): that is one line, at once."""
    parts = urllib.parse.urlsplit(redis_url)
    netloc = f"nobody:wrong@{parts.hostname}:{parts.port}"
    wrong = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    done = orizuru("worker", "tests.handlers:record", queue, "--redis-url", wrong)
    assert done.returncode == 1
    line = one_error_line(done)
    assert "nobody:***@" in line and "wrong" not in line and "waiting" not in done.stderr


# -- the asyncio Worker -------------------------------------------------------------------


def test_an_async_def_handler_runs_on_the_asyncio_worker(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push_many({"n": i} for i in range(20))
    args = ["--redis-url", redis_url, "worker", "tests.ops_handlers:coroutine", queue]
    env = environment(HANDLED_URL=redis_url, HANDLED_KEY=f"{queue}:handled")
    with started(args, env=env, stderr=subprocess.PIPE) as p:
        try:
            wait_for(lambda: r.scard(f"{queue}:handled") == 20, timeout=30)
        finally:
            p.send_signal(signal.SIGTERM)
            assert p.wait(30) == 0
    assert Queue(r, queue).stats().waiting == 0
    r.delete(f"{queue}:handled")
