"""The ``orizuru`` command, run as a user runs it (a subprocess) on the real server: the
subcommands that look at and act on queues, and what every subcommand shares (the
server it picks, errors in one line). The worker's are in ``test_cli_worker``, those
that bring a server of their own in ``test_cli_tools``."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pty
import signal
import subprocess
import sys
import time
import tomllib
import urllib.parse
from typing import Any

import pytest
import redis

import orizuru_py
from orizuru_py import BytesCodec, Consumer, Producer, Queue
from orizuru_py.keys import QueueKeys
from orizuru_py.ops import cli
from orizuru_py.ops.commands import tools
from tests.clirun import ROOT, ok, one_error_line, orizuru
from tests.support import keys_of

# -- stats ----------------------------------------------------------------------------


def test_stats_json_counts_each_list_and_lists_consumers(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    producer = Producer(r, queue)
    producer.push_many(range(5))
    producer.push(9, delay=60)
    consumer = Consumer(r, queue)
    assert consumer.next(timeout=1) is not None
    try:
        doc = json.loads(ok("stats", queue, "--json", "--redis-url", redis_url))
    finally:
        consumer.close()
    (q,) = doc["queues"]
    counts = {k: q[k] for k in ("queue", "waiting", "delayed", "unacked", "dead", "in_flight")}
    assert counts == {
        "queue": queue,
        "waiting": 4,
        "delayed": 1,
        "unacked": 0,
        "dead": 0,
        "in_flight": 1,
    }
    (c,) = q["consumers"]
    assert c["name"] == consumer.id and c["held"] == 1 and c["overdue"] is False
    assert q["live_consumers"] == 1 and q["paused"] is False


def test_stats_table_shows_queue_counts_then_consumers_with_overdue_marked(
    r: redis.Redis, redis_url: str, queue: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Producer(r, queue).push_many(range(3))
    frozen = Consumer(r, queue, heartbeat_timeout=0.2)
    assert frozen.next(timeout=1) is not None
    frozen.stop_heartbeat()
    time.sleep(0.3)
    assert cli.main(["stats", queue, "--redis-url", redis_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["queue", "waiting", "delayed", "in", "flight", "unacked", "dead",
                                "expired", "paused", "live", "overdue", "oldest", "acked/s",
                                "failed/s"]  # fmt: skip
    assert lines[1].split()[:10] == [queue, "2", "0", "1", "0", "0", "0", "no", "0", "1"]
    consumer_line = lines[4].split()
    assert consumer_line[:3] == [queue, frozen.id, "1"] and consumer_line[4] == "OVERDUE"


def test_global_options_work_before_and_after_the_subcommand(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue, prefix="elsewhere").push(1)
    before = ok("--redis-url", redis_url, "--prefix", "elsewhere", "stats", queue, "--json")
    after = ok("stats", queue, "--json", "--prefix", "elsewhere", "--redis-url", redis_url)
    assert json.loads(before)["queues"][0]["waiting"] == 1
    assert json.loads(after)["queues"][0]["waiting"] == 1
    r.delete(QueueKeys(queue, "elsewhere").queue)


def test_stats_of_an_unknown_queue_says_so(redis_url: str, queue: str) -> None:
    done = orizuru("stats", queue, "--redis-url", redis_url)
    assert done.returncode == 1
    assert "unknown queue" in one_error_line(done)


def test_stats_watch_prints_again_every_interval(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push(1)
    cmd = [sys.executable, "-m", "orizuru_py", "--redis-url", redis_url]
    args = ["stats", queue, "--json", "--watch", "0.2"]
    with subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE, text=True, cwd=ROOT) as p:
        assert p.stdout is not None
        first = json.loads(p.stdout.readline())
        Producer(r, queue).push(2)
        second = json.loads(p.stdout.readline())
        while second["queues"][0]["waiting"] < 2:
            second = json.loads(p.stdout.readline())
        p.send_signal(signal.SIGINT)
    assert first["queues"][0]["waiting"] == 1 and second["queues"][0]["waiting"] == 2
    r.delete(QueueKeys(queue).queue)


# -- peek, purge, requeue, gc, pause, resume, cancel ----------------------------------


def test_peek_json_decodes_messages_and_marks_only_garbage_undecodable(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    keys = QueueKeys(queue)
    ids = Producer(r, queue).push_many([{"n": 1}, "two"])
    raw_id = Producer(r, queue, codec=BytesCodec()).push(b"\xc1 not msgpack")
    r.lpush(keys.queue, b"garbage")
    doc = json.loads(ok("peek", queue, "--json", "-n", "4", "--redis-url", redis_url))
    msgs = doc["messages"]
    assert [m["id"] for m in msgs] == [*ids, raw_id, None]
    assert [m["payload"] for m in msgs[:2]] == [{"n": 1}, "two"]
    assert [m["undecodable"] for m in msgs] == [False, False, False, True]
    assert "does not decode with MsgpackCodec" in msgs[2]["error"]
    assert msgs[3]["error"] and msgs[3]["raw"] == "b'garbage'"
    text = ok("peek", queue, "--codec", "orizuru_py:BytesCodec", "--redis-url", redis_url)
    assert text.splitlines()[2] == f"{raw_id}  attempt 1  b'\\xc1 not msgpack'"
    assert text.splitlines()[3].startswith("<undecodable: ")
    r.delete(keys.queue)


def test_peek_says_empty_and_refuses_a_bad_count(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push(1, delay=60)
    assert (
        ok("peek", queue, "--where", "dead", "--redis-url", redis_url)
        == f"dead of {queue}: empty\n"
    )
    assert "[due in " in ok("peek", queue, "--where", "delayed", "--redis-url", redis_url)
    done = orizuru("peek", queue, "-n", "0", "--redis-url", redis_url)
    assert done.returncode == 2
    assert "argument -n: must be an integer > 0, got '0'" in one_error_line(done)
    r.delete(QueueKeys(queue).delayed)


def test_peek_cuts_big_payloads_unless_asked_for_them_whole(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue, codec=BytesCodec(), max_payload_bytes=2 << 20).push(b"y" * (1 << 20))
    line = ok("peek", queue, "--codec", "orizuru_py:BytesCodec", "--redis-url", redis_url)
    assert len(line) < 20_000 and "first 4,096 of 1,048,5" in line and "--full" in line
    doc = json.loads(ok("peek", queue, "--json", "--redis-url", redis_url))
    (m,) = doc["messages"]
    assert m["truncated"] and m["payload"] is None and m["size"] > 1 << 20
    whole = ok(
        "peek", queue, "--full", "--codec", "orizuru_py:BytesCodec", "--redis-url", redis_url
    )
    assert len(whole) > 1 << 20 and "--full" not in whole
    r.delete(QueueKeys(queue).queue)


def test_peek_escapes_control_characters_and_survives_deep_nesting(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    deep: list[Any] = []
    for _ in range(1000):
        deep = [deep]
    producer = Producer(r, queue)
    producer.push("victim")
    with Consumer(r, queue) as consumer:
        consumer.next(timeout=1.0).dead_letter("\x1b[31mred")  # type: ignore[union-attr]
    producer.push(deep)
    producer.push("\x1b[2J\x1b]0;owned\x07")
    lines = ok("peek", queue, "--redis-url", redis_url).splitlines()
    assert "cannot show it as text" in lines[0]
    assert "\x1b" not in lines[1] and "\\x1b[2J" in lines[1]
    dead = ok("peek", queue, "--where", "dead", "--redis-url", redis_url)
    assert "\x1b" not in dead and "[dead: \\x1b[31mred]" in dead
    doc = json.loads(ok("peek", queue, "--json", "--redis-url", redis_url))
    assert doc["messages"][0]["error"] == "nested too deep to print as JSON"
    Queue(r, queue).purge(dead=True)


def test_purge_needs_yes_without_a_terminal_and_knows_unknown_queues(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push_many(range(3))
    refused = orizuru("purge", queue, "--redis-url", redis_url)
    assert refused.returncode == 2 and "--yes" in one_error_line(refused)
    assert r.llen(QueueKeys(queue).queue) == 3
    assert (
        ok("purge", queue, "--yes", "--redis-url", redis_url)
        == f"purged 3 message(s) from {queue}\n"
    )
    unknown = orizuru("purge", "no-such-queue-anywhere", "--yes", "--redis-url", redis_url)
    assert unknown.returncode == 1 and "unknown queue 'no-such-queue-anywhere'" in one_error_line(
        unknown
    )


def test_requeue_revives_dead_letters_and_reports_garbage(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    keys = QueueKeys(queue)
    r.lpush(keys.queue, b"garbage")
    Producer(r, queue).push("poison")
    consumer = Consumer(r, queue)
    guard = consumer.next(timeout=1)  # the garbage was dead-lettered on the way
    assert guard is not None
    guard.dead_letter("handler gave up")
    consumer.close()
    dead = ok("peek", queue, "--where", "dead", "--redis-url", redis_url).splitlines()
    assert dead[0].startswith("<undecodable: ") and dead[1].endswith(
        "'poison'  [dead: handler gave up]"
    )
    out = ok("requeue", queue, "--redis-url", redis_url)
    assert (
        out
        == f"requeued 1 dead letter(s) to {queue}; 1 record(s) that are not messages left dead\n"
    )
    assert r.llen(keys.queue) == 1 and r.llen(keys.dead) == 1
    ok("purge", queue, "--dead", "--yes", "--redis-url", redis_url)
    assert keys_of(r, queue) == []


def test_gc_reports_a_pass_in_words(r: redis.Redis, redis_url: str, queue: str) -> None:
    Producer(r, queue).push_many(range(3))
    dead = Consumer(r, queue, heartbeat_timeout=0.2)
    assert len(dead.next_batch(3, timeout=1)) == 3
    dead.stop_heartbeat()
    time.sleep(0.3)
    out = ok("gc", queue, "--redis-url", redis_url)
    assert out.startswith(f"gc of {queue}: 3 requeued, 0 dead-lettered, 1 dead consumer(s) reaped")
    assert ok("gc", queue, "--redis-url", redis_url) == f"gc of {queue}: nothing to do\n"
    r.delete(QueueKeys(queue).queue)


def test_gc_with_an_interval_logs_every_pass_until_interrupted(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    Producer(r, queue).push(1)
    cmd = [sys.executable, "-m", "orizuru_py", "gc", queue, "--interval", "0.1"]
    with subprocess.Popen(
        [*cmd, "--redis-url", redis_url], stderr=subprocess.PIPE, text=True, cwd=ROOT
    ) as p:
        assert p.stderr is not None
        passes = []
        for line in p.stderr:
            if f"gc of {queue}: nothing to do" in line:
                passes.append(line)
            if len(passes) == 3:
                break
        p.send_signal(signal.SIGINT)
        assert p.wait(10) == 0
    assert len(passes) == 3
    r.delete(QueueKeys(queue).queue)


def test_pause_resume_and_cancel_act_on_the_queue(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    q = Queue(r, queue)
    mid = Producer(r, queue).push("never")
    assert ok("pause", queue, "--redis-url", redis_url).startswith(f"paused {queue}")
    assert q.paused
    ok("resume", queue, "--redis-url", redis_url)
    assert not q.paused
    assert (
        ok("cancel", queue, mid, "--redis-url", redis_url)
        == f"cancelled {mid}: it will not be delivered\n"
    )
    assert q.stats().waiting == 0
    again = orizuru("cancel", queue, mid, "--redis-url", redis_url)
    assert again.returncode == 1 and "not cancelled" in again.stdout


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "code", "says"),
    [
        (
            ["stats", "--redis-url", "redis://127.0.0.1:1/0"],
            {},
            1,
            "cannot reach redis://127.0.0.1:1/0",
        ),
        (
            ["stats"],
            {"REDIS_URL": "redis://u:secret@127.0.0.1:1/0"},
            1,
            "redis://u:***@127.0.0.1:1/0",
        ),
        (["--redis-url", "http://x", "stats"], {}, 2, "'http://x' is not a Redis URL"),
        (["stats"], {"REDIS_URL": "nonsense"}, 2, "$REDIS_URL: 'nonsense' is not a Redis URL"),
        (["stats", "--log-level", "loud"], {}, 2, "argument --log-level: invalid choice: 'LOUD'"),
        (["stats", "--watch", "abc"], {}, 2, "must be a number > 0, got 'abc'"),
        (["gc", "q", "--interval", "0"], {}, 2, "must be a number > 0, got '0'"),
        (["demo", "--messages", "0"], {}, 2, "must be an integer > 0, got '0'"),
        (["demo", "--consumers", "-1"], {}, 2, "must be an integer > 0, got '-1'"),
        (["worker", "m:f", "q", "--metrics-port", "70000"], {}, 2, "port from 1 to 65535"),
        (["stats", "bad name"], {}, 2, "contains ' '"),
        (["worker", "tests.handlers:record", "q", "--sentinel", "h:1"], {}, 2, "go together"),
        (["worker", "tests.handlers:missing", "q"], {}, 2, "has no attribute 'missing'"),
        (
            ["worker", "tests.handlers:not_callable", "q"],
            {},
            2,
            "'tests.handlers:not_callable' is an int, not a function",
        ),
        (
            ["stats"],
            {"ORIZURU_REDIS_URL": "nonsense"},
            2,
            "$ORIZURU_REDIS_URL: 'nonsense' is not a Redis URL",
        ),
    ],
)
def test_an_error_is_one_line_and_an_exit_code(
    args: list[str], env: dict[str, str], code: int, says: str
) -> None:
    done = orizuru(*args, env=env)
    assert done.returncode == code
    assert says in one_error_line(done)


def test_a_missing_dashboard_is_one_line_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> None:
        raise ImportError("No module named 'starlette'")

    monkeypatch.setattr(tools, "dashboard_module", missing)
    assert cli.main(["dashboard", "--port", "8080"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "orizuru: error: the dashboard is not installed (No module named 'starlette'): "
        "pip install 'orizuru_py[dashboard]'\n"
    )


def test_a_database_the_server_does_not_have_is_one_line_naming_the_url(
    redis_url: str,
) -> None:
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(redis_url)._replace(path="/99"))
    done = orizuru("stats", "--redis-url", url)
    assert done.returncode == 1
    line = one_error_line(done)
    assert url in line and "DB index is out of range" in line


def test_orizuru_redis_url_names_the_server_before_redis_url(
    r: redis.Redis, redis_url: str, queue: str
) -> None:
    """For a shell whose REDIS_URL belongs to another application."""
    Producer(r, queue).push(1)
    env = {"ORIZURU_REDIS_URL": redis_url, "REDIS_URL": "redis://127.0.0.1:1/0"}
    done = orizuru("stats", queue, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["queues"][0]["waiting"] == 1
    r.delete(QueueKeys(queue).queue)


def test_version_is_the_installed_one_that_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert orizuru_py.__version__ == declared == importlib.metadata.version("orizuru_py")
    assert ok("--version") == f"orizuru {declared}\n"


def test_every_option_says_its_default() -> None:
    commands_ = cli.parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    silent = [
        f"{name} {action.option_strings[0]}"
        for name, sub in commands_.items()
        for action in sub._actions
        if action.option_strings and action.dest != "help" and "(default:" not in action.help
    ]
    assert silent == []


def test_purge_asks_on_a_terminal(r: redis.Redis, redis_url: str, queue: str) -> None:
    Producer(r, queue).push_many(range(2))
    master, child = pty.openpty()
    cmd = [sys.executable, "-m", "orizuru_py", "purge", queue, "--redis-url", redis_url]
    with subprocess.Popen(cmd, stdin=child, stdout=child, stderr=child, cwd=ROOT) as p:
        os.close(child)
        screen = b""
        while b"[y/N]" not in screen:
            screen += os.read(master, 1024)
        os.write(master, b"y\n")
        assert p.wait(30) == 0
        while b"purged" not in screen:
            screen += os.read(master, 1024)
    os.close(master)
    assert (
        f"delete 2 waiting, 0 delayed and 0 unacked message(s) of queue {queue}?".encode() in screen
    )
    assert f"purged 2 message(s) from {queue}".encode() in screen
    assert r.llen(QueueKeys(queue).queue) == 0
