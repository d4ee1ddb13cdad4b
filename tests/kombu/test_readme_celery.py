"""The README's Celery section, run: its app, on this session's server, with a worker
in a thread; a task's result comes back and ``inspect().ping()`` reaches the worker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from celery.contrib.testing.worker import start_worker

from tests.kombu.workers import orizuru_url

README = Path(__file__).resolve().parents[2] / "README.rst"


def celery_snippet() -> str:
    text = README.read_text()
    section = text.split("\nCelery and kombu\n----------------\n", 1)[1]
    block = section.split(".. code-block:: python\n\n", 1)[1]
    lines = re.match(r"((?:    .*\n|\n)+)", block)
    assert lines is not None
    return "\n".join(line[4:] for line in lines.group(1).splitlines())


def test_the_readme_s_celery_app_runs_tasks_and_answers_inspect(redis_url: str) -> None:
    code = celery_snippet()
    assert "orizuru://127.0.0.1:6379/0" in code and "redis://127.0.0.1:6379/1" in code
    code = code.replace("orizuru://127.0.0.1:6379/0", orizuru_url(redis_url))
    code = code.replace("redis://127.0.0.1:6379/1", redis_url)
    scope: dict[str, Any] = {"__name__": "tasks"}
    exec(compile(code, str(README), "exec"), scope)
    app, add = scope["app"], scope["add"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        assert add.delay(2, 3).get(timeout=30) == 5
        replies = app.control.inspect(timeout=2.0).ping() or {}
        assert [r for r in replies.values() if r == {"ok": "pong"}], replies
    app.close()
