"""The README's Python examples run as written (against the test server)."""

from __future__ import annotations

import re
from pathlib import Path

import redis

README = Path(__file__).resolve().parent.parent / "README.rst"


def python_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    return [re.sub(r"^    ", "", b, flags=re.M) for b in blocks]


def test_readme_examples_run(r: redis.Redis, redis_url: str, queue: str) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 2
    code = "\n".join(blocks)
    code = code.replace("redis://127.0.0.1:6379/0", redis_url).replace('"emails"', repr(queue))
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    report = namespace["report"]
    assert report.consumers_reaped == 0  # type: ignore[attr-defined]
    assert r.zcard(f"orizuru:{{{queue}}}:delayed") == 1
    r.delete(f"orizuru:{{{queue}}}:delayed")
