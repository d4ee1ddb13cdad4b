"""The benchmarks keep working: a smoke run reports every row with a positive rate and
leaves no key behind; ``--only`` runs the groups named and no other. Rates are never
compared with each other or with a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from orizuru_py.ops import bench, benchreport
from orizuru_py.ops.benchdata import Case, Limit, Result, Row

ROOT = Path(__file__).resolve().parent.parent
CEILINGS = {"raw_lpush", "raw_blmove_lrem", "raw_lpush_batch", "raw_lua_batch"}
ORIZURU = {
    "push",
    "next_ack",
    "push_many",
    "batch",
    "worker",
    "worker_observer",
    "worker_3q",
    "push_unique",
}
# The rows where users live (benchmarks/loaded.py), orizuru's only: no peers in a smoke run.
LOADED = {
    *(f"worker_sleep10_t{n}" for n in (8, 32, 64, 128)),
    *(f"async_worker_sleep10_a{n}" for n in (100, 500, 1000)),
    "worker_mixed_t32",
    "async_worker_mixed_a500",
    "processes_1_cpu1",
    "processes_2_cpu1",
}
# Beside each row of waiting handlers, the same handlers on a bare pool, no queue.
BARE = (
    {f"bare_sleep10_t{n}" for n in (8, 32, 64, 128)}
    | {f"bare_sleep10_a{n}" for n in (100, 500, 1000)}
    | {"bare_mixed_t32", "bare_mixed_a500"}
)


def run_smoke(redis_url: str, out: Path, *options: str) -> dict[str, Any]:
    """``benchmarks/run.py --smoke`` with ``options``; its JSON."""
    command = [sys.executable, "benchmarks/run.py", "--smoke", "--redis-url", redis_url]
    done = subprocess.run(
        [*command, "--json", str(out), *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def smoke_json(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    run_smoke(redis_url, out)
    return out


@pytest.fixture(scope="module")
def smoke(smoke_json: Path) -> dict[str, Any]:
    return json.loads(smoke_json.read_text())  # type: ignore[no-any-return]


def test_smoke_run_reports_every_ceiling_and_orizuru_path(smoke: dict[str, Any]) -> None:
    assert set(smoke["rows"]) == CEILINGS | ORIZURU


def test_smoke_run_measures_each_row_once_with_a_positive_rate(smoke: dict[str, Any]) -> None:
    rows = smoke["rows"]
    assert {name: len(row["rates"]) for name, row in rows.items()} == dict.fromkeys(rows, 1)
    assert [name for name, row in rows.items() if not row["median_rate"] > 0] == []


def test_smoke_run_compares_each_orizuru_path_to_its_ceiling(smoke: dict[str, Any]) -> None:
    ratios = {name: smoke["rows"][name]["vs_ceiling"] for name in ORIZURU - {"worker"}}
    assert [name for name, value in ratios.items() if not value > 0] == []


def test_smoke_run_judges_every_target_it_measured(smoke: dict[str, Any]) -> None:
    targets = smoke["targets"]
    statuses = {t["case"]: t["status"] for t in targets if isinstance(t["reference"], str)}
    cases = ("batch", "push", "next_ack", "worker_3q", "push_unique")
    assert [case for case in cases if statuses[case] not in ("PASS", "MISS")] == []
    peers = {t["label"]: t["status"] for t in targets if t["case"] in ("worker", "async_worker")}
    # no peers in a smoke run: the targets against them are not judged
    assert peers == {
        "Worker no-op >= 20x huey": "n/a",
        "Worker no-op >= 30x dramatiq": "n/a",
        "asyncio Worker >= 20x the fastest asyncio peer": "n/a",
    }


def test_smoke_run_reports_every_loaded_row_with_a_rate_and_what_binds_it(
    smoke: dict[str, Any],
) -> None:
    rows = smoke["loaded_rows"]
    assert set(rows) == LOADED | BARE
    assert [name for name, row in rows.items() if not row["median_rate"] > 0] == []
    assert [name for name, row in rows.items() if not row["efficiency"] > 0] == []
    binds = {row["binds"] for row in rows.values()}
    assert binds <= {"handler", "worker CPU", "Redis"}


def test_smoke_run_measures_the_cpu_of_the_worker_processes(smoke: dict[str, Any]) -> None:
    rows = smoke["loaded_rows"]
    cpu = {name: rows[name]["cpu_us_per_message"] for name in LOADED if name.startswith("proc")}
    assert [name for name, us in cpu.items() if not (us is not None and us > 0)] == []


def test_smoke_run_writes_its_report_beside_the_json(
    smoke: dict[str, Any], smoke_json: Path
) -> None:
    labels = [row["label"] for row in smoke["loaded_rows"].values()]
    report = smoke_json.with_suffix(".txt").read_text()
    assert [label for label in labels if label not in report] == []


def test_only_runs_the_groups_it_names(redis_url: str, tmp_path: Path) -> None:
    data = run_smoke(redis_url, tmp_path / "only.json", "--only", "io")
    assert data["rows"] == data["asyncio_rows"] == data["depth"] == {}
    assert set(data["loaded_rows"]) == {n for n in LOADED | BARE if "sleep10" in n}


def test_smoke_run_leaves_no_key_behind(smoke: dict[str, Any], redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    prefix = smoke["environment"]["prefix"]
    assert list(r.scan_iter(match=f"*{prefix}*", count=1000)) == []


def test_orizuru_bench_prints_a_row_per_path_and_writes_them(
    redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(
        ["--redis-url", redis_url, "--messages", "200", "--rounds", "1", "--json", str(out)]
    )
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert {name: len(row["rates"]) for name, row in rows.items()} == dict.fromkeys(ORIZURU, 1)
    printed = capsys.readouterr().out
    assert [row["label"] for row in rows.values() if row["label"] not in printed] == []


def test_a_rows_handler_limit_is_the_bare_pools_rate_where_that_is_lower() -> None:
    """A bare pool's rate below concurrency / handler time becomes the row's limit (and
    what binds it); a rate above (a short row's noise) does not raise it; without a bare
    row the limit is nominal."""
    limit = Limit(32, 0.010, group="g", measured="bare")  # 3,200 jobs/s nominal

    def row(rate: float) -> Row:
        case = Case("x", "x", 1000, lambda b, n: Result(n, 1.0), limit=limit)
        return Row(case, [Result(1000, 1000 / rate, cpu=0.01)])  # 10 us of CPU a job

    for bare_rate, handler in ((3_000.0, 3_000.0), (3_300.0, 3_200.0)):
        rows = {"ours": row(2_850.0), "bare": row(bare_rate)}
        assert benchreport.bounds(rows["ours"], rows)["handler"] == pytest.approx(handler)
        assert benchreport.binding(rows["ours"], rows) == (
            "handler",
            pytest.approx(2_850 / handler),
        )
    alone = {"ours": row(2_850.0)}
    assert benchreport.bounds(alone["ours"], alone)["handler"] == pytest.approx(3_200.0)


@pytest.mark.parametrize(("ratio", "status"), [(1.2, "PASS"), (1.3, "MISS")])
def test_the_memory_target_is_judged_and_written_with_the_others(ratio: float, status: str) -> None:
    """The memory group's one measurement is judged against its target (1.25x the raw
    list) and goes into the JSON's targets beside the ratio targets; absent, it is left out."""
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); from targets import targets_json; "
        f"print(json.dumps([targets_json({{}}, {{'ratio': {ratio}}}), targets_json({{}}, None)]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    measured, unmeasured = json.loads(done.stdout)
    memory = [t for t in measured if t["case"] == "stored"]
    assert [(t["value"], t["status"], t["threshold"]) for t in memory] == [(ratio, status, 1.25)]
    assert [t for t in unmeasured if t["case"] == "stored"] == []
    assert len(measured) == len(unmeasured) + 1
