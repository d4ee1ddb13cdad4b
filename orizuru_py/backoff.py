"""How long a failed message waits before its next attempt.

A backoff is any callable ``(attempt) -> seconds``, where ``attempt`` is the
delivery that just failed (1 for the first). Jitter spreads retries of a
burst of failures so they do not all come back at once.
"""

from __future__ import annotations

import random
from typing import Protocol

import attrs


class Backoff(Protocol):
    def __call__(self, attempt: int) -> float: ...


def _jittered(delay: float, jitter: float) -> float:
    return delay * random.uniform(1.0 - jitter, 1.0)


def _fraction(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


@attrs.frozen
class Exponential:
    """``base * factor ** (attempt - 1)``, capped at ``max``, less up to ``jitter`` of it."""

    base: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    max: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    jitter: float = attrs.field(default=0.5, validator=_fraction)

    def __call__(self, attempt: int) -> float:
        exponent = min(max(attempt - 1, 0), 64)
        return _jittered(min(self.max, self.base * self.factor**exponent), self.jitter)


@attrs.frozen
class Linear:
    """``step * attempt``, capped at ``max``, less up to ``jitter`` of it."""

    step: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    max: float = attrs.field(default=300.0, validator=attrs.validators.gt(0))
    jitter: float = attrs.field(default=0.5, validator=_fraction)

    def __call__(self, attempt: int) -> float:
        return _jittered(min(self.max, self.step * max(attempt, 1)), self.jitter)
