"""The fault scenarios that run consumer processes, shared by the tests (small) and
``benchmarks/reliability.py`` (big).

Each starts real consumer processes against a real server, injects its faults,
waits until every message Redis acknowledged has been handled and every list of
the queue is empty again, and returns its figures (see ``accounting``).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from orizuru_py import Producer, QueueKeys
from tests.support import instances, wait_for

from .accounting import Figures, cleanup, new_queue, settle
from .fleet import Child, Fleet, GcLoop, PrivateServer, Pusher
from .ledger import Ledger, connect
from .proxy import ChaosProxy

KILL_GAP = (0.1, 0.5)  # seconds between two SIGKILLs
WORKER_THREADS = 2


def kill_one(fleet: Fleet, rng: random.Random) -> None:
    """SIGKILL a random live consumer and start a fresh one in its place."""
    fleet.replace(rng.choice(fleet.live()))


# -- 1. SIGKILL chaos ---------------------------------------------------------------------


def sigkill_chaos(
    url: str,
    logdir: Path,
    *,
    messages: int,
    kills: int,
    consumers: int = 3,
    mode: str = "consumer",
    work_ms: float = 0.0,
    heartbeat_timeout: float = 1.0,
    seed: int | None = None,
) -> Figures:
    """Consumers handle ``messages`` while one of them is SIGKILLed every 100-500 ms and
    replaced, ``kills`` times, a GC running. Extra figures: ``kills``,
    ``kills_mid_stream`` (kills before the last message was handled), ``reaped``, and
    ``max_held`` (what one consumer can hold: each reap can duplicate at most that)."""
    rng = random.Random(seed)
    queue = new_queue("chaos")
    r = connect(url)
    ledger = Ledger(r, queue)
    options: dict[str, Any] = {"heartbeat_timeout": heartbeat_timeout, "work_ms": work_ms}
    if mode != "consumer":  # a worker: threads or asyncio tasks
        options["concurrency"] = WORKER_THREADS
    try:
        ids = Producer(r, queue).push_many({"n": i} for i in range(messages))
        start = time.monotonic()
        with (
            GcLoop(connect(url), queue, 0.2) as gc,
            Fleet(url, queue, logdir, mode, **options) as fleet,
        ):
            fleet.spawn(consumers)
            mid_stream = 0
            for _ in range(kills):
                time.sleep(rng.uniform(*KILL_GAP))
                mid_stream += ledger.handled() < messages
                kill_one(fleet, rng)
            figures = settle(
                r,
                queue,
                ledger,
                ids,
                fleet,
                timeout=60 + messages / 100,
                heartbeat_timeout=heartbeat_timeout,
            )
        return figures | {
            "scenario": "sigkill_chaos",
            "seed": seed,
            "mode": mode,
            "kills": fleet.kills,
            "kills_mid_stream": mid_stream,
            "reaped": gc.total.consumers_reaped,
            # A worker has its handlers' messages and up to 8 per handler prefetched in hand,
            # and at most as many again handled, their batched ack under way.
            "max_held": 1 if mode == "consumer" else 2 * (WORKER_THREADS + 8 * WORKER_THREADS),
            "seconds": round(time.monotonic() - start, 2),
        }
    finally:
        cleanup(r, queue)


# -- 2. server restart --------------------------------------------------------------------


def restart_server(server: PrivateServer, downtime: float) -> None:
    """SIGKILL the server, leave it down ``downtime`` s, start it on the same data and port."""
    server.kill()
    time.sleep(downtime)
    server.restart()


def server_restart(
    workdir: Path,
    *,
    messages: int,
    consumers: int = 2,
    mode: str = "consumer",
    downtime: float = 0.5,
    heartbeat_timeout: float = 1.0,
) -> Figures:
    """A producer pushes one message at a time while consumers handle them; a third of the
    way in, the server (appendfsync always) is SIGKILLed and restarted. Extra figures:
    ``push_errors`` (pushes that raised), ``handled_before_kill``."""
    queue = new_queue("restart")
    with PrivateServer(workdir / "data") as server:
        r = connect(server.url)
        ledger = Ledger(r, queue)
        start = time.monotonic()
        with (
            GcLoop(connect(server.url), queue, 0.2),
            Fleet(
                server.url,
                queue,
                workdir / "logs",
                mode,
                heartbeat_timeout=heartbeat_timeout,
                work_ms=1,
            ) as fleet,
        ):
            fleet.spawn(consumers)
            wait_for(lambda: r.zcard(QueueKeys(queue).consumers) >= consumers, 30)
            with Pusher(connect(server.url), queue, messages, pace=0.001) as pusher:
                wait_for(lambda: len(pusher.ids) >= messages // 3 and ledger.handled() > 0, 60)
                handled_before = ledger.handled()
                restart_server(server, downtime)
                pusher.join(60 + messages / 100)
            figures = settle(
                r,
                queue,
                ledger,
                pusher.ids,
                fleet,
                timeout=60 + messages / 100,
                heartbeat_timeout=heartbeat_timeout,
            )
        return figures | {
            "scenario": "server_restart",
            "mode": mode,
            "attempted": pusher.attempted,
            "push_errors": pusher.errors,
            "handled_before_kill": handled_before,
            "server_kills": server.restarts,
            "seconds": round(time.monotonic() - start, 2),
        }


# -- 3. connection cuts ---------------------------------------------------------------------


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's (credentials and db kept)."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user + '@' if user else ''}127.0.0.1:{port}"))


def connection_cuts(
    url: str,
    logdir: Path,
    *,
    messages: int,
    consumers: int = 2,
    mode: str = "consumer",
    client: str = "url",
    cut_probability: float = 0.02,
    heartbeat_timeout: float = 1.0,
    seed: int | None = None,
) -> Figures:
    """Producer, consumers and GC all reach the server through a proxy that drops each
    chunk (and cuts its connection) with ``cut_probability``. ``client`` picks how they
    connect (see ``ledger.connect``). Extra figures: ``cuts``, ``push_errors``."""
    queue = new_queue("cuts")
    r = connect(url)
    ledger = Ledger(r, queue)
    try:
        start = time.monotonic()
        with ChaosProxy(urlsplit(url).port or 6379, cut_probability, seed=seed) as proxy:
            via = through(url, proxy.port)
            with (
                GcLoop(connect(via, client), queue, 0.2),
                Fleet(
                    via,
                    queue,
                    logdir,
                    mode,
                    client=client,
                    heartbeat_timeout=heartbeat_timeout,
                    work_ms=1,
                ) as fleet,
            ):
                fleet.spawn(consumers)
                with Pusher(connect(via, client), queue, messages, pace=0.001) as pusher:
                    pusher.join(60 + messages / 50)
                figures = settle(
                    r,
                    queue,
                    ledger,
                    pusher.ids,
                    fleet,
                    timeout=60 + messages / 100,
                    heartbeat_timeout=heartbeat_timeout,
                )
            cuts = proxy.cuts
        return figures | {
            "scenario": "connection_cuts",
            "seed": seed,
            "mode": mode,
            "client": client,
            "attempted": pusher.attempted,
            "push_errors": pusher.errors,
            "cuts": cuts,
            "seconds": round(time.monotonic() - start, 2),
        }
    finally:
        cleanup(r, queue)


# -- 5. a slow, live handler ------------------------------------------------------------


def slow_handler(
    url: str, logdir: Path, *, messages: int = 4, consumers: int = 2, heartbeat_timeout: float = 1.0
) -> Figures:
    """Each message takes 3 x ``heartbeat_timeout`` to handle while a GC runs every 100 ms:
    the consumers are alive, so none may be reaped. Extra figures: ``reaped``,
    ``requeued``, ``handler_seconds``."""
    work = 3 * heartbeat_timeout
    queue = new_queue("slow")
    r = connect(url)
    ledger = Ledger(r, queue)
    try:
        ids = Producer(r, queue).push_many({"n": i} for i in range(messages))
        start = time.monotonic()
        with (
            GcLoop(connect(url), queue, 0.1) as gc,
            Fleet(
                url, queue, logdir, heartbeat_timeout=heartbeat_timeout, work_ms=work * 1000
            ) as fleet,
        ):
            fleet.spawn(consumers)
            figures = settle(
                r,
                queue,
                ledger,
                ids,
                fleet,
                heartbeat_timeout=heartbeat_timeout,
                timeout=30 + 3 * work * messages / consumers,
            )
        return figures | {
            "scenario": "slow_handler",
            "reaped": gc.total.consumers_reaped,
            "requeued": gc.total.requeued,
            "handler_seconds": work,
            "heartbeat_timeout": heartbeat_timeout,
            "seconds": round(time.monotonic() - start, 2),
        }
    finally:
        cleanup(r, queue)


# -- 6. a zombie consumer -----------------------------------------------------------------


def freeze_holding(fleet: Fleet, child: Child, r: Any, processing: str) -> int:
    """SIGSTOP ``child`` at a moment it holds messages; return how many it holds, frozen."""
    for _ in range(50):
        wait_for(lambda: r.llen(processing) > 0, 30)
        fleet.freeze(child)
        time.sleep(0.1)  # a command already on the wire still lands
        held = int(r.llen(processing))
        if held:
            return held
        fleet.thaw(child)
    raise AssertionError(f"{child.name} was never caught holding a message")


def zombie(
    url: str,
    logdir: Path,
    *,
    messages: int = 60,
    batch: int = 5,
    work_ms: float = 100,
    heartbeat_timeout: float = 1.0,
) -> Figures:
    """A consumer is frozen (SIGSTOP) holding a batch until the GC reaps it, then resumed
    (SIGCONT): its acks of that batch must return False, it must register again, and when
    it is then SIGKILLed holding new messages, the GC must recover those too. A healthy
    consumer handles what is left. Extra figures: ``held_at_freeze``,
    ``registered_again``, ``held_at_kill``, ``recovered_after_kill``."""
    queue = new_queue("zombie")
    keys = QueueKeys(queue)
    r = connect(url)
    ledger = Ledger(r, queue)
    recovery = 3 * heartbeat_timeout + 10
    try:
        ids = Producer(r, queue).push_many({"n": i} for i in range(messages))
        start = time.monotonic()
        with (
            GcLoop(connect(url), queue, 0.1),
            Fleet(
                url,
                queue,
                logdir,
                heartbeat_timeout=heartbeat_timeout,
                work_ms=work_ms,
                batch=batch,
            ) as fleet,
        ):
            (child,) = fleet.spawn()
            (member,) = wait_for(lambda: instances(r, queue, child.name), 30)
            processing = keys.processing(member)

            def gone() -> bool:
                return r.zscore(keys.consumers, member) is None and not r.exists(processing)

            held_at_freeze = freeze_holding(fleet, child, r, processing)
            wait_for(gone, recovery)
            fleet.thaw(child)
            wait_for(lambda: ledger.late_acks() >= held_at_freeze, 30)
            registered_again = r.zscore(keys.consumers, member) is not None
            held_at_kill = freeze_holding(fleet, child, r, processing)
            fleet.kill(child)
            recovered = bool(wait_for(gone, recovery))
            fleet.spawn()
            figures = settle(
                r,
                queue,
                ledger,
                ids,
                fleet,
                timeout=60 + messages * work_ms / 1000,
                heartbeat_timeout=heartbeat_timeout,
            )
        return figures | {
            "scenario": "zombie",
            "held_at_freeze": held_at_freeze,
            "registered_again": registered_again,
            "held_at_kill": held_at_kill,
            "recovered_after_kill": recovered,
            "seconds": round(time.monotonic() - start, 2),
        }
    finally:
        cleanup(r, queue)


# -- 8. all at once -------------------------------------------------------------------------


def soak(
    workdir: Path,
    *,
    scale: float = 1.0,
    workers: int = 3,
    heartbeat_timeout: float = 1.0,
    seed: int | None = None,
) -> Figures:
    """100k messages x ``scale`` pushed in chunks of 100 while Worker processes (each with
    its own GC, no other) handle them, through 100 SIGKILLs, 5 SIGSTOP/SIGCONT zombies and
    2 server SIGKILLs and restarts (appendfsync always), x ``scale``, in random order.
    Extra figures: the fault counts, ``push_errors``, ``duplicates_per_kill``."""
    rng = random.Random(seed)
    messages, kills = int(100_000 * scale), max(1, round(100 * scale))
    zombies, restarts = max(1, round(5 * scale)), max(1, round(2 * scale))
    freeze_for, downtime = 2 * heartbeat_timeout + 0.5, 0.5
    faults = ["kill"] * kills + ["zombie"] * zombies + ["restart"] * restarts
    rng.shuffle(faults)
    fault_phase = kills * sum(KILL_GAP) / 2 + zombies * freeze_for + restarts * (downtime + 0.5)
    queue = new_queue("soak")
    with PrivateServer(workdir / "data") as server:
        r = connect(server.url)
        ledger = Ledger(r, queue)
        start = time.monotonic()
        with Fleet(
            server.url,
            queue,
            workdir / "logs",
            "worker",
            concurrency=WORKER_THREADS,
            heartbeat_timeout=heartbeat_timeout,
            gc_interval=0.5,
        ) as fleet:
            fleet.spawn(workers)
            wait_for(lambda: r.zcard(QueueKeys(queue).consumers) >= workers, 30)
            with Pusher(
                connect(server.url),
                queue,
                messages,
                chunk=100,
                pace=fault_phase / max(1, messages / 100),
            ) as pusher:
                for fault in faults:
                    time.sleep(rng.uniform(*KILL_GAP))
                    if fault == "kill":
                        kill_one(fleet, rng)
                    elif fault == "zombie":
                        frozen = rng.choice(fleet.live())
                        fleet.freeze(frozen)
                        time.sleep(freeze_for)
                        fleet.thaw(frozen)
                    else:
                        restart_server(server, downtime)
                pusher.join(120 + messages / 100)
            with GcLoop(connect(server.url), queue, 0.2):  # for the workers killed last
                figures = settle(
                    r,
                    queue,
                    ledger,
                    pusher.ids,
                    fleet,
                    timeout=120 + messages / 100,
                    heartbeat_timeout=heartbeat_timeout,
                )
    return figures | {
        "scenario": "soak",
        "seed": seed,
        "scale": scale,
        "kills": fleet.kills,
        "zombies": zombies,
        "server_restarts": server.restarts,
        "attempted": pusher.attempted,
        "push_errors": pusher.errors,
        "duplicates_per_kill": round(figures["duplicates"] / max(1, fleet.kills), 3),
        "seconds": round(time.monotonic() - start, 2),
    }
