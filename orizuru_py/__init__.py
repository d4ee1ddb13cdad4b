"""orizuru_py: a reliable (at-least-once) message queue on Redis lists."""

import importlib.metadata as _metadata

from .backoff import Exponential, Linear
from .codecs import AttrsCodec, BytesCodec, Codec, MsgpackCodec
from .collector import CollectReport, GarbageCollector
from .consumer import Consumer
from .deadletter import DeadLetter
from .errors import (
    AlreadySettled,
    DecodeError,
    EncodeError,
    NotConfirmed,
    OrizuruError,
    RateLimited,
    ScriptsLost,
    TimeLimitExceeded,
    WorkerCrashed,
)
from .guard import MessageGuard
from .keys import QueueKeys
from .limits import RateLimit
from .observer import Observer
from .outcome import WorkerStats
from .peeking import Peeked
from .producer import Producer
from .queue import Queue
from .schedule import Schedule, ScheduleEntry
from .stats import ConsumerStats, QueueStats
from .worker import Worker

try:  # the version pyproject.toml declares, as installed: no second copy to keep in step
    __version__ = _metadata.version("orizuru_py")
except _metadata.PackageNotFoundError:  # a source tree run without being installed
    __version__ = "0+unknown"

__all__ = [
    "AlreadySettled",
    "AttrsCodec",
    "BytesCodec",
    "Codec",
    "CollectReport",
    "Consumer",
    "ConsumerStats",
    "DeadLetter",
    "DecodeError",
    "EncodeError",
    "Exponential",
    "GarbageCollector",
    "Linear",
    "MessageGuard",
    "MsgpackCodec",
    "NotConfirmed",
    "Observer",
    "OrizuruError",
    "Peeked",
    "Producer",
    "Queue",
    "QueueKeys",
    "QueueStats",
    "RateLimit",
    "RateLimited",
    "Schedule",
    "ScheduleEntry",
    "ScriptsLost",
    "TimeLimitExceeded",
    "Worker",
    "WorkerCrashed",
    "WorkerStats",
]
