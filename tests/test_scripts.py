"""The Lua scripts: each compiles on the server and carries only the helpers it uses."""

from __future__ import annotations

import re

import pytest
import redis

from orizuru_py import scripts

ALL = [s for s in vars(scripts).values() if isinstance(s, scripts.Script)]


@pytest.mark.parametrize("script", ALL, ids=lambda s: s.name)
def test_every_script_compiles_on_the_server(r: redis.Redis, script: scripts.Script) -> None:
    assert r.script_load(script.source) == script.sha


def _called(source: str) -> set[str]:
    return set(re.findall(r"\b(oz_\w+)\(", source))


def test_a_script_defines_only_the_helpers_it_calls_directly_or_through_each_other() -> None:
    lib = scripts._LIB
    for s in ALL:
        body = (scripts._DIR / f"{s.name}.lua").read_text(encoding="utf-8")
        needed, todo = set(), list(_called(body))
        while todo:
            name = todo.pop()
            if name not in needed:
                needed.add(name)
                todo += _called(lib[name])
        assert set(re.findall(r"local function (oz_\w+)", s.source)) == needed, s.name


def test_the_hot_scripts_carry_few_helpers() -> None:
    defined = {s.name: set(re.findall(r"local function (oz_\w+)", s.source)) for s in ALL}
    assert "oz_return_all" not in defined["take"] | defined["ack"] | defined["start"]
    assert "oz_now_ms" not in defined["take"]  # a take reckons its deadline client-side
