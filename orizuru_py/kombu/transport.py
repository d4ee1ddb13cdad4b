"""The kombu transport: kombu's Redis transport with orizuru's queues under it.

The event loop (Celery's hub, or ``drain_events``) polls each channel's taker pipe
as kombu's Redis transport polls its BRPOP socket, and the pub/sub socket of fanout
exchanges as that transport does.
"""

from __future__ import annotations

import contextlib
from ssl import CERT_REQUIRED
from typing import Any

from kombu.transport import redis as kombu_redis

from .channel import Channel

TAKE = "TAKE"


class Poller(kombu_redis.MultiChannelPoller):  # type: ignore[misc]
    """kombu's Redis poller, with each channel's taker pipe where its BRPOP was."""

    eager = False  # set under an event loop: take while there is room

    def _register_BRPOP(self, channel: Channel) -> None:
        channel.taker.want(self.eager)
        fd = channel.taker.fd
        if fd not in self._fd_to_chan:
            self._fd_to_chan[fd] = (channel, TAKE)
            self.poller.register(fd, self.eventflags)

    def on_readable(self, fileno: int) -> Any:
        found = self._fd_to_chan.get(fileno)
        if found is not None and found[1] == TAKE:
            # Deliver even past the prefetch count: the taker took within it, and an
            # undelivered message would keep the pipe readable and spin the loop.
            return found[0].deliver_taken()
        return super().on_readable(fileno)

    def discard(self, channel: Channel) -> None:
        super().discard(channel)
        self._forget(lambda chan: chan is channel)

    def close(self) -> None:
        self._forget(lambda chan: True)
        super().close()

    def _forget(self, which: Any) -> None:
        for fd, (chan, kind) in list(self._fd_to_chan.items()):
            if kind == TAKE and which(chan):
                del self._fd_to_chan[fd]
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._unregister_from_poll(fd)


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """``orizuru://`` (``orizurus://`` over TLS): Celery and kombu on orizuru's queues.
    ``driver_type`` stays "redis", so Celery treats it as Redis where it matters
    (events over pub/sub, mingle, gossip)."""

    Channel = Channel
    driver_name = "orizuru_py"
    implements = kombu_redis.Transport.implements.extend(batch_publish=False)

    def __init__(self, client: Any, *args: Any, **kwargs: Any) -> None:
        if client.transport_cls == "orizurus" and not client.ssl:
            client.ssl = {"ssl_cert_reqs": CERT_REQUIRED}
        super().__init__(client, *args, **kwargs)
        self.cycle = Poller()

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        self.cycle.eager = True
        super().register_with_event_loop(connection, loop)

    @property
    def supports_batch_publish(self) -> bool:
        return False
