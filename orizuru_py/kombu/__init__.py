"""Celery and kombu on orizuru_py's reliable queues (extra ``celery``).

Importing this module registers the kombu transport aliases ``orizuru`` and
``orizurus`` (TLS), so ``orizuru://host:6379/0`` works as a broker URL, failover
alternates (``Connection.switch``) included::

    import orizuru_py.kombu
    app = Celery("tasks", broker="orizuru://127.0.0.1:6379/0")

or, without the import: ``broker_transport="orizuru_py.kombu:Transport"``.
"""

from kombu.transport import TRANSPORT_ALIASES

from .channel import Channel as Channel
from .channel import QoS
from .taker import Options
from .transport import Transport

TRANSPORT_ALIASES["orizuru"] = "orizuru_py.kombu:Transport"
TRANSPORT_ALIASES["orizurus"] = "orizuru_py.kombu:Transport"

__all__ = ["Channel", "Options", "QoS", "Transport"]
