"""Argument checks shared by every part: bad input fails at the call site, with a
``ValueError`` that names the argument and what it got. (Queue and consumer names:
``keys.validate_name``, the rule of the key layout.)"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

from .keys import validate_name

MAX_UNIQUE_KEY = 1000
MAX_BATCH = 10_000
DEFAULT_MAX_ATTEMPTS = 5  # deliveries before a message is dead-lettered


def queues(value: str | Sequence[str]) -> list[str]:
    """One queue name, or several in priority order (first: highest)."""
    names = [value] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError("a Worker needs at least one queue")
    for each in names:
        validate_name(each)
    if len(set(names)) != len(names):
        raise ValueError(f"a queue is named twice in {names!r}")
    return names


def count(what: str, value: object, least: int, most: int | None = None) -> int:
    """An int (not a bool) of at least ``least`` (and at most ``most``)."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < least
        or (most is not None and value > most)
    ):
        bound = f"from {least} to {most}" if most is not None else f">= {least}"
        raise ValueError(f"{what} must be an int {bound}, got {value!r}")
    return value


def batch_size(value: object) -> int:
    return count("n", value, 1, MAX_BATCH)


def max_attempts(value: int | None) -> int:
    """max_attempts as the scripts take it (0: no limit); at most the 65,535 deliveries a
    message counts (envelope.MAX_DELIVERIES), or it would never be reached."""
    if value is None:
        return 0
    return count("max_attempts", value, 1, 65_535)


def function(what: str, value: object) -> None:
    """Something to call."""
    if not callable(value):
        raise TypeError(f"{what} must be callable, got {type(value).__name__}")


def instance(what: str, value: object, kind: type) -> None:
    """None, or an instance of ``kind``."""
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{what} must be a {kind.__name__}, got {type(value).__name__}")


def seconds(
    value: object, what: str, *, positive: bool = False, most: float | None = None
) -> float:
    """A finite number of seconds, >= 0 (> 0 with ``positive``, < ``most`` if given)."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
        or (positive and value <= 0)
        or (most is not None and value >= most)
    ):
        kind = "positive" if positive else "non-negative"
        bound = f" below {most:g}" if most is not None else ""
        raise ValueError(f"{what} must be a {kind} number of seconds{bound}, got {value!r}")
    return float(value)


def ms(value: float | None, what: str, *, positive: bool = False) -> int:
    """Seconds (None: 0) as whole milliseconds."""
    if value is None:
        return 0
    return int(seconds(value, what, positive=positive) * 1000)


def delay_ms(value: float | None) -> int:
    return ms(value, "delay")


def timeout(value: float | None) -> float | None:
    """A wait: None (until something comes) or seconds >= 0."""
    return None if value is None else seconds(value, "timeout")


def heartbeat_timeout(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.2 <= value < 86_400:
        raise ValueError(f"heartbeat_timeout must be from 0.2 s to a day, got {value!r}")
    return float(value)


def unique_key(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_UNIQUE_KEY:
        raise ValueError(
            f"unique_key must be a non-empty str of at most {MAX_UNIQUE_KEY} "
            f"characters, got {value!r}"
        )
    return value


def message_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValueError(f"a message id is a non-empty str, got {value!r}")
    return value


def is_async(handler: Callable[..., Any]) -> bool:
    """Whether calling ``handler`` returns a coroutine (an ``async def``, or an object
    whose ``__call__`` is one)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004
    )
