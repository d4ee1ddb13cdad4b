"""The hunt in CI: a fixed budget of seeds and steps, checked after every step. Long
mode: ``ORIZURU_HUNT_SECONDS=N`` runs new seeds until N seconds pass. Replay one seed:
``ORIZURU_HUNT_SEED=S ORIZURU_HUNT_STEPS=N``."""

from __future__ import annotations

import os
import random
import time

import pytest

from orizuru_py import QueueKeys

from .book import Book
from .hunter import Hunter, Violation
from .invariants import Checker
from .plan import Step
from .snapshot import Snapshot

CI_SEEDS = (1, 2, 3)
CI_STEPS = 60


def hunt(url: str, seed: int, n: int, deadline: float | None = None) -> int:
    hunter, start = Hunter(url, seed), time.monotonic()
    done = hunter.run(n, deadline)
    took = time.monotonic() - start
    print(f"\nseed {seed}: {done} steps in {took:.1f} s, {hunter.figures}", flush=True)
    return done


@pytest.mark.slow
def test_hunt(redis_url: str) -> None:
    seconds = float(os.environ.get("ORIZURU_HUNT_SECONDS") or 0)
    if os.environ.get("ORIZURU_HUNT_SEED"):
        hunt(redis_url, int(os.environ["ORIZURU_HUNT_SEED"]),
             int(os.environ.get("ORIZURU_HUNT_STEPS") or CI_STEPS))  # fmt: skip
        return
    if not seconds:
        for seed in CI_SEEDS:
            hunt(redis_url, seed, CI_STEPS)
        return
    end = time.monotonic() + seconds
    seeds = total = 0
    found: list[str] = []
    while time.monotonic() < end:
        seed = random.randrange(2**32)
        seeds += 1
        try:
            total += hunt(redis_url, seed, 10_000, deadline=min(end, time.monotonic() + 60))
        except Violation as violation:  # long mode goes on hunting; it fails at the end
            print(violation, flush=True)
            total += violation.steps
            found.append(str(violation).split("\n", 1)[0])
    print(f"\nlong mode: {seconds:.0f} s, {seeds} seeds, {total} steps, "
          f"{len(found)} violation(s)", flush=True)  # fmt: skip
    assert not found, "\n".join(found)


def test_the_checks_see_a_copy_a_loss_and_a_strand(redis_url: str) -> None:
    """The invariants cannot pass vacuously: a copied, a deleted and a stranded message
    behind the library's back are each reported, with the seed and the step log."""
    hunter = Hunter(redis_url, 7)
    keys = QueueKeys(hunter.queue)
    try:
        for i in range(2):
            hunter.one(Step(i, "push", 0, 0, 0, 0.0))
        raw = hunter.r.lindex(keys.queue, 0)
        assert isinstance(raw, bytes)
        hunter.r.lpush(keys.queue, raw)
        with pytest.raises(Violation, match="in 2 places") as copied:
            hunter.check()
        assert "seed 7" in str(copied.value) and "#1 push" in str(copied.value)
        hunter.r.lrem(keys.queue, 1, raw)  # type: ignore[arg-type]
        hunter.check()
        hunter.r.rpoplpush(keys.queue, keys.processing("ghost@000000"))
        hunter.drain_seconds = 1.0
        with pytest.raises(Violation, match="STRAND"):
            hunter.drain()
        hunter.r.delete(keys.processing("ghost@000000"))
        with pytest.raises(Violation, match="LOST"):
            hunter.check()
    finally:
        hunter.close()


def test_a_true_cancel_is_counted_by_the_server_or_by_a_purge_that_may_have_taken_it() -> None:
    """A True cancel of a message in a worker's hand is counted when a take drops it; a
    purge may delete it first (seed 3717998511 at 3ce3a62, under load: the cancel found it
    in an aborted worker's prefetch list, a reap put it back, the purge took it). The
    checker then wants it among what the purge returned, never unaccounted."""
    book = Book(3)
    book.push("a", 0, None, 0.0, None)
    book.cancelled.add("a")
    checker = Checker(book)
    assert checker.vanished(Snapshot(counts={"cancelled": 1})) == []
    assert "counts says 0" in " ".join(checker.vanished(Snapshot()))
    book.purge_candidates.add("a")
    assert "LOST" in " ".join(checker.vanished(Snapshot()))  # the purge returned 0
    book.purged = 1
    assert checker.vanished(Snapshot()) == []
    assert checker.vanished(Snapshot(counts={"cancelled": 1})) == []


def test_the_book_judges_attempt_numbers_given_twice_not_the_order_they_are_entered_in() -> None:
    """A close racing a take enters what the take brought after the close, when a Worker
    may already have been given it at the next attempt (seed 1336172222 at 2343645: "given
    at attempt 3, after attempt 4"): that is no uncounted run; one number twice is."""
    book = Book(4)
    book.push("a", 0, None, 0.0, None)
    book.delivered("a", 4, "w-s")
    book.delivered("a", 3, "s1")
    assert book.take_errors() == []
    book.delivered("a", 3, "s2")
    assert ["attempt 3 again" in e for e in book.take_errors()] == [True]
    with book.requeueing():  # a fresh count; what is entered meanwhile may be either life
        book.delivered("a", 3, "w-a")
        book.delivered("a", 1, "w-a")
        book.delivered("a", 1, "w-a")
    book.delivered("a", 1, "s0")
    book.delivered("a", 2, "s0")
    assert book.take_errors() == []
    book.delivered("a", 2, "s1")
    assert ["attempt 2 again" in e for e in book.take_errors()] == [True]
