"""The figures of a benchmark run as people read them (a table) and as tools do (JSON)."""

from __future__ import annotations

import os
import platform
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import redis

from .benchdata import Bench, Row


def ratio(rows: Mapping[str, Row], a: str, b: str) -> float | None:
    """median(a) / median(b), or None where either is missing."""
    x = rows[a].median if a in rows else None
    y = rows[b].median if b in rows else None
    return x / y if x is not None and y else None


def format_table(rows: Mapping[str, Row], compare: Sequence[str] = ()) -> str:
    """The rows as text: median rate, cost, spread, vs ceiling and vs each of ``compare``."""
    compare = [c for c in compare if c in rows and rows[c].median]
    head = f"{'case':<40} {'msg/s':>10} {'us/msg':>8} {'min..max msg/s':>19} {'vs ceiling':>11}"
    head += "".join(f" {'x ' + c:>10}" for c in compare)
    head += f" {'cpu us':>7} {'srv us':>7}"
    lines = [head, "-" * len(head)]
    for name, row in rows.items():
        median = row.median
        if median is None:
            lines.append(f"{row.case.label:<40} {'-':>10}  {row.note or 'no result'}")
            continue
        spread = f"{min(row.rates):,.0f}..{max(row.rates):,.0f}"
        ceiling = ratio(rows, name, row.case.ceiling) if row.case.ceiling else None
        line = f"{row.case.label:<40} {median:>10,.0f} {1e6 / median:>8.1f} {spread:>19}"
        line += f" {_times(ceiling):>11}"
        line += "".join(
            f" {_times(ratio(rows, name, c) if c != name else None):>10}" for c in compare
        )
        line += f" {_us(row.cpu_us):>7} {_us(row.server_us):>7}"
        lines.append(line)
    return "\n".join(lines)


def _times(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


TABLE_NOTE = (
    "us/msg: wall time per message; cpu us / srv us: CPU time per message of this process "
    "(all its threads; peers: their own process) and of the server (all its clients)."
)


def bounds(row: Row, rows: Mapping[str, Row]) -> dict[str, float]:
    """The rates that bound a row running real handlers (none for other rows): ``handler``,
    its concurrency over its handlers' mean time, or the lower rate its group's row of
    bare handlers (``Limit.measured``, among ``rows``) reached; ``worker CPU``, the cores
    its worker may use over the worker's CPU per job; ``Redis``, one server core over the
    server's CPU per job. The last two are measured in the row itself."""
    limit = row.case.limit
    if limit is None:
        return {}
    bare = rows[limit.measured].median if limit.measured in rows else None
    out = {"handler": min(limit.ideal, bare or limit.ideal)}
    if row.cpu_us:
        out["worker CPU"] = limit.cores * 1e6 / row.cpu_us
    if row.server_us:
        out["Redis"] = 1e6 / row.server_us
    return out


def binding(row: Row, rows: Mapping[str, Row]) -> tuple[str, float] | None:
    """The bound that binds (the lowest) and the row's median rate against it."""
    found = bounds(row, rows)
    if not found or row.median is None:
        return None
    name = min(found, key=found.__getitem__)
    return name, row.median / found[name]


def _first_of_group(rows: Mapping[str, Row], name: str) -> str | None:
    """The first row of ``name``'s limit group, if that is another row."""
    group = rows[name].case.limit
    for other, row in rows.items():
        if group is not None and row.case.limit is not None and row.case.limit.group == group.group:
            return other if other != name else None
    return None


def format_limits(rows: Mapping[str, Row]) -> str:
    """Rows running real handlers: median jobs/s, the bound that binds and the rate
    against it (eff), against concurrency / handler time, against the group's first row."""
    head = f"{'case':<48} {'jobs/s':>8} {'min..max':>15} {'limit':>8} {'binds':>10}"
    head += f" {'eff':>5} {'of c/t':>6} {'x first':>7} {'cpu us':>7} {'srv us':>7}  note"
    lines = [head, "-" * len(head)]
    for name, row in rows.items():
        if row.case.limit is None:
            continue
        bound, median = binding(row, rows), row.median
        if bound is None or median is None:
            lines.append(f"{row.case.label:<48} {'-':>8}  {row.note or 'no result'}")
            continue
        first = _first_of_group(rows, name)
        spread = f"{min(row.rates):,.0f}..{max(row.rates):,.0f}"
        line = f"{row.case.label:<48} {median:>8,.0f} {spread:>15}"
        line += f" {median / bound[1]:>8,.0f} {bound[0]:>10} {bound[1]:>5.2f}"
        line += f" {median / row.case.limit.ideal:>6.2f}"
        line += f" {_times(ratio(rows, name, first) if first else None):>7}"
        line += f" {_us(row.cpu_us):>7} {_us(row.server_us):>7}  {row.case.note}"
        lines.append(line.rstrip())
    return "\n".join(lines)


LIMITS_NOTE = (
    "limit: the lowest of concurrency / mean handler time (or, if lower, the rate of the "
    "bare pool running the same handlers at that concurrency with no queue), the worker's "
    "cores / its CPU per job and one server core / the server's CPU per job (binds: "
    "which); eff: jobs/s against "
    "it; of c/t: against concurrency / handler time alone; x first: against the first row "
    "of the same concurrency and handlers (orizuru's); cpu us: CPU per job of the worker's "
    "own process (for --processes, its process tree)."
)


def _limit_json(rows: Mapping[str, Row], name: str) -> dict[str, Any]:
    row = rows[name]
    limit = row.case.limit
    if limit is None:
        return {}
    bound, first = binding(row, rows), _first_of_group(rows, name)
    median = row.median
    return {
        "limit": {**attrs.asdict(limit), "ideal": limit.ideal},
        "bounds": bounds(row, rows),
        "binds": bound[0] if bound else None,
        "efficiency": bound[1] if bound else None,
        "of_ideal": median / limit.ideal if median is not None else None,
        "vs_group_first": ratio(rows, name, first) if first else None,
        "group_first": first,
        "case_note": row.case.note or None,
    }


def rows_json(rows: Mapping[str, Row], compare: Sequence[str] = ()) -> dict[str, Any]:
    """The rows as JSON-ready data (every round's figures, medians, ratios)."""
    out: dict[str, Any] = {}
    for name, row in rows.items():
        out[name] = {
            "label": row.case.label,
            "messages": row.case.messages,
            "rates": row.rates,
            "seconds": [r.seconds for r in row.results],
            "cpu_seconds": [r.cpu for r in row.results],
            "server_cpu_seconds": [r.server_cpu for r in row.results],
            "cpu_us_per_message": row.cpu_us,
            "server_cpu_us_per_message": row.server_us,
            "median_rate": row.median,
            "us_per_message": 1e6 / row.median if row.median else None,
            "ceiling": row.case.ceiling,
            "vs_ceiling": ratio(rows, name, row.case.ceiling) if row.case.ceiling else None,
            "vs": {c: ratio(rows, name, c) for c in compare if c != name and c in rows},
            "note": row.note,
            **_limit_json(rows, name),
        }
    return out


def environment(b: Bench) -> dict[str, Any]:
    """What a figure depends on: server, client, parser, machine and its load."""
    info = b.r.info("server")
    server = info.get("valkey_version") or info.get("redis_version")
    return {
        "server": f"{info.get('server_name', 'redis')} {server}",
        "host": urllib.parse.urlsplit(b.url).netloc.rpartition("@")[2],
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "hiredis": bool(redis.utils.HIREDIS_AVAILABLE),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "prefix": b.prefix,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
