"""Producer for asyncio: the blocking Producer's plans (orizuru_py.producer), awaited."""

from __future__ import annotations

from ..plan import awaiting
from ..producer import ProducerCore
from .driver import AsyncDriver


class Producer(ProducerCore):
    """Pushes messages onto one queue (``await push(...)``). Safe to share between tasks."""

    driver_class = AsyncDriver
    _driver: AsyncDriver

    push = awaiting(ProducerCore._push)
    push_many = awaiting(ProducerCore._push_many)
