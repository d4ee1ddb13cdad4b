"""The README's performance figures are the committed results: every table of its
Performance section, and the figures of the bullets beside them, are read from
``benchmarks/results`` here, so a new run that is not copied (or a figure copied
wrong) fails instead of leaving the README claiming what no result holds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
RESULTS = ROOT / "benchmarks" / "results"

X = "\N{MULTIPLICATION SIGN}"  # the README's "times"

# The first two tables' rows, by their README label: the run's case names.
PATHS = {
    "raw LPUSH, one at a time (ceiling)": "raw_lpush",
    "``Producer.push``": "push",
    "``push`` with a ``unique_key`` (vs push)": "push_unique",
    "raw BLMOVE + LREM (ceiling)": "raw_blmove_lrem",
    "``Consumer.next`` + ``guard.ack``": "next_ack",
    f"raw LPUSH {X}100 (ceiling)": "raw_lpush_batch",
    "``push_many`` (100)": "push_many",
    f"raw Lua move + Lua ack {X}100 (ceiling)": "raw_lua_batch",
    "``next_batch(100)`` + ``ack_many``": "batch",
    "``Worker``, no-op handler, 8 threads": "worker",
    "``Worker`` with a no-op ``Observer``": "worker_observer",
    "``Worker`` on 3 queues by priority": "worker_3q",
    "dramatiq, 8 threads": "dramatiq",
    "huey, 8 threads": "huey",
    "rq SimpleWorker burst, 1 process": "rq",
    "``orizuru_py.asyncio`` push": "async_push",
    "``orizuru_py.asyncio`` next + ack": "async_next_ack",
    "``orizuru_py.asyncio`` next_batch(100) + ack_many": "async_batch",
    "``orizuru_py.asyncio.Worker``, no-op, 100 tasks": "async_worker",
    "taskiq stream broker, 100 async tasks": "taskiq",
    "saq Worker, concurrency 10": "saq",
    "streaq Worker, concurrency 16": "streaq",
    "arq Worker, max_jobs 10": "arq",
}


def performance() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\nPerformance\n-----------\n")
    return text[start : text.index("\nDevelopment\n-----------\n", start)]


def tables(text: str) -> list[list[dict[str, str]]]:
    """The simple tables of ``text``: each a list of rows, each row its cells by the
    header's names (blank cells are "")."""
    lines = text.splitlines()
    borders = [i for i, line in enumerate(lines) if re.fullmatch(r"=+( +=+)+", line)]
    assert len(borders) % 3 == 0, "a simple table has three border lines"
    found = []
    for top, mid, bottom in zip(borders[::3], borders[1::3], borders[2::3], strict=True):
        spans = [m.span() for m in re.finditer(r"=+", lines[top])]

        def cells(line: str, spans: list[tuple[int, int]] = spans) -> list[str]:
            ends = [s for s, _ in spans[1:]] + [len(line)]
            return [line[s:e].strip() for (s, _), e in zip(spans, ends, strict=True)]

        names = cells(lines[top + 1])
        assert mid == top + 2
        found.append(
            [dict(zip(names, cells(line), strict=True)) for line in lines[mid + 1 : bottom]]
        )
    return found


def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def rate(row: dict[str, Any]) -> str:
    return f"{round(row['median_rate']):,}"


def test_the_paths_tables_are_the_committed_run() -> None:
    run = load("redis-7.0.15.json")
    main, asyncio_table = tables(performance())[:2]
    for table, rows in ((main, run["rows"]), (asyncio_table, run["asyncio_rows"])):
        assert {PATHS[cells["case"]] for cells in table} <= set(rows)
        for cells in table:
            row = rows[PATHS[cells["case"]]]
            assert cells["msg/s"] == rate(row), cells["case"]
            if cells["vs ceiling"]:
                assert cells["vs ceiling"] == f"{row['vs_ceiling']:.2f}", cells["case"]
            for peer in ("dramatiq", "huey", "taskiq"):
                if cells.get(f"{X} {peer}"):
                    assert cells[f"{X} {peer}"] == f"{row['vs'][peer]:.1f}", cells["case"]
    # Every row of orizuru's the run measured is in a table, with its comparison.
    shown = {PATHS[cells["case"]]: cells for cells in main + asyncio_table}
    for name, row in {**run["rows"], **run["asyncio_rows"]}.items():
        if not row["label"].startswith("orizuru "):
            continue
        assert name in shown, f"{row['label']} is missing from the README"
        if row["vs_ceiling"] is not None:
            assert shown[name]["vs ceiling"], f"{row['label']} without its ratio"


def _loaded_label(label: str) -> str:
    """A loaded row's label as the README writes it, and the run as its JSON does."""
    label = label.replace("``", "").replace("orizuru_py.asyncio.Worker", "asyncio Worker")
    return label.removeprefix("orizuru ").removesuffix(" sleep")


