"""The Celery app the kill tests run workers of: one long task, one that kills its own
process. The broker, its transport options and the queue come from the environment
(``TEST_BROKER``, ``TEST_TRANSPORT_OPTIONS`` as JSON, ``TEST_QUEUE``)."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from celery import Celery

import orizuru_py.kombu  # noqa: F401  (registers orizuru://)


def make_app(broker: str, options: dict[str, Any], queue: str) -> Celery:
    """The app as the README configures it: late acks, a task lost with its worker
    rejected (and so returned), one task reserved at a time."""
    app = Celery("orizuru_kill", broker=broker)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=options,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
    )
    app.task(name="long", bind=True)(long)
    app.task(name="poison", bind=True)(poison)
    return app


def note(path: str, what: str, hostname: str) -> None:
    with open(path, "a") as f:
        f.write(f"{what} {hostname} {os.getpid()} {time.time():.3f}\n")


def long(task: Any, seconds: float, path: str, gate: str | None = None) -> None:
    """Runs ``seconds``; with a ``gate``, only once that file is gone (a test holds the
    first run there until it is done with the worker running it)."""
    note(path, "start", task.request.hostname)
    while gate is not None and os.path.exists(gate):
        time.sleep(0.05)
    time.sleep(seconds)
    note(path, "done", task.request.hostname)


def poison(task: Any, path: str) -> None:
    note(path, "start", task.request.hostname)
    os.kill(os.getpid(), signal.SIGKILL)


if "TEST_BROKER" in os.environ:
    app = make_app(
        os.environ["TEST_BROKER"],
        json.loads(os.environ.get("TEST_TRANSPORT_OPTIONS", "{}")),
        os.environ.get("TEST_QUEUE", "celery"),
    )
