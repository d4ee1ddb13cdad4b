"""The subcommands that bring something of their own: ``orizuru server``, ``demo``, ``bench``."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import redis

from orizuru_py.ops import cli, demo
from orizuru_py.ops.embedded import _free_port
from tests.clirun import ORIZURU, ROOT, Lines, environment, one_error_line, orizuru, started
from tests.support import alive

TABLE = ("orizuru demo on ", "pushed ", "killed ", "recovered ", "acked ", "lost ", "throughput ")


# -- server -----------------------------------------------------------------------------


def test_server_runs_valkey_in_the_foreground_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    args = ["server", "--port", str(port), "--dir", str(tmp_path), "--appendonly"]
    with started(args, stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        first = p.stdout.readline()
        assert f"Valkey on redis://127.0.0.1:{port}/0" in first and "append-only" in first
        served = redis.Redis(port=port)
        served.set("k", "v")
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 0
        assert p.stdout.read().splitlines()[-1] == "orizuru server: stopped"
    assert list(tmp_path.glob("appendonlydir/*.aof"))


def test_server_prints_the_line_to_export_and_what_stops_it() -> None:
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with started(["server", "--port", str(port)], stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        lines = Lines(p.stdout)
        assert lines.until("export ") == f"export REDIS_URL={url}"
        stops = lines.until("stops")
        p.send_signal(signal.SIGINT)
        assert p.wait(15) == 0
    assert "Ctrl-C" in stops and "in memory only" in stops


def test_server_stops_with_its_valkey_when_its_terminal_closes() -> None:
    """SIGHUP: the terminal it ran in is gone. No Valkey may outlive it, holding the port."""
    port = _free_port()
    with started(["server", "--port", str(port)], stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        lines = Lines(p.stdout)
        lines.until("export ")
        valkey = int(redis.Redis(port=port).info("server")["process_id"])
        try:
            p.send_signal(signal.SIGHUP)
            assert p.wait(15) == 0
            assert lines.rest()[-2:] == [
                "orizuru server: SIGHUP: stopping",
                "orizuru server: stopped",
            ]
            assert not alive(valkey)
        finally:
            if alive(valkey):
                os.kill(valkey, signal.SIGKILL)


def test_server_on_a_taken_port_says_to_pick_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = orizuru("server", "--port", str(port))
    assert done.returncode == 1
    assert f"port {port} of 127.0.0.1 is taken" in one_error_line(done)
    assert "--port" in one_error_line(done)


# -- demo, bench --------------------------------------------------------------------------


def demo_keys(r: redis.Redis, output: str) -> list[bytes]:
    """The keys left of the demo whose output is ``output`` (it names its queue)."""
    queue = output.split(" to ", 1)[1].split()[0]
    assert queue.startswith("demo-")
    return sorted(r.scan_iter(match=f"*{queue}*", count=1000))


def test_demo_loses_nothing_and_leaves_no_key(r: redis.Redis, redis_url: str) -> None:
    out = io.StringIO()
    assert demo.main(redis_url, 600, 2, out) == 0
    text = out.getvalue()
    assert "lost              0" in text
    assert "recovered        50" in text  # the killed consumer's whole batch
    assert demo_keys(r, text) == []


def test_demo_prints_its_table_and_nothing_between_its_lines(redis_url: str) -> None:
    """On a terminal stdout and stderr are one screen: a log line would cut the table."""
    done = subprocess.run(
        [*ORIZURU, "demo", "--messages", "600", "--consumers", "2", "--redis-url", redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=environment(),
    )
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert [line.startswith(TABLE) for line in lines] == [True] * len(TABLE), lines


def test_demo_cleans_up_on_ctrl_c(r: redis.Redis, redis_url: str) -> None:
    args = ["demo", "--messages", "100000", "--redis-url", redis_url]
    with started(args, stdout=subprocess.PIPE) as p:
        assert p.stdout is not None
        text = ""
        for line in p.stdout:
            text += line
            if line.startswith("killed"):
                break
        p.send_signal(signal.SIGINT)
        assert p.wait(30) == 130
        assert "interrupted" in p.stdout.read()
    assert demo_keys(r, text) == []


def test_orizuru_demo_runs_on_its_own_embedded_server() -> None:
    done = orizuru("demo", "--messages", "1000", env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "embedded Valkey" in done.stdout
    assert "lost              0" in done.stdout


def test_bench_command_measures_on_the_given_server(
    capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    code = cli.main(["bench", "--messages", "200", "--rounds", "1", "--redis-url", redis_url])
    assert code == 0
    out = capsys.readouterr().out
    assert "next_batch" in out and "no-op Observer" in out
