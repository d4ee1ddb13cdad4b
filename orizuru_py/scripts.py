"""The Lua scripts in ``scripts/``, loaded once and run by SHA.

redis-py's own ``Script`` in a pipeline asks ``SCRIPT EXISTS`` on every
execute, a second round trip; ours sends ``EVALSHA`` alone and loads the script
only when the server answers ``NOSCRIPT`` (first use, or after a restart; see
``plan.script``). Inside MULTI/EXEC a ``NOSCRIPT`` would leave the rest of the
transaction applied, so there the source goes along (``eval_args``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

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


def _code(lua: str) -> str:
    """``lua`` without its comments (a helper named in a comment is not used)."""
    return re.sub(r"--[^\n]*", "", lua)


def _with_helpers(body: str) -> str:
    """``body`` after the lib.lua functions it uses, directly or through each other.
    Only those: every function defined costs the server time on every call."""
    needed: list[str] = []
    todo = _HELPER.findall(_code(body))
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.append(name)
        todo.extend(_HELPER.findall(_code(_LIB[name])))
    order = [name for name in _LIB if name in needed]  # lib.lua's order: callees first
    return "\n\n".join([*(_LIB[name] for name in order), body])


class Script:
    """One ``.lua`` file from ``scripts/``, after the lib.lua helpers it uses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = _with_helpers((_DIR / f"{name}.lua").read_text(encoding="utf-8"))
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    def args(self, keys: Sequence[str | bytes], argv: Sequence[Any]) -> tuple[Any, ...]:
        """The EVALSHA command, for ``execute_command`` on a client or a pipeline."""
        return ("EVALSHA", self.sha, len(keys), *keys, *argv)

    def __call__(self, r: Any, keys: Sequence[str | bytes], argv: Sequence[Any] = ()) -> Any:
        """Run it with a blocking client (operators' tools and tests; the queue's own
        parts run it inside their plans)."""
        from .plan import Driver, script

        return Driver(r).run(script(self, keys, argv))

    def load(self, r: Any) -> None:
        """Load the script into a blocking client's server (a cluster: every primary)."""
        r.script_load(self.source)

    def eval_args(self, keys: Sequence[str | bytes], argv: Sequence[Any]) -> tuple[Any, ...]:
        """The EVAL command: the source travels along (for MULTI/EXEC)."""
        return ("EVAL", self.source, len(keys), *keys, *argv)


# A message's way: pushed, taken, started (workers), settled.
PUSH = Script("push")
TAKE = Script("take")
START = Script("start")
ACK = Script("ack")
MOVE = Script("move")
RETRY = Script("retry")
DEAD_LETTER = Script("dead_letter")
DROP = Script("drop")
RELEASE = Script("release")
HAND_BACK = Script("hand_back")
# A consumer's life: its beat; its close, or its reaping by the GC.
REGISTER = Script("register")
RECOVER = Script("recover")
# The garbage collector.
EXPIRED = Script("expired")
REQUEUE_UNACK = Script("requeue_unack")
PROMOTE = Script("promote")
SWEEP = Script("sweep")
# Operators.
REVIVE = Script("revive")
FIND = Script("find")
PEEK = Script("peek")
CANCEL_MARK = Script("cancel_mark")
CANCEL_END = Script("cancel_end")
