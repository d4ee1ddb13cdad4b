"""The ``orizuru`` subcommands, one module per group; in each, a subcommand's options
(``NAME_options``) sit right above what it does (``cmd_NAME``), and the module ends with
its ``COMMANDS``. ``..cli`` builds the parser from ``COMMANDS`` below, in this order.

- ``look``: ``stats``, ``top``, ``peek`` (change nothing)
- ``act``: ``purge``, ``requeue``, ``gc``, ``pause``, ``resume``, ``cancel``
- ``worker``: ``worker`` (and ``--processes``, through ``..supervisor``)
- ``schedule``: ``schedule`` (add, list, remove periodic messages), ``scheduler``
- ``tools``: ``server``, ``demo``, ``bench``, ``dashboard``
- ``common``: what they share (``Command``, errors, argument types, the server)
"""

from __future__ import annotations

from . import act, look, schedule, tools, worker
from .common import CliError, Command, UsageError

COMMANDS: tuple[Command, ...] = (
    *look.COMMANDS,
    *act.COMMANDS,
    *worker.COMMANDS,
    *schedule.COMMANDS,
    *tools.COMMANDS,
)

__all__ = ["COMMANDS", "CliError", "Command", "UsageError"]
