"""Backoff schedules (pure logic)."""

from __future__ import annotations

import pytest

from orizuru_py import Exponential, Linear


def test_exponential_doubles_from_base_up_to_max() -> None:
    b = Exponential(base=1.0, factor=2.0, max=10.0, jitter=0.0)
    assert [b(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_only_shortens_and_by_at_most_its_fraction() -> None:
    b = Exponential(base=4.0, jitter=0.5)
    delays = [b(1) for _ in range(500)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert max(delays) - min(delays) > 1.0


def test_linear_grows_by_step() -> None:
    assert [Linear(step=3.0, jitter=0.0)(n) for n in (1, 2, 3)] == [3.0, 6.0, 9.0]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert Exponential(jitter=0.0)(10_000) == 300.0


@pytest.mark.parametrize("kwargs", [{"base": 0}, {"factor": 0.5}, {"jitter": 1.5}])
def test_bad_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Exponential(**kwargs)
