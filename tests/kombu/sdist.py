"""kombu's own integration tests (``t/integration`` of its sdist), at the installed
(pinned) version: fetched once with pip into a cache, never vendored."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import kombu


def kombu_tests() -> Path:
    """The root of kombu's sdist (holding ``t/integration``), downloading it if needed.
    ``KOMBU_SDIST`` names an unpacked one; else it lives in the user's cache."""
    given = os.environ.get("KOMBU_SDIST")
    if given:
        return Path(given)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    root = cache / "orizuru_py" / f"kombu-{kombu.__version__}"
    if (root / "t" / "integration" / "common.py").exists():
        return root
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"kombu=={kombu.__version__}"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
             "--no-deps", spec, "-d", tmp],
            check=True,
        )  # fmt: skip
        (archive,) = Path(tmp).glob("kombu-*.tar.gz")
        with tarfile.open(archive) as tar:
            prefix = f"kombu-{kombu.__version__}/t/"
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            tar.extractall(tmp, members=members, filter="data")
        root.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(Path(tmp) / f"kombu-{kombu.__version__}", root)
        except OSError:  # another run put it there first
            if not (root / "t" / "integration" / "common.py").exists():
                raise
    return root
