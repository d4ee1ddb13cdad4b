"""orizuru_py: a reliable (at-least-once) message queue on Redis lists."""

from .backoff import Exponential, Linear
from .codecs import AttrsCodec, BytesCodec, Codec, MsgpackCodec
from .collector import CollectReport, GarbageCollector
from .consumer import Consumer
from .deadletter import DeadLetter
from .errors import AlreadySettled, DecodeError, EncodeError, OrizuruError
from .guard import MessageGuard
from .keys import QueueKeys
from .producer import Producer
from .worker import Worker

__all__ = [
    "AlreadySettled",
    "AttrsCodec",
    "BytesCodec",
    "Codec",
    "CollectReport",
    "Consumer",
    "DeadLetter",
    "DecodeError",
    "EncodeError",
    "Exponential",
    "GarbageCollector",
    "Linear",
    "MessageGuard",
    "MsgpackCodec",
    "OrizuruError",
    "Producer",
    "QueueKeys",
    "Worker",
]
