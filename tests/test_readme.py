"""The README's Python examples run as written (against the test server)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from orizuru_py import Queue
from tests.support import wait_for

README = Path(__file__).resolve().parent.parent / "README.rst"
DEFAULT = "redis://127.0.0.1:6379/0"
NOWHERE = "redis://127.0.0.1:1/0"


def python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    # The Celery section's app needs a worker: tests/kombu/test_readme_celery.py runs it.
    blocks = [b for b in blocks if "orizuru_py.kombu" not in b]
    return [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]


@pytest.mark.parametrize("variable", ["REDIS_URL", "ORIZURU_REDIS_URL"])
def test_readme_examples_run_on_the_server_the_environment_names(
    r: redis.Redis, redis_url: str, queue: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """As the ``orizuru`` command does: $ORIZURU_REDIS_URL, else $REDIS_URL."""
    blocks = python_blocks()
    assert len(blocks) >= 2
    code = "\n".join(blocks)
    # The default server and the variable not chosen lead nowhere: an example that
    # ignored the variable would fail.
    assert DEFAULT in code
    code = code.replace(DEFAULT, NOWHERE).replace('"emails"', repr(queue))
    monkeypatch.setenv("REDIS_URL", NOWHERE)
    monkeypatch.delenv("ORIZURU_REDIS_URL", raising=False)
    monkeypatch.setenv(variable, redis_url)
    code = code.replace('"outbox"', repr(f"{queue}-outbox"))
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)
        # The FastAPI app: an endpoint pushes, the worker in its lifespan handles.
        with TestClient(namespace["app"]) as client:  # type: ignore[arg-type]
            reply = client.post("/emails", params={"to": "c@example.com"})
            assert reply.status_code == 200 and len(reply.json()["id"]) > 0
            wait_for(lambda: "worker sends to c@example.com" in out.getvalue(), timeout=10)
    # What the comments next to the prints say they print, in order.
    assert out.getvalue().splitlines() == [
        "send to a@example.com attempt 1",
        "[0, 1, 2]",
        "async send to b@example.com",
        "True",
        "True",
        "worker sends to c@example.com",
    ]
    outbox = Queue(r, f"{queue}-outbox")
    assert (outbox.stats().waiting, outbox.stats().dead) == (0, 0)
    outbox.forget()
    report = namespace["report"]
    assert report.consumers_reaped == 0  # type: ignore[attr-defined]
    assert r.zcard(f"orizuru:{{{queue}}}:delayed") == 1
    Queue(r, queue).purge(dead=True)
    Queue(r, queue).forget()
