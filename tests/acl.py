"""A user with exactly the README's ACL rule, and what the server refused it."""

from __future__ import annotations

import contextlib
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from tests.servers import restricted_user

README = Path(__file__).resolve().parent.parent / "README.rst"
# What the README says to add on Redis 7.2+ and Valkey: commands an older server lacks.
ADDITIONS = ("+waitaof", "+client|setinfo")
SELECT = "+select"  # what the README says to add for a database other than 0


def readme_rule() -> list[str]:
    """The words after ``ACL SETUSER NAME`` in the README's rule."""
    found = re.findall(r"^    ACL SETUSER (\S+) (.+)$", README.read_text(encoding="utf-8"), re.M)
    assert len(found) == 1, "the README gives exactly one ACL rule"
    return str(found[0][1]).split()


@contextlib.contextmanager
def readme_user(admin: redis.Redis) -> Iterator[str]:
    """A fresh user on ``admin``'s server with the README's rule (and the additions it
    names, where the server has those commands, and for a database other than 0);
    yields a URL logging in as it."""
    words = readme_rule()
    patterns = [w for w in words if w.startswith(("~", "%"))]
    commands = [w for w in words if w.startswith(("+", "-"))]
    assert set(words) - set(patterns) - set(commands) == {"on", ">PASSWORD", "resetchannels"}
    assert patterns == ["~orizuru:*"], patterns
    name = f"orizuru-acl-{secrets.token_hex(4)}"
    with restricted_user(admin, name, secrets.token_hex(8), patterns, commands) as url:
        for addition in ADDITIONS:
            with contextlib.suppress(redis.ResponseError):  # no such command on this server
                admin.execute_command("ACL", "SETUSER", name, addition)
        if admin.connection_pool.connection_kwargs.get("db", 0):
            admin.execute_command("ACL", "SETUSER", name, SELECT)
        yield url


def refused(admin: redis.Redis, url: str) -> list[str]:
    """What ``ACL LOG`` holds for the user of ``url``: each refusal's reason and object."""
    user = urllib.parse.unquote(urllib.parse.urlsplit(url).username or "")
    found = []
    for entry in admin.execute_command("ACL", "LOG", "128"):
        if not isinstance(entry, dict):  # RESP2 gives a flat list of fields and values
            entry = dict(zip(entry[::2], entry[1::2], strict=True))
        e: dict[Any, Any] = entry
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in e.items()}
        username = fields.get("username")
        if (username.decode() if isinstance(username, bytes) else username) == user:
            found.append(f"{fields.get('reason')!r} {fields.get('object')!r}")
    return found
