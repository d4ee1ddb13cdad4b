"""The hunter: runs a seed's steps against a real server and checks the invariants after
each; then drains. A violation raises ``Violation`` with the seed and the step log, so
``run(url, seed, n)`` replays it (the same seed gives the same steps)."""

from __future__ import annotations

import contextlib
import random
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio

import orizuru_py
import orizuru_py.asyncio as aoz
from orizuru_py import QueueKeys

from . import scenes
from .actors import SWALLOWED, Loop, Slot, WorkerSlot, cancel_after, sigkill_child
from .book import Book
from .invariants import Checker, Live
from .plan import CHILD_HBT, DRAIN, EXPECTED, HBT, MAX_ATTEMPTS, SLOTS, Step, steps
from .snapshot import take


class Violation(AssertionError):
    steps = 0  # how many steps had run


class Hunter:
    def __init__(self, url: str, seed: int) -> None:
        self.url, self.seed = url, seed
        tag = uuid.uuid4().hex[:8]
        self.queue, self.side = f"hunt-{tag}", f"hunt-{tag}-side"
        self.r = redis.Redis.from_url(url)
        self.book = Book(MAX_ATTEMPTS)
        self.checker = Checker(self.book)
        self.loop = Loop()
        self.slots: dict[str, Slot] = {}
        self.workers: dict[str, WorkerSlot] = {}
        self.log: list[str] = []
        self.n = 0  # payload numbers
        self.paused = False
        self.figures: dict[str, int] = {}
        self.drain_seconds = DRAIN
        self.swallows = 0
        self.producer = orizuru_py.Producer(self.r, self.queue)
        self.aclient = redis.asyncio.Redis.from_url(url)
        self.aproducer = aoz.Producer(self.aclient, self.queue)
        self.q = orizuru_py.Queue(self.r, self.queue)
        self.aq = aoz.Queue(self.aclient, self.queue)

    # -- running ---------------------------------------------------------------------------

    def run(self, n: int, deadline: float | None = None) -> int:
        """Run the seed's first ``n`` steps (fewer if ``deadline``, monotonic, passes), then
        drain; returns the number of steps run."""
        done = 0
        try:
            for step in steps(self.seed, n):
                if deadline is not None and time.monotonic() > deadline:
                    break
                self.one(step)
                done += 1
            self.drain()
            self.tidy()
        finally:
            self.close()
        return done

    def tidy(self) -> None:
        """Delete the run's keys (a failed run keeps them, to be looked at)."""
        for name in (self.queue, self.side):
            keys = QueueKeys(name)
            found = list(self.r.scan_iter(match=f"{keys.base}:*", count=1000))
            if found:
                self.r.delete(*found)
            self.r.srem(keys.registry, name)

    def one(self, step: Step) -> None:
        try:
            outcome = getattr(self, f"do_{step.kind}")(step)
        except EXPECTED as exc:
            outcome = f"error {type(exc).__name__}: {exc}"
        except Exception:
            self.log.append(f"{step}: raised\n{traceback.format_exc()}")
            self.fail(["a step raised an unexpected exception"])
        self.log.append(f"{step}: {outcome}")
        self.check()

    def check(self) -> None:
        for slot in list(self.slots.values()):
            with contextlib.suppress(*EXPECTED):  # still stale: checked after a later one
                slot.reconcile()
        lives: list[Live] = [s.live() for s in self.slots.values()]
        lives += [c for w in self.workers.values() for c in w.lives()]
        snap = take(self.r, self.queue, self.side)
        stale = {s.consumer.id for s in self.slots.values() if s.consumer.held.stale}
        for c in lives:  # a reconcile failed on a cut connection: its lists checked later
            if c.id in stale:
                c.knows = c.app = None
        found = self.book.take_errors()  # first: it adopts ids of pushes cancelled in flight
        self.note_swallowed()
        found += self.checker.check(snap, lives)
        if found:
            self.fail(found)

    def note_swallowed(self) -> None:
        """Calls that returned normally though cancelled while they ran: logged and counted,
        not failed. Two known causes (test_found.py): asyncio Consumer.close() suppresses
        its own cancellation, and any call may lose one in CPython 3.11's asyncio.wait_for
        (redis-py reads replies under it). The state must stay consistent either way."""
        while SWALLOWED:
            self.log.append(f"  ({SWALLOWED.pop()}() swallowed its cancellation)")
            self.swallows += 1

    def fail(self, found: list[str]) -> None:
        ran = sum(1 for line in self.log if line.startswith("#"))  # the drain's lines are not
        violation = Violation(
            f"seed {self.seed}: {len(found)} violation(s) after {ran} step(s):\n  "
            + "\n  ".join(found)
            + f"\nqueue {self.queue}; replay: ORIZURU_HUNT_SEED={self.seed} "
            f"ORIZURU_HUNT_STEPS={ran}\nstep log:\n  " + "\n  ".join(self.log)
        )
        violation.steps = ran
        raise violation

    def close(self) -> None:
        for w in list(self.workers.values()):
            with contextlib.suppress(Exception):
                w.stop(1)
        for s in list(self.slots.values()):
            try:
                s.stop_heartbeat()
                s.drop()
            except Exception:
                pass
        self.loop.run(self.aclient.aclose())
        self.loop.close()
        self.r.close()

    # -- the steps -------------------------------------------------------------------------

    def slot(self, step: Step) -> Slot:
        name = SLOTS[step.slot % len(SLOTS)]
        if name not in self.slots:
            self.slots[name] = Slot(f"{name}", self.url, self.queue, HBT, MAX_ATTEMPTS, self.loop)
        return self.slots[name]

    def do_push(self, step: Step) -> str:
        kind, many = step.a % 10, 1
        fails = 0 if step.b % 10 < 7 else 1 if step.b % 10 < 9 else MAX_ATTEMPTS + 1
        delay = 0.05 + (step.b // 10 % 10) / 10 if kind in (5, 9) else 0.0
        ttl = 0.2 + step.x * 2 if kind in (6, 9) else None
        key = f"k{step.b // 100 % 5}" if kind == 7 else None
        if kind == 8:
            many = 2 + step.b // 100 % 5
        how = ("", "", "", "", "", "push", "dead", "reject", "retry", "ack")[step.b // 1000 % 10]
        extra: dict[str, Any] = {"h": how} if how else {}
        if step.b // 10_000 % 8 == 0:
            extra["s"] = 0.3  # a slow handler: past a Worker's time limit
        return self.push(many, fails, delay, ttl, key, step, extra)

    def do_flood(self, step: Step) -> str:
        return self.push(1000 + step.b % 300, 0, 0.0, None, None, step)

    def push(
        self,
        many: int,
        fails: int,
        delay: float,
        ttl: float | None,
        key: str | None,
        step: Step,
        extra: dict[str, Any] | None = None,
    ) -> str:
        payloads = []
        for _ in range(many):
            self.n += 1
            payloads.append({"n": self.n, "f": fails, **(extra or {})})
        kw: dict[str, Any] = {"delay": delay or None, "ttl": ttl}
        if many == 1:
            kw["unique_key"] = key
        said = f"delay={delay} ttl={ttl} key={key} f={fails} {extra or ''}"
        ids: list[str]
        got: Any
        if step.slot % 2 == 0:  # the blocking API
            ids = list(self.producer.push_many(payloads, **kw)) if many > 1 else [
                self.producer.push(payloads[0], **kw)]  # fmt: skip
        else:
            turns = step.b % 30 if step.x > 0.85 else None
            producer = self.aproducer

            def pushing() -> Any:
                if many > 1:
                    return producer.push_many(payloads, **kw)
                return producer.push(payloads[0], **kw)

            if turns is None:
                got = self.loop.call(pushing)
            else:
                finished, got = self.loop.run(cancel_after(pushing, turns))
                if not finished:
                    for p in payloads:
                        self.book.pending(p["n"], ttl, delay, key)
                    return f"push {many} cancelled after {turns} turns {said}"
            ids = list(got) if many > 1 else [got]
        new = [
            self.book.push(m, p["n"], ttl, delay, key) for m, p in zip(ids, payloads, strict=True)
        ]
        return f"pushed {len(ids)} ({sum(new)} new) {said}"

    def do_take(self, step: Step) -> str:
        s = self.slot(step)
        n = 1 + step.a % 4 if step.a % 25 else 1100  # sometimes more than a script's look
        turns = step.b % 40 if s.is_async and step.x < 0.35 else None
        c = s.consumer
        fn = (lambda: c.next(timeout=0.1)) if n == 1 else (lambda: c.next_batch(n, timeout=0.1))
        with self.cutting(s, step):
            finished, got = s.call(fn, turns)
        if not finished:
            return f"{s.name} take {n}: cancelled after {turns} turns"
        guards = [] if got is None else [got] if n == 1 else list(got)
        for g in guards:
            self.book.delivered(g.id, g.attempts, s.name, g.payload.get("n"))
        s.guards.extend(guards)
        rng = random.Random(f"{self.seed}/{step.i}")
        acts = [self.act(s, g, rng.randrange(10)) for g in guards]
        return f"{s.name} took {len(guards)}: " + ", ".join(acts)

    def act(self, s: Slot, g: Any, choice: int, turns: int | None = None) -> str:
        """What the application does with a guard: 0-2 keeps it, then ack, reject, retry,
        dead_letter, push to the side queue."""
        if choice <= 2:
            return f"{g.id[-6:]} kept"
        what = ["ack", "ack", "ack", "reject", "retry", "dead", "push"][choice - 3]
        if what == "retry" and g.attempts >= MAX_ATTEMPTS:
            what = "reject"  # a retry at the last attempt is a known defect (test_found.py)
        call = {"ack": g.ack, "reject": g.reject, "retry": lambda: g.retry(0.1),
                "dead": g.dead_letter, "push": lambda: g.push(self.side)}[what]  # fmt: skip
        try:
            finished, ok = s.call(call, turns)
        except EXPECTED as exc:
            if what == "ack":
                self.book.maybe_ack(g.id)
            return f"{g.id[-6:]} {what} error {type(exc).__name__}"  # still held, unsettled
        s.guards.remove(g)
        if not finished:
            if self.unstarted(s, [g]):
                return f"{g.id[-6:]} {what} cancelled before it began (still held)"
            if what == "ack":
                self.book.maybe_ack(g.id)
            return f"{g.id[-6:]} {what} cancelled (given up)"
        if ok and what == "ack":
            self.book.ack(g.id)
        return f"{g.id[-6:]} {what} {ok}"

    def unstarted(self, s: Slot, guards: list[Any]) -> bool:
        """A call cancelled before it began (its task never ran) settled nothing: the
        consumer still counts the guards as held, so the application still holds them.
        (One cancelled once it ran gives them up: the consumer forgets them.)"""
        known = s.consumer.held.copies()
        if not all(known.get(g.raw, 0) > 0 and not g.settled for g in guards):
            return False
        s.guards.extend(guards)
        return True

    def do_settle(self, step: Step) -> str:
        s = self.slot(step)
        if not s.guards:
            return f"{s.name} holds nothing"
        turns = step.b % 40 if s.is_async and step.x < 0.35 else None
        if step.a % 3 == 0:
            guards = list(s.guards)
            try:
                with self.cutting(s, step):
                    finished, oks = s.call(lambda: s.consumer.ack_many(guards), turns)
            except EXPECTED as exc:
                for g in guards:
                    self.book.maybe_ack(g.id)
                return f"{s.name} ack_many error {type(exc).__name__}"
            for g in guards:
                s.guards.remove(g)
            if not finished:
                if self.unstarted(s, guards):
                    return f"{s.name} ack_many {len(guards)} cancelled before it began"
                for g in guards:
                    self.book.maybe_ack(g.id)
                return f"{s.name} ack_many {len(guards)} cancelled (given up)"
            for g, ok in zip(guards, oks, strict=True):
                if ok:
                    self.book.ack(g.id)
            return f"{s.name} ack_many {len(guards)}: {sum(oks)} True"
        rng = random.Random(f"{self.seed}/{step.i}")
        acts = [self.act(s, g, 3 + rng.randrange(7), turns) for g in list(s.guards)]
        return f"{s.name} settled: " + ", ".join(acts)

    def do_close(self, step: Step) -> str:
        name = SLOTS[step.slot % len(SLOTS)]
        s = self.slots.pop(name, None)
        if s is None:
            return f"{name} empty"
        turns = step.b % 40 if s.is_async and step.x < 0.4 else None
        s.guards.clear()
        racing = ""
        try:
            if turns is None and step.a % 3 == 0:
                racing = scenes.close_racing(self, s, step)
                finished = True
            else:
                finished, _ = s.call(s.consumer.close, turns)
        except EXPECTED as exc:
            s.stop_heartbeat()
            s.drop()
            return f"{name} close error {type(exc).__name__}: left to the GC"
        s.drop()
        if not finished:
            return f"{name} close cancelled: left to the GC"
        snap = take(self.r, self.queue, self.side)
        cid = s.consumer.id
        if cid in snap.consumers or snap.held.get(cid):
            self.fail([f"{name} ({cid}) closed, yet registered or holding {snap.held.get(cid)}"])
        return f"{name} closed{racing}"

    def do_die(self, step: Step) -> str:
        name = SLOTS[step.slot % len(SLOTS)]
        s = self.slots.get(name)
        if s is None:
            return f"{name} empty"
        s.stop_heartbeat()
        held = len(s.guards)
        if step.a % 3 == 0 and not s.heartless:  # its heart stops, its hands go on taking:
            s.heartless = True  # reaped once its deadline passes, registered by its takes
            return f"{name}'s heartbeat stopped; it goes on, holding {held}"
        del self.slots[name]
        s.drop()
        return f"{name} died holding {held}"

    def do_cut(self, step: Step) -> str:
        names = [*SLOTS, "w-s", "w-a"]
        name = names[step.slot % len(names)]
        return f"cut {self.kill(name)} connection(s) of {name}"

    def kill(self, name: str) -> int:
        killed = 0
        for client in self.r.client_list():
            if client.get("name") == name:
                killed += self.r.client_kill_filter(_id=client["id"])
        return killed

    @contextlib.contextmanager
    def cutting(self, s: Slot, step: Step) -> Iterator[None]:
        """Cut the slot's connections while its call runs (a reply lost, or a request never
        arriving): after 0-40 ms, in one step of 8."""
        if step.b % 8:
            yield
            return
        timer = threading.Timer(step.x * 0.04, self.kill, args=(s.name,))
        timer.start()
        try:
            yield
        finally:
            timer.join()

    def do_worker(self, step: Step) -> str:
        name = "w-s" if step.slot % 2 == 0 else "w-a"
        w = self.workers.pop(name, None)
        if w is not None:
            how = step.a % 3
            said = w.stop(how)
            ids = [c.id for c in w.worker.consumers]
            snap = take(self.r, self.queue, self.side)
            left = {i: snap.held[i] for i in ids if snap.held.get(i)}
            if how != 1 and (left or set(ids) & set(snap.consumers)) and not w.errors:
                self.fail([f"{name} stopped gracefully ({said}), yet registered or holding "
                           f"{left}"])  # fmt: skip
            return f"{name} {said}"
        gc = 0.5 if step.b % 2 else None
        conc = 1 + step.b // 2 % 4
        limit = 0.2 if step.b // 8 % 3 == 0 else None
        self.workers[name] = WorkerSlot(
            name, self.url, self.queue, self.side, self.book, self.loop, concurrency=conc,
            time_limit=limit,
            max_attempts=MAX_ATTEMPTS, heartbeat_timeout=HBT, gc_interval=gc, drain_timeout=10.0,
        )  # fmt: skip
        return f"{name} started concurrency={conc} gc={gc} time_limit={limit}"

    def do_gc(self, step: Step) -> str:
        if step.slot % 2:
            agc = aoz.GarbageCollector(self.aclient, self.queue, max_attempts=MAX_ATTEMPTS)
            report = self.loop.run(agc.collect())
        else:
            gc = orizuru_py.GarbageCollector(self.r, self.queue, max_attempts=MAX_ATTEMPTS)
            report = gc.collect()
        return f"gc {report}"

    def do_cancel(self, step: Step) -> str:
        if not self.book.order:
            return "nothing pushed"
        mid = self.book.order[step.a % len(self.book.order)]
        done: Any
        if step.a % 4 == 0:
            where = ("waiting", "delayed", "unacked", "dead")[step.b % 4]
            done = self.q.delete(mid, where)
            if done:
                self.book.deleted(mid)
            return f"delete {mid[-6:]} from {where}: {done}"
        if step.slot % 2 == 0:
            done = self.q.cancel(mid)
        elif step.x >= 0.3:
            done = self.loop.call(lambda: self.aq.cancel(mid))
        else:
            turns = step.b % 30
            finished, done = self.loop.run(cancel_after(lambda: self.aq.cancel(mid), turns))
            if not finished:
                with self.book.lock:
                    self.book.cancel_cut.add(mid)
                    self.book.cancel_tried.add(mid)
                return f"cancel {mid[-6:]}: itself cancelled after {turns} turns"
        self.book.cancel(mid, bool(done))
        return f"cancel {mid[-6:]}: {done}"

    def do_pause(self, step: Step) -> str:
        self.q.resume() if self.paused else self.q.pause()
        self.paused = not self.paused
        return "paused" if self.paused else "resumed"

    def do_requeue(self, step: Step) -> str:
        with self.book.requeueing():
            return f"requeue_dead: {self.q.requeue_dead()}"

    def do_purge(self, step: Step) -> str:
        # Anything may move into a purged list meanwhile but what the (idle) steps' consumers
        # with a heartbeat hold in their lists: a heartless one may be reaped at any time.
        before = take(self.r, self.queue, self.side)
        held = {
            g.id
            for s in self.slots.values()
            if not s.heartless
            for g in s.guards
            if f"processing:{s.consumer.id}" in before.where(g.id)
        }
        with self.book.lock:
            self.book.purge_candidates |= set(self.book.order) - held
        n = self.q.purge()
        with self.book.lock:
            self.book.purged += n
            self.book.unique_exempt |= set(self.book.order)  # purge forgets every unique key
        return f"purged {n}"

    def do_sleep(self, step: Step) -> str:
        time.sleep(0.05 + step.x * 0.5)
        return "slept"

    def do_sigkill(self, step: Step) -> str:
        said, cid, pid = sigkill_child(self.url, self.queue, CHILD_HBT, MAX_ATTEMPTS)
        if said not in ("none", "died"):
            mid, attempts = said.split()
            self.book.delivered(mid, int(attempts), f"child {cid}")
        return f"child {pid} ({cid}) said {said!r}, SIGKILLed"

    def do_freeze(self, step: Step) -> str:
        return scenes.freeze(self, step)

    # -- the end ---------------------------------------------------------------------------

    def drain(self) -> None:
        scenes.drain(self)
