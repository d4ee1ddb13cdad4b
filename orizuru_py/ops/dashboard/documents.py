"""What the dashboard's API says about a message: JSON, whatever a producer pushed.

Only the first ``PREVIEW_BYTES`` of a payload are read; a payload read whole is shown
as text, pretty-printed and cut at ``MAX_TEXT`` characters, so a page of 50 stays small
however big the messages are. Each message is formatted on its own: one that cannot
be shown (nested too deep) says so, and the rest of the page is unharmed. The page
puts this text in the document with ``textContent`` only: it is data, never markup.
"""

from __future__ import annotations

import json
import pprint
from typing import Any

from ...peeking import Peeked
from ..views import payload_text

PREVIEW_BYTES = 8192  # of each payload read for a page
MAX_TEXT = 10_000  # characters of one payload sent to the page


def _render(payload: Any) -> str:
    """JSON when the payload is JSON, Python's notation otherwise (bytes, int keys)."""
    try:
        return json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return pprint.pformat(payload, width=100, sort_dicts=False)


def _note(m: Peeked, text: str) -> str | None:
    """What the page should say about a payload it shows only in part."""
    if m.truncated:
        return (
            f"the first {len(m.head):,} of {m.size:,} bytes, as stored (a part does not "
            "decode): orizuru peek --full shows it whole"
        )
    if len(text) > MAX_TEXT:
        return f"the first {MAX_TEXT:,} characters of a {m.size:,}-byte message"
    return None


def message_json(m: Peeked) -> dict[str, Any]:
    text = payload_text(m, _render)
    note = _note(m, text)
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
        "size": m.size,
        "payload": text[:MAX_TEXT],
        "truncated": note is not None,
        "note": note,
    }
