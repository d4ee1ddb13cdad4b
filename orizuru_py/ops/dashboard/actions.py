"""What the dashboard's actions do: each takes a queue and the request's JSON body and
returns the JSON to answer; a refusal is an ``HTTPException`` (400 bad body, 404 gone)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

from ...queue import Queue


def _id(body: dict[str, Any]) -> str:
    message_id = body.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise HTTPException(400, 'the body needs "id": a message id')
    return message_id


def _found(done: bool, what: str) -> None:
    if not done:
        raise HTTPException(404, f"{what} is no longer there (moved or settled meanwhile)")


def _pause(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    q.pause()
    return {"paused": True}


def _resume(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    q.resume()
    return {"paused": False}


def _requeue(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    """Every dead letter back to the queue, or only the one ``id`` names."""
    if "id" not in body:
        revived = q.requeue_dead()
        return {"requeued": int(revived), "garbage": revived.garbage}
    message_id = _id(body)
    _found(q.requeue_one(message_id), f"dead letter {message_id}")
    return {"requeued": 1, "garbage": 0}


def _delete(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    message_id, where = _id(body), body.get("where", "waiting")
    if not isinstance(where, str):
        raise HTTPException(400, '"where" must be a string')
    _found(q.delete(message_id, where), f"message {message_id} ({where})")
    return {"deleted": 1}


def _cancel(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    """True: it will never be delivered; False: a handler has it (its guard is told)."""
    return {"cancelled": q.cancel(_id(body))}


def _purge(q: Queue, body: dict[str, Any]) -> dict[str, Any]:
    """Needs ``"confirm": NAME``, so no request purges a queue by accident."""
    if body.get("confirm") != q.name:
        raise HTTPException(400, f'to purge, send "confirm": {json.dumps(q.name)}')
    return {"purged": q.purge(dead=bool(body.get("dead", False)))}


ACTIONS: dict[str, Callable[[Queue, dict[str, Any]], dict[str, Any]]] = {
    "pause": _pause,
    "resume": _resume,
    "requeue": _requeue,
    "delete": _delete,
    "cancel": _cancel,
    "purge": _purge,
}
