"""The seeded plan: a seed gives the same sequence of steps, whatever the run does.

Every step draws the same numbers from the seed's generator (its kind, a slot, three
parameters), so the sequence depends on the seed only; each step reads what it needs
from them against the state of the run (an empty slot gets a new consumer first, say).
"""

from __future__ import annotations

import random

import attrs
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

HBT = 3.0  # heartbeat timeout of every consumer: a live one is reaped only after 2.5 s unheard
CHILD_HBT = 1.5  # of the process that is SIGKILLed
MAX_ATTEMPTS = 4
DRAIN = 90.0  # seconds the drain may take before what is left is a strand
EXPECTED = (RedisConnectionError, RedisTimeoutError)  # how a cut connection may surface

# kind -> weight. Consumer slots: s0-s2 blocking, a0-a2 asyncio; w-s / w-a the Workers.
KINDS: dict[str, int] = {
    "push": 14,  # one, or a few (either API; an asyncio push may be cancelled in flight)
    "flood": 1,  # push_many of more than a script looks at per call (1000): the deep paths
    "take": 12,  # next / next_batch on a consumer slot (asyncio: maybe cancelled)
    "settle": 7,  # settle guards the application holds (ack, ack_many, reject, retry...)
    "close": 3,  # close() a consumer (asyncio: maybe cancelled; maybe while it takes)
    "die": 2,  # a consumer dropped without close, its heartbeat stopped (or it goes on
    # taking without a heartbeat: reaped, then registered again by its next take)
    "cut": 3,  # CLIENT KILL a consumer's or a Worker's connections
    "worker": 3,  # start a Worker, or stop / abort / cancel a running one
    "gc": 5,  # a GarbageCollector pass (either API)
    "cancel": 3,  # Queue.cancel (asyncio: may be cancelled itself) or Queue.delete
    "pause": 2,  # pause, or resume a paused queue
    "requeue": 1,  # Queue.requeue_dead
    "purge": 1,  # Queue.purge (rare: it deletes what waits)
    "sleep": 3,  # let time pass: delays, ttls, deadlines
    "sigkill": 1,  # a consumer process SIGKILLed holding a message
    "freeze": 1,  # the asyncio loop blocked past every deadline: its consumers are zombies
}
SLOTS = ("s0", "s1", "s2", "a0", "a1", "a2")


@attrs.frozen
class Step:
    i: int
    kind: str
    slot: int
    a: int
    b: int
    x: float

    def __str__(self) -> str:
        return f"#{self.i} {self.kind} slot={self.slot} a={self.a} b={self.b} x={self.x:.3f}"


def steps(seed: int, n: int) -> list[Step]:
    rng = random.Random(seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    return [
        Step(
            i,
            rng.choices(kinds, weights)[0],
            rng.randrange(1000),
            rng.randrange(1_000_000),
            rng.randrange(1_000_000),
            rng.random(),
        )
        for i in range(n)
    ]
