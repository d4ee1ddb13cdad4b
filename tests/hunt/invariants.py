"""The invariants the hunter checks after every step, on an atomic snapshot.

1. One place: every message is in at most one place (waiting, delayed, unacked, dead,
   a consumer's processing or prefetch list, the side queue a guard pushed it to).
2. Nothing vanishes unexplained: a pushed message in no place was handled (a handler or
   a step finished it), acked, or cancelled (``cancel()`` returned True). Beyond those,
   only a message whose ttl lapsed, one a ``cancel()`` marked, or one a purge may have
   deleted may be missing, and no more of them than the server counted (``expired``,
   ``cancelled`` beyond the True cancels) and purges returned. A True cancel counts as
   ``cancelled`` unless a purge may have deleted the message first (one cancelled in a
   worker's hand is counted when a take drops it): then it is one of those.
3. Delivery counts never go down, except after a ``requeue_dead`` (a fresh count).
   (The book checks deliveries to application code: never uncounted, never past
   max_attempts, never after a True cancel.)
4. A live consumer is never reaped: its id stays registered and it never finds itself
   fenced.
5. A live consumer's lists hold nothing it does not know it holds (after one reconcile of
   a consumer that knows its lists may hold more), and what it knows it holds is what the
   application holds. (It may know of a message no longer there: one the GC took back
   from it, or whose ack reached the server but whose reply was lost; settling it then
   says False.)
6. Unique keys and live messages agree: each key names a live message carrying it, and
   each live message carrying a key is the one the key names.
7. No cancellation mark without its message. Tolerated: marks of messages a purge may
   have deleted (``Queue.purge`` leaves them), and of messages whose ``cancel()`` was
   itself cancelled in flight (its "w" mark, or the "d" a take leaves for it): the GC's
   24 h sweep clears both, as documented.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import attrs

from .book import Book
from .snapshot import Snapshot


@attrs.define
class Live:
    """A consumer the hunter believes alive: its id, whether it has registered, whether it
    has found itself reaped, what it knows it holds and (a step's consumer) what the
    application holds; None where the check does not apply (a running Worker)."""

    name: str
    id: str
    started: bool
    fenced: bool
    knows: Counter[bytes] | None = None
    app: Counter[bytes] | None = None


@attrs.define
class Checker:
    book: Book
    floors: dict[str, tuple[int, int]] = attrs.Factory(dict)  # id -> (deliveries, revivals)

    def check(self, snap: Snapshot, live: Iterable[Live]) -> list[str]:
        found: list[str] = []
        found += self.one_place(snap)
        found += self.vanished(snap)
        found += self.counts_rise(snap)
        found += alive(snap, live)
        found += uniques(snap, self.book)
        found += marks(snap, self.book)
        found += [f"bytes that are no message in {where}" for where in snap.garbage]
        return found

    def one_place(self, snap: Snapshot) -> list[str]:
        out = []
        for mid, places in snap.places.items():
            if len(places) > 1:
                out.append(f"{mid} is in {len(places)} places: {[p.where for p in places]}")
            if mid not in self.book.pushed and not self.book.adopt(mid, places[0].n):
                out.append(f"{mid} in {places[0].where} was never pushed")
        return out

    def vanished(self, snap: Snapshot) -> list[str]:
        book = self.book
        explained = book.explained()
        with book.lock:
            gone = [m for m in book.order if m not in snap.places]
            cancelled = set(book.cancelled)
            tried, purgeable, purged = (
                set(book.cancel_tried),
                set(book.purge_candidates),
                book.purged,
            )
        unexplained = [m for m in gone if m not in explained]
        out = []
        loose = []
        for mid in unexplained:
            if not (book.ttl_lapsed(mid, snap.now_ms) or mid in tried or mid in purgeable):
                seen = book.history.get(mid, [])
                out.append(f"LOST {mid} (n={book.pushed[mid].n}): in no place, never handled; "
                           f"delivered to {seen}")  # fmt: skip
            else:
                loose.append(mid)
        # A True cancel of a message in a worker's hand leaves a "p" mark and counts it
        # when a take drops it; a purge may delete it first, and counts it as purged.
        gone_cancelled = [m for m in gone if m in cancelled]
        counted = sum(1 for m in gone_cancelled if m not in purgeable)
        loose += [m for m in gone_cancelled if m in purgeable]
        n_cancelled = snap.counts.get("cancelled", 0)
        if counted > n_cancelled:
            out.append(
                f"{counted} messages cancelled (True) are gone, but counts says "
                f"{n_cancelled} were cancelled"
            )
        budget = snap.counts.get("expired", 0) + max(0, n_cancelled - counted) + purged
        if len(loose) > budget:
            out.append(
                f"LOST: {len(loose)} messages gone unhandled or cancelled ({loose[:5]}...), "
                f"but only {budget} expired, cancelled, or purged"
            )
        return out

    def counts_rise(self, snap: Snapshot) -> list[str]:
        out = []
        revivals = self.book.revivals
        for mid, places in snap.places.items():
            n = max(p.deliveries for p in places)
            floor = self.floors.get(mid)
            if floor is not None and n < floor[0] and floor[1] == revivals:
                out.append(f"the delivery count of {mid} went down: {floor[0]} -> {n} "
                           f"(in {places[0].where})")  # fmt: skip
            self.floors[mid] = (n, revivals)
        return out


def alive(snap: Snapshot, live: Iterable[Live]) -> list[str]:
    out = []
    for c in live:
        if c.started and c.id not in snap.consumers:
            out.append(f"live consumer {c.name} ({c.id}) is not registered: reaped?")
        if c.fenced:
            out.append(f"live consumer {c.name} ({c.id}) found it had been reaped")
        lists = snap.held.get(c.id, Counter())
        unknown = lists - c.knows if c.knows is not None else Counter()
        if unknown:
            out.append(
                f"consumer {c.name} ({c.id}): its lists hold {_ids(unknown)}, which it does "
                f"not know it holds (it knows {_ids(c.knows or Counter())})"
            )
        if c.app is not None and c.knows is not None and +c.app != +c.knows:
            out.append(
                f"consumer {c.name} ({c.id}) knows {_ids(c.knows)}, the application holds "
                f"{_ids(c.app)}"
            )
    return out


def _ids(raws: Counter[bytes]) -> list[str]:
    from orizuru_py.envelope import message_id

    return sorted(f"{message_id(raw)}x{n}" for raw, n in raws.items() if n > 0)


def uniques(snap: Snapshot, book: Book) -> list[str]:
    out = []
    with book.lock:
        exempt = set(book.unique_exempt)
    for key, mid in snap.unique.items():
        places = [p for p in snap.places.get(mid, []) if p.where not in ("dead", "side")]
        if not places:
            out.append(f"unique key {key!r} names {mid}, which is not live ({snap.where(mid)})")
        elif places[0].unique_key != key:
            out.append(f"unique key {key!r} names {mid}, which carries {places[0].unique_key!r}")
    for mid, places in snap.places.items():
        for p in places:
            if p.where in ("dead", "side") or mid in exempt or p.unique_key is None:
                continue
            if snap.unique.get(p.unique_key) != mid:
                out.append(
                    f"{mid} in {p.where} carries unique key {p.unique_key!r}, which "
                    f"names {snap.unique.get(p.unique_key)}"
                )
    return out


def marks(snap: Snapshot, book: Book) -> list[str]:
    out = []
    with book.lock:
        purgeable, cut = set(book.purge_candidates), set(book.cancel_cut)
    for mid, state in snap.marks.items():
        if mid in snap.places or mid in purgeable or mid in cut:  # tolerated, see above
            continue
        out.append(f"cancel mark {state[:1]!r} for {mid}, which is nowhere")
    return out
