"""How the command line logs: one line per record, the process id on each (several
worker processes share one stream), and a traceback indented under its record, so a
dead-lettered message's traceback reads as part of that record and not as stray text."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMAT = "%(asctime)s.%(msecs)03d %(process)d %(levelname)-7s %(name)s: %(message)s"
DATE = "%Y-%m-%d %H:%M:%S"


class Formatter(logging.Formatter):
    """``orizuru_py.worker`` shows as ``worker``; continuation lines are indented."""

    def format(self, record: logging.LogRecord) -> str:
        record.name = record.name.removeprefix("orizuru_py.")
        return super().format(record).replace("\n", "\n    ")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is when a record comes (a test may swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup(level: str) -> None:
    """Log to stderr at ``level`` (one of ``LEVELS``), replacing any earlier setup."""
    handler = _Stderr()
    handler.setFormatter(Formatter(FORMAT, DATE))
    logging.basicConfig(level=level, handlers=[handler], force=True)
