"""What the dashboard's API says about a message: JSON, whatever a producer pushed.

A payload is shown as text, pretty-printed and cut at ``MAX_TEXT`` characters, so
a page of 50 stays small however big the messages are. The page puts this text in
the document with ``textContent`` only: it is data, never markup.
"""

from __future__ import annotations

import json
import pprint
from typing import Any

from ..queue import Peeked

MAX_TEXT = 10_000  # characters of one payload sent to the page


def payload_text(m: Peeked) -> str:
    """JSON when the payload is JSON, Python's notation otherwise (bytes, int keys), and
    the stored bytes when they do not decode."""
    if m.error is not None:
        return repr(m.raw[: MAX_TEXT + 1])
    try:
        return json.dumps(m.payload, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return pprint.pformat(m.payload, width=100, sort_dicts=False)


def message_json(m: Peeked) -> dict[str, Any]:
    text = payload_text(m)
    return {
        "id": m.id,
        "attempts": m.attempts,
        "enqueued_ms": m.enqueued_ms,
        "due_ms": m.due_ms,
        "dead_ms": m.dead_ms,
        "reason": m.reason,
        "error": m.error,
        "unique_key": m.unique_key,
        "expires_ms": m.expires_ms,
        "size": len(m.raw),
        "payload": text[:MAX_TEXT],
        "truncated": len(text) > MAX_TEXT,
    }
