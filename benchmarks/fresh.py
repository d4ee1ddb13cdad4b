"""Run a measurement in a fresh interpreter: for peers that must own the main thread
(rq and huey install signal handlers), and for the memory of a clean process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))


def run_isolated(module: str, function: str, kwargs: Mapping[str, Any], timeout: float) -> Any:
    """Call ``module.function(**kwargs)`` (a module of benchmarks/) in a fresh interpreter
    and return what it returned, through JSON on the last line of its stdout."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {HERE!r})\n"
        f"from {module} import {function} as f\n"
        "print(json.dumps(f(**json.loads(sys.argv[1]))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module}.{function} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
