"""The targets a full run is judged by: a ratio of two rows' medians, PASS or MISS."""

from __future__ import annotations

from typing import Any

import attrs
from backlog import DEPTHS, STORED_TARGET, depth_name

from orizuru_py.ops import benchreport
from orizuru_py.ops.benchdata import Row


@attrs.frozen
class Target:
    """median(case) against median(reference): a rate ratio that must reach ``threshold``,
    or (``cost``) a cost-per-message ratio that must stay within it. Several references:
    against the fastest of those measured."""

    label: str
    case: str
    reference: str | tuple[str, ...]
    threshold: float
    cost: bool = False

    def check(self, rows: dict[str, Row]) -> tuple[float | None, str]:
        reference = self.reference
        if isinstance(reference, tuple):
            rated = [(rows[n].median, n) for n in reference if n in rows and rows[n].median]
            if not rated:
                return None, "n/a"
            reference = max(rated)[1]
        value = benchreport.ratio(
            rows,
            reference if self.cost else self.case,
            self.case if self.cost else reference,
        )
        if value is None:
            return None, "n/a"
        ok = value <= self.threshold if self.cost else value >= self.threshold
        return value, "PASS" if ok else "MISS"


TARGETS = (
    Target("Worker no-op >= 20x huey", "worker", "huey", 20.0),
    Target("Worker no-op >= 30x dramatiq", "worker", "dramatiq", 30.0),
    Target("next_batch+ack_many >= 0.9x batched Lua ceiling", "batch", "raw_lua_batch", 0.9),
    Target("push >= 0.9x raw LPUSH", "push", "raw_lpush", 0.9),
    Target("next+ack >= 0.9x raw BLMOVE+LREM", "next_ack", "raw_blmove_lrem", 0.9),
    Target("Worker with a no-op Observer >= 0.97x without", "worker_observer", "worker", 0.97),
    Target("Worker on 3 queues >= 0.9x on 1", "worker_3q", "worker", 0.9),
    Target("push with a unique_key >= 0.9x without", "push_unique", "push", 0.9),
    Target(
        "asyncio Worker >= 20x the fastest asyncio peer",
        "async_worker",
        ("arq", "saq", "taskiq", "streaq"),
        20.0,
    ),
    Target(
        "asyncio batch >= 0.8x raw redis.asyncio ceiling",
        "async_batch",
        "raw_async_lua_batch",
        0.8,
    ),
    *(
        Target(
            f"{'batch' if batched else 'next+ack'}: cost/msg at 10^6 queued <= 1.1x at 10",
            depth_name(batched, DEPTHS[-1]),
            depth_name(batched, DEPTHS[0]),
            1.1,
            cost=True,
        )
        for batched in (False, True)
    ),
)


# Judged from the memory group's one measurement (``backlog.stored_bytes``), not from rows.
STORED_LABEL = f"memory per queued message <= {STORED_TARGET}x raw list"
STORED = Target(STORED_LABEL, "stored", "raw", STORED_TARGET, cost=True)


def judged(
    rows: dict[str, Row], stored: dict[str, Any] | None
) -> list[tuple[Target, float | None, str]]:
    """Every target with its value and PASS, MISS or n/a; memory when it was measured."""
    out = [(t, *t.check(rows)) for t in TARGETS]
    if stored:
        ok = stored["ratio"] <= STORED.threshold
        out.append((STORED, stored["ratio"], "PASS" if ok else "MISS"))
    return out


def targets_json(rows: dict[str, Row], stored: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {**attrs.asdict(t), "value": value, "status": status}
        for t, value, status in judged(rows, stored)
    ]
