"""The figures of a benchmark run as people read them (a table) and as tools do (JSON)."""

from __future__ import annotations

import os
import platform
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis

if TYPE_CHECKING:
    from .bench import Bench, Row


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
