"""orizuru_py for asyncio: the same queue, the same guarantee, ``await`` on every call that
talks to Redis. Each class runs the plans of its blocking twin (orizuru_py), so there
is one copy of every rule.

    from orizuru_py.asyncio import Producer, Consumer, GarbageCollector, Queue, Schedule, Worker
"""

from .collector import GarbageCollector
from .consumer import Consumer, MessageGuard
from .producer import Producer
from .queue import Queue
from .schedule import Schedule
from .worker import Worker

__all__ = [
    "Consumer",
    "GarbageCollector",
    "MessageGuard",
    "Producer",
    "Queue",
    "Schedule",
    "Worker",
]
