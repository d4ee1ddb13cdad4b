"""The Lua scripts: each compiles on the server and carries only the helpers it uses."""

from __future__ import annotations

import random
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


def test_the_server_spells_a_15_byte_id_as_python_does(r: redis.Redis) -> None:
    """oz_hex15 (struct and bit, in C) against bytes.hex(), on the ids' edges and at random:
    the cancel marks and unique keys the scripts write are found by these spellings."""
    rng = random.Random(15)
    ids = [bytes([b]) * 15 for b in (0, 0x7F, 0x80, 0xFF)]
    ids += [bytes(rng.getrandbits(8) for _ in range(15)) for _ in range(2000)]
    source = scripts._LIB["oz_hex15"] + (
        "\nlocal out = {}\nfor i, s in ipairs(ARGV) do out[i] = oz_hex15(s, 1) end\nreturn out"
    )
    assert [h.decode() for h in r.eval(source, 0, *ids)] == [i.hex() for i in ids]
