"""Delivery: what a consumer makes of the raw messages a take moved into its lists.

Each becomes a guard, unless it cannot be decoded (another client pushed garbage:
it goes to the dead-letter list with the reason, never kills a consumer and is
never dropped silently) or its ttl passed before it was taken (it is dropped and
counted in the queue's ``expired``). What cannot be moved now (the connection
failed) stays in the consumer's list, which it then reconciles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from . import envelope, scripts
from .checks import MAX_BATCH
from .client import TRANSIENT
from .codecs import Codec
from .errors import DecodeError
from .guard import GuardCore
from .held import Held
from .plan import Runs

log = logging.getLogger("orizuru_py.consumer")

G = TypeVar("G", bound=GuardCore)


async def deliver(
    held: Held,
    codec: Codec,
    make: Callable[..., G],
    driver: Runs,
    raws: list[bytes],
    into: list[str],
) -> list[G]:
    """Guards (made by ``make``) for the taken ``raws``, each gone ``into`` a list of ours."""
    guards: list[G] = []
    bad: list[tuple[bytes, str, str]] = []
    expired: dict[str, list[bytes]] = {}
    decode, parse, processing, epoch = codec.decode, envelope.parse, held.processing, held.epoch
    now = 0
    for raw, key in zip(raws, into, strict=True):
        try:
            mid, enqueued_ms, deliveries, unique_key, expires_ms, data = parse(raw)
            payload = decode(data)
        except DecodeError as exc:
            bad.append((raw, f"undecodable: {exc.reason}", key))
            continue
        except Exception as exc:
            bad.append((raw, f"undecodable payload ({type(codec).__name__}): {exc}", key))
            continue
        if expires_ms is not None:
            now = now or envelope.now_ms()
            if expires_ms < now:
                expired.setdefault(key, []).append(raw)
                continue
        guards.append(
            make(held, driver, raw, mid, payload, deliveries + 1, enqueued_ms, unique_key,
                 False, key is processing, epoch)
        )  # fmt: skip
    # The take moved them to the newest end of their list, where a worker's starts may
    # have pushed what it held ahead of them since: look as deep as that can reach.
    look = len(raws) + scripts.BUDGET + min(held.count, MAX_BATCH)
    for raw, reason, key in bad:
        await dead_letter_garbage(held, raw, reason, key, look=look)
    for key, dropped in expired.items():
        await _drop_expired(held, dropped, key, look)
    return guards


async def dead_letter_garbage(
    held: Held, raw: bytes, reason: str, key: str, *, newest: bool = True,
    look: int = scripts.BUDGET,
) -> None:  # fmt: skip
    """Bytes of our list ``key`` that are no message we can read: to the dead list (they
    are among its ``look`` newest, a take just moved them, or with ``newest`` False its
    oldest). Not found there, they stay ours and the lists are reconciled."""
    log.error("queue %s: dead-lettering a message that cannot be decoded: %s", held.keys.name,
              reason)  # fmt: skip
    try:
        moved = await scripts.dead_letter_garbage(held.keys, key, reason, raw, newest, look).run()
    except TRANSIENT as exc:
        log.warning("could not dead-letter it (%s); it will be handed back", exc)
        held.abandon([raw])
        return
    held.forget([raw])
    if not moved:
        held.stale = True


async def _drop_expired(held: Held, raws: list[bytes], key: str, look: int) -> None:
    try:
        dropped = await scripts.drop(held.keys, key, "expired", raws, look).run()
    except TRANSIENT as exc:
        log.warning("could not drop %d expired message(s) (%s); handed back", len(raws), exc)
        held.abandon(raws)
        return
    log.info("queue %s: dropped %d message(s) whose ttl had passed", held.keys.name, len(raws))
    held.forget(raws)
    if not all(dropped):  # not where a take leaves them: the reconcile sorts them out
        held.stale = True
