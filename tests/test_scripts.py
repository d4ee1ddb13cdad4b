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


def test_a_script_defines_only_the_helpers_it_calls() -> None:
    defined = {s.name: set(re.findall(r"local function (oz_\w+)", s.source)) for s in ALL}
    assert defined["ack"] == set()
    assert defined["take"] == {"oz_push_all"}
    assert defined["reap"] >= {"oz_return_all", "oz_return", "oz_deliveries", "oz_u32"}
    assert "oz_push_all" not in defined["reap"]
