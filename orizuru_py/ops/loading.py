"""What the command line loads by path: a handler (``module:function``) and a codec
(``module:codec``). Whatever goes wrong, a missing module, a module that raises as it
is imported (a syntax error, a missing environment variable), a missing attribute, is
a ``ValueError`` of one line that names the module and the error."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from ..codecs import Codec


def load_object(path: str, what: str) -> Any:
    """``package.module:attribute`` to the object, with an error that says what is wrong."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{what} must look like module:{what}, got {path!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from exc
    except (Exception, SystemExit) as exc:  # its code raised, or called sys.exit()
        raise ValueError(f"cannot import {module_name!r}: {_raised(exc)}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _raised(exc: BaseException) -> str:
    """``Type: message (file, line N)`` on one line: where the module's own top-level
    code raised (a SyntaxError's message already says where)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.name == "<module>"]
    if frames and not isinstance(exc, SyntaxError):
        text += f" ({frames[-1].filename}, line {frames[-1].lineno})"
    return text


def load_handler(path: str) -> Callable[..., Any]:
    handler = load_object(path, "function")
    if not callable(handler):
        raise ValueError(f"{path!r} is {_a(type(handler).__name__)}, not a function")
    return handler  # type: ignore[no-any-return]


def _a(noun: str) -> str:
    """``noun`` with its article: "an int", "a str"."""
    return f"an {noun}" if noun[:1].lower() in "aeio" else f"a {noun}"


def load_codec(path: str | None) -> Codec | None:
    """A codec by path: an instance, or a class built with no arguments."""
    if path is None:
        return None
    codec = load_object(path, "codec")
    if isinstance(codec, type):
        codec = codec()
    if not isinstance(codec, Codec):
        raise ValueError(f"{path!r} is not a codec (it needs encode and decode methods)")
    return codec
