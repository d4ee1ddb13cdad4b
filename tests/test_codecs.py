"""Codecs: msgpack by default, bytes and attrs classes through a codec, never pickle."""

from __future__ import annotations

import ast
import datetime
import decimal
from importlib import resources
from typing import Any

import attrs
import pytest

from orizuru_py import AttrsCodec, BytesCodec, Codec, EncodeError, MsgpackCodec


@attrs.frozen
class Email:
    to: str
    attempts: int
    body: bytes


class NotAttrs:
    pass


@pytest.mark.parametrize(
    "payload",
    [
        {"to": "a@example.com", "n": 1, "nested": {"list": [1, 2.5, None, True]}},
        [1, "two", [3], {"four": 4}],
        b"\x00\xffraw bytes",
        "text",
        -(2**63),
        2**64 - 1,
        None,
        {1: "int keys"},
    ],
)
def test_msgpack_codec_round_trips_plain_values(payload: Any) -> None:
    codec = MsgpackCodec()
    assert codec.decode(codec.encode(payload)) == payload


def test_msgpack_codec_returns_tuples_as_lists() -> None:
    codec = MsgpackCodec()
    assert codec.decode(codec.encode((1, (2, 3)))) == [1, [2, 3]]


def test_msgpack_codec_keeps_bytes_and_str_apart() -> None:
    codec = MsgpackCodec()
    decoded = codec.decode(codec.encode([b"abc", "abc"]))
    assert [type(v) for v in decoded] == [bytes, str]


@pytest.mark.parametrize(
    ("payload", "type_name"),
    [
        (NotAttrs(), "NotAttrs"),
        (object(), "object"),
        ({1, 2}, "set"),
        (datetime.datetime(2024, 1, 1), "datetime"),
        (decimal.Decimal("1.5"), "Decimal"),
        (2**64, "int"),
        ({"nested": NotAttrs()}, "dict"),
    ],
)
def test_msgpack_codec_raises_encode_error_naming_the_type(payload: Any, type_name: str) -> None:
    with pytest.raises(EncodeError, match=rf"\b{type_name}\b"):
        MsgpackCodec().encode(payload)


def test_encode_error_is_both_a_value_error_and_a_type_error() -> None:
    with pytest.raises(EncodeError) as info:
        MsgpackCodec().encode(NotAttrs())
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("payload", [b"abc", bytearray(b"abc"), memoryview(b"abc")])
def test_bytes_codec_passes_bytes_through_unchanged(payload: Any) -> None:
    codec = BytesCodec()
    data = codec.encode(payload)
    assert data == b"abc"
    assert type(data) is bytes
    assert codec.decode(data) == b"abc"


@pytest.mark.parametrize(("payload", "type_name"), [("abc", "str"), (1, "int"), ([b"a"], "list")])
def test_bytes_codec_rejects_what_is_not_bytes(payload: Any, type_name: str) -> None:
    with pytest.raises(EncodeError, match=rf"\b{type_name}\b"):
        BytesCodec().encode(payload)


def test_attrs_codec_round_trips_an_instance() -> None:
    codec = AttrsCodec(Email)
    original = Email("a@example.com", 3, b"\x00body")
    assert codec.decode(codec.encode(original)) == original


def test_attrs_codec_rejects_an_instance_of_another_type() -> None:
    with pytest.raises(EncodeError, match=r"AttrsCodec\(Email\) got a NotAttrs"):
        AttrsCodec(Email).encode(NotAttrs())


def test_attrs_codec_needs_an_attrs_class() -> None:
    with pytest.raises(ValueError, match="attrs class"):
        AttrsCodec(NotAttrs)


@pytest.mark.parametrize("codec", [MsgpackCodec(), BytesCodec(), AttrsCodec(Email)])
def test_shipped_codecs_satisfy_the_codec_protocol(codec: Any) -> None:
    assert isinstance(codec, Codec)


def _top_level_imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_the_package_imports_pickle() -> None:
    sources = [p for p in resources.files("orizuru_py").iterdir() if p.name.endswith(".py")]
    imported = set().union(*(_top_level_imports(p.read_text(encoding="utf-8")) for p in sources))
    assert "msgpack" in imported  # the scan sees the package's real imports
    assert not imported & {"pickle", "_pickle", "cloudpickle", "dill", "marshal", "shelve"}
