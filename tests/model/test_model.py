"""The protocol's model (``protocol.pml``, see ``README.md`` beside it), checked
exhaustively with spin: every configuration has no violation in any state it can reach,
and every broken variant of it is caught, so the check cannot pass vacuously."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.support import debian_package

MODEL = Path(__file__).resolve().parent / "protocol.pml"

# Each configuration is searched exhaustively (no bitstate hashing): the clients, the
# garbage collector and the clock in every interleaving, a crash between any two steps.
CONFIGS = {
    # A Worker alone: prefetch, chunk starts, started takes, graceful stop, zombie,
    # two connection faults (lost replies, resends by the client, failed sends).
    "worker": ("-DCONSUMER=0", "-DWTAKES=3", "-DFAULTS=2"),
    "worker-3-messages": ("-DCONSUMER=0", "-DWTAKES=3", "-DNM=3", "-DFAULTS=1"),
    # A Consumer with a fixed token and two successors of its id; every settlement.
    "successors": ("-DWORKER=0", "-DLIVES=3", "-DFAULTS=2"),
    # A Worker and a Consumer sharing the queue, each frozen, reaped, resumed at will.
    "pair": ("-DLIVES=1", "-DCTAKES=1", "-DSETTLES=0", "-DFAULTS=0"),
}

# What each property's failed assertion says.
EXACTLY_ONE_PLACE = "loc[m]==255"
NO_STRAND = "(loc[m]==0)||(loc[m]==3)"
EVERY_RUN_COUNTED = ">=runs["
COUNT_MONOTONE = ">=dv[m]"
NO_LIVE_REAPED = "!(((1&&reg[c])"
ORPHANS_NOTICED = "recon[c]||"

# The model with one rule broken (MUTANT_*), or as the code was (TODAY_*: defects the
# model found, fixed since), the configuration that shows it, the property broken.
BROKEN = [
    ("MUTANT_COPY", "successors", EXACTLY_ONE_PLACE),  # a reject that pushes unchecked
    ("MUTANT_NO_RECHECK", "pair", NO_LIVE_REAPED),  # reap on expired.lua's word alone
    ("MUTANT_NO_REGISTER", "pair", NO_STRAND),  # takes do not register: rmq's zombie hole
    ("MUTANT_SETTLE_FIRST", "successors", EVERY_RUN_COUNTED),  # orizuru's ack: guard first
    ("MUTANT_UNCOUNTED_REAP", "pair", EVERY_RUN_COUNTED),  # a dead consumer's, uncounted
    ("MUTANT_RESET_COUNT", "worker", COUNT_MONOTONE),  # release.lua writes a fresh count
    ("TODAY_TOKEN", "successors", EVERY_RUN_COUNTED),
    ("TODAY_LENGTH", "worker", ORPHANS_NOTICED),
    ("TODAY_BLOCK", "successors", NO_STRAND),
]


def search(tmp: Path, flags: tuple[str, ...], optimize: str) -> str:
    """Generate, compile and run the verifier for ``flags``; its report."""
    spin = debian_package("spin", "/usr/bin/spin")
    cc = debian_package("gcc", "/usr/bin/gcc", "/usr/bin/cc")
    model = tmp / MODEL.name
    model.write_text(MODEL.read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([str(spin), "-a", *flags, model.name], cwd=tmp, check=True, timeout=60)
    subprocess.run(
        [str(cc), optimize, "-w", "-DSAFETY", "-DCOLLAPSE", "-o", "pan", "pan.c"],
        cwd=tmp,
        check=True,
        timeout=120,
    )
    done = subprocess.run(
        ["./pan", "-m1000000", "-w24"], cwd=tmp, capture_output=True, text=True, timeout=300
    )
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_the_model_holds_in_every_reachable_state(tmp_path: Path, config: str) -> None:
    report = search(tmp_path, CONFIGS[config], "-O2")
    assert "errors: 0" in report, report
    assert "Search not completed" not in report and "max search depth" not in report, report
    stored = re.search(r"(\d+) states, stored", report)
    assert stored is not None and int(stored.group(1)) > 10_000, report


@pytest.mark.parametrize(("variant", "config", "broken"), BROKEN)
def test_a_broken_protocol_is_caught(
    tmp_path: Path, variant: str, config: str, broken: str
) -> None:
    report = search(tmp_path, (*CONFIGS[config], f"-D{variant}"), "-O0")
    assert "errors: 1" in report, report
    violated = re.search(r"assertion violated (.*)", report)
    assert violated is not None and broken in violated.group(1), report