def test_the_handlers_table_is_the_committed_run() -> None:
    rows = load("io-mixed-redis-7.0.15.json")["loaded_rows"]
    by_label = {_loaded_label(row["label"]): row for row in rows.values()}
    (table,) = [t for t in tables(performance()) if "jobs/s" in t[0]]
    assert [_loaded_label(cells["case"]) for cells in table] == list(by_label)
    for cells in table:
        row = by_label[_loaded_label(cells["case"])]
        if row["median_rate"] is None:  # a peer that failed at this size says so
            assert cells["binds"] == "failed" and "failed" in row["note"]
            continue
        assert cells["jobs/s"] == rate(row), cells["case"]
        assert cells["binds"] == row["binds"], cells["case"]
        assert cells["eff"] == f"{row['efficiency']:.2f}", cells["case"]
        assert cells["of c/t"] == f"{row['of_ideal']:.2f}", cells["case"]
        if row["vs_group_first"] is not None:
            assert cells["x ours"] == f"{row['vs_group_first']:.2f}", cells["case"]
        assert cells["CPU µs"] == f"{round(row['cpu_us_per_message'])}", cells["case"]


def test_the_handlers_bullets_are_the_committed_run() -> None:
    """Every figure of the bullets under the handlers table is one of its run's: an
    efficiency, a rate against concurrency / handler time, or ours over a peer's rate."""
    text = performance()
    bullets = text[text.index("* Efficiency against the limit") : text.index("* ``--processes``")]
    rows = load("io-mixed-redis-7.0.15.json")["loaded_rows"]
    figures = set()
    for row in rows.values():
        if row["median_rate"] is None:
            continue
        figures |= {f"{row['efficiency']:.2f}", f"{row['of_ideal']:.2f}"}
        if row["vs_group_first"] is not None:
            figures.add(f"{1 / row['vs_group_first']:.2f}x")
    numbers = re.findall(r"\d+\.\d+x?", bullets)
    assert len(numbers) >= 10
    assert [n for n in numbers if n not in figures] == []
    peers = [r for r in rows.values() if r["vs_group_first"] and not r["label"].startswith("bare")]
    if "below 1 on every peer's row" in bullets:
        assert all(r["vs_group_first"] < 1 for r in peers)


def _ratio(rows: dict[str, Any], name: str) -> str:
    return f"{rows[name]['vs_ceiling']:.2f}{X}"


def test_the_bullets_figures_are_the_committed_runs() -> None:
    text = re.sub(r"\s+", " ", performance())
    run = load("redis-7.0.15.json")
    stored = run["stored"]
    assert (
        f"{stored['queued']:.1f} bytes against a raw list's {stored['raw']:.1f} "
        f"({stored['ratio']:.2f}{X};" in text
    )
    assert f"with a unique key, {stored['queued_unique']:.1f}." in text
    valkey = load("paths-ours-valkey-9.1.2.json")["stored"]
    assert (
        f"On the embedded Valkey 9.1.2: {valkey['queued']:.1f} against {valkey['raw']:.1f} "
        f"({valkey['ratio']:.2f}{X})" in text
    )
    paths = load("paths-ours-valkey-9.1.2.json")
    rows, arows = paths["rows"], paths["asyncio_rows"]
    assert (
        f"push {_ratio(rows, 'push')}, next + ack {_ratio(rows, 'next_ack')}, push_many "
        f"{_ratio(rows, 'push_many')}, the batch path {_ratio(rows, 'batch')}, ``unique_key`` "
        f"{_ratio(rows, 'push_unique')} of a plain push; asyncio push "
        f"{_ratio(arows, 'async_push')}, next + ack {_ratio(arows, 'async_next_ack')}, batch "
        f"{_ratio(arows, 'async_batch')}." in text
    )
    targets = {t["label"]: t for t in run["targets"]}
    for label, shown in (
        ("Worker no-op >= 20x huey", f"{{:.1f}}{X}"),
        ("Worker no-op >= 30x dramatiq", f"{{:.1f}}{X}"),
        ("asyncio Worker >= 20x the fastest asyncio peer", f"{{:.1f}}{X} taskiq"),
        ("next+ack >= 0.9x raw BLMOVE+LREM", f"next + ack {{:.2f}}{X}"),
        ("next_batch+ack_many >= 0.9x batched Lua ceiling", f"the batch path {{:.2f}}{X}"),
    ):
        assert shown.format(targets[label]["value"]) in text, label


@pytest.mark.parametrize("name", ["redis-7.0.15.json", "io-mixed-redis-7.0.15.json"])
def test_the_results_the_readme_names_are_committed_beside_their_report(name: str) -> None:
    assert f"benchmarks/results/{name.removesuffix('.json')}" in performance()
    assert (RESULTS / name).with_suffix(".txt").exists()
