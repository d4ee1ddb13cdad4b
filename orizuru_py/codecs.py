"""How payloads become bytes: the ``Codec`` protocol and the codecs we ship.

Never pickle: a queue anyone can write to must not execute what it reads.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import attrs
import msgpack

from .errors import EncodeError

T = TypeVar("T")


@runtime_checkable
class Codec(Protocol):
    """Turns a payload into bytes and back. ``encode`` raises ``EncodeError`` on bad input."""

    def encode(self, payload: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class MsgpackCodec:
    """The default: any msgpack-encodable value (tuples come back as lists)."""

    def __init__(self) -> None:
        # One Packer, not one per call (a third of the cost). Safe between threads: it
        # packs in C without releasing the GIL and resets its buffer after an error.
        self._pack = msgpack.Packer(use_bin_type=True).pack

    def encode(self, payload: Any) -> bytes:
        try:
            return self._pack(payload)  # type: ignore[no-any-return]
        except (TypeError, ValueError, OverflowError) as exc:
            raise EncodeError(
                f"payload of type {type(payload).__name__} cannot be encoded with msgpack: {exc}"
            ) from exc

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)


class BytesCodec:
    """Bytes in, the same bytes out: for payloads the application encodes itself."""

    def encode(self, payload: Any) -> bytes:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise EncodeError(f"BytesCodec takes bytes, got {type(payload).__name__}")
        return bytes(payload)

    def decode(self, data: bytes) -> bytes:
        return data


class AttrsCodec(Generic[T]):
    """Instances of one ``attrs`` class, as msgpack maps of their fields."""

    def __init__(self, cls: type[T]) -> None:
        self.cls: type[T] = cls
        if not attrs.has(cls):
            raise ValueError(f"AttrsCodec needs an attrs class, got {cls!r}")
        self._inner = MsgpackCodec()

    def encode(self, payload: Any) -> bytes:
        if not isinstance(payload, self.cls):
            raise EncodeError(f"AttrsCodec({self.cls.__name__}) got a {type(payload).__name__}")
        return self._inner.encode(attrs.asdict(payload, recurse=False))  # type: ignore[arg-type]

    def decode(self, data: bytes) -> T:
        fields = self._inner.decode(data)
        if not isinstance(fields, dict):
            raise ValueError(f"expected a map of {self.cls.__name__} fields")
        return self.cls(**fields)
