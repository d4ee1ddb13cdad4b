"""The Lua scripts in ``scripts/``, loaded once and run by SHA.

redis-py's own ``Script`` in a pipeline asks ``SCRIPT EXISTS`` on every
execute, a second round trip; ours sends ``EVALSHA`` alone and loads the script
only when the server answers ``NOSCRIPT`` (first use, or after a restart).
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

_DIR = resources.files(__package__) / "scripts"
_HELPER = re.compile(r"\boz_\w+")


def _helpers() -> dict[str, str]:
    """lib.lua's functions by name, each with the comment above it."""
    blocks = (_DIR / "lib.lua").read_text(encoding="utf-8").split("\n\n")
    found = {}
    for block in blocks:
        match = re.search(r"^local function (oz_\w+)", block, re.M)
        if match:
            found[match.group(1)] = block
    return found


_LIB = _helpers()


def _with_helpers(body: str) -> str:
    """``body`` after the lib.lua functions it uses, directly or through each other.
    Only those: every function defined costs the server time on every call."""
    needed: list[str] = []
    todo = _HELPER.findall(body)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.append(name)
        todo.extend(_HELPER.findall(_LIB[name]))
    order = [name for name in _LIB if name in needed]  # lib.lua's order: callees first
    return "\n\n".join([*(_LIB[name] for name in order), body])


class Script:
    """One ``.lua`` file from ``scripts/``, after the lib.lua helpers it uses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _with_helpers((_DIR / f"{name}.lua").read_text(encoding="utf-8"))
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def args(
        self, keys: tuple[str, ...] | list[str], argv: tuple[Any, ...] | list[Any]
    ) -> tuple[Any, ...]:
        """The EVALSHA command, for ``execute_command`` on a client or a pipeline."""
        return ("EVALSHA", self.sha, len(keys), *keys, *argv)

    def __call__(
        self, r: Any, keys: tuple[str, ...] | list[str], argv: tuple[Any, ...] | list[Any] = ()
    ) -> Any:
        cmd = self.args(keys, argv)
        try:
            return r.execute_command(*cmd)
        except NoScriptError:
            self.load(r)
            return r.execute_command(*cmd)

    def load(self, r: Any) -> None:
        """Load the script (a cluster client loads it on every primary)."""
        r.script_load(self.source)


REGISTER = Script("register")
TAKE = Script("take")
ACK = Script("ack")
MOVE = Script("move")
DEAD_LETTER = Script("dead_letter")
RETRY = Script("retry")
SCHEDULE = Script("schedule")
PROMOTE = Script("promote")
RELEASE = Script("release")
DEREGISTER = Script("deregister")
EXPIRED = Script("expired")
REAP = Script("reap")
REQUEUE_UNACK = Script("requeue_unack")
REVIVE = Script("revive")
