"""``orizuru worker``: a Worker around ``module:function``, in this process or, with
``--processes N``, under a supervisor (``..supervisor``). Started before its server is
up, it waits for it, as the Worker itself rides out a server that goes away."""

from __future__ import annotations

import argparse
import signal
import time
from types import FrameType

import redis

from ...checks import DEFAULT_MAX_ATTEMPTS
from ...consumer import DEFAULT_HEARTBEAT_TIMEOUT
from ...limits import RateLimit
from ...worker import DEFAULT_GC_INTERVAL
from ..clients import REFUSED, client, safe
from ..loading import load_codec, load_handler
from ..supervisor import Supervisor, WorkerSpec, run_worker
from .common import (
    CliError,
    Command,
    UsageError,
    codec_arg,
    log,
    non_negative_float,
    port,
    positive_float,
    positive_int,
    queue_name,
    url_of,
)

FIRST_PAUSE = 0.5  # seconds between tries for a server that does not answer, doubling
LONGEST_PAUSE = 10.0


def worker_options(s: argparse.ArgumentParser) -> None:
    s.add_argument("handler", metavar="module:function", help="the function to call")
    s.add_argument(
        "queues",
        nargs="+",
        type=queue_name,
        metavar="QUEUE",
        help="queues to take from; with several, each is taken from only while those "
        "before it are empty",
    )
    s.add_argument(
        "--concurrency",
        type=positive_int,
        default=None,
        help="handlers at once per process: threads, or tasks for an async def handler "
        "(default: 8 threads, 100 tasks)",
    )
    s.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        help="worker processes, for handlers that need more than one core; more than 1 "
        "runs a supervisor that restarts those that die (default: %(default)s)",
    )
    s.add_argument(
        "--metrics-port",
        type=port,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics, extra 'metrics' "
        "(default: no metrics)",
    )
    s.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics listen on; 0.0.0.0 for every interface (default: %(default)s)",
    )
    s.add_argument(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        help="deliveries before a failing message is dead-lettered (default: %(default)s)",
    )
    s.add_argument(
        "--heartbeat-timeout",
        type=positive_float,
        default=DEFAULT_HEARTBEAT_TIMEOUT,
        metavar="SECONDS",
        help="silence after which this worker counts as dead and its messages are "
        "recovered (default: %(default)s)",
    )
    s.add_argument(
        "--gc-interval",
        type=non_negative_float,
        default=DEFAULT_GC_INTERVAL,
        metavar="SECONDS",
        help="seconds between garbage-collector passes inside the worker; 0 disables "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--rate-limit",
        type=rate_limit,
        metavar="N/PER",
        help="at most N handler starts per second (N/s), minute (N/m), hour (N/h) or "
        "SECONDS (N/10s), all workers of the queue together (default: no limit)",
    )
    s.add_argument(
        "--rate-limit-key",
        metavar="module:function",
        help="one limit per value this function gives for a payload (a tenant, say); "
        "with --rate-limit (default: one limit for the whole queue)",
    )
    s.add_argument(
        "--time-limit",
        type=positive_float,
        metavar="SECONDS",
        help="a handler still running after this long is a failed attempt; its thread is "
        "replaced (with --processes: its process), an async handler cancelled "
        "(default: none)",
    )
    s.add_argument(
        "--pass-guard",
        action="store_true",
        help="call the handler with the MessageGuard instead of the payload (default: off)",
    )
    codec_arg(s)


def cmd_worker(args: argparse.Namespace) -> int:
    load_handler(args.handler)  # fails here, in one line, when it does not import
    load_codec(args.codec)
    if args.rate_limit_key is not None:
        if args.rate_limit is None:
            raise UsageError("--rate-limit-key needs --rate-limit")
        load_handler(args.rate_limit_key)
    if args.metrics_port is not None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise CliError(
                "--metrics-port needs prometheus_client: pip install 'orizuru_py[metrics]'"
            ) from None
    url = url_of(args)
    if not wait_for_server(url):
        return 0
    spec = WorkerSpec(
        handler=args.handler,
        queues=tuple(args.queues),
        redis_url=url,
        prefix=args.prefix,
        log_level=args.log_level,
        concurrency=args.concurrency,
        max_attempts=args.max_attempts,
        heartbeat_timeout=args.heartbeat_timeout,
        gc_interval=args.gc_interval or None,
        pass_guard=args.pass_guard,
        codec=args.codec,
        rate_limit=args.rate_limit,
        rate_limit_key=args.rate_limit_key,
        time_limit=args.time_limit,
        metrics_host=args.metrics_host,
    )
    if args.processes == 1:
        return run_here(spec, args.metrics_port)
    return Supervisor(spec, args.processes, args.metrics_port).run()


def rate_limit(text: str) -> str:
    """``--rate-limit``: checked here, parsed again in each worker process."""
    try:
        RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def wait_for_server(url: str) -> bool:
    """Ping ``url`` until it answers, pausing longer after each failure and logging what
    it waits for; False when SIGINT or SIGTERM comes first. A refusal no wait can mend
    (a wrong password, a database the server does not have) raises at once."""
    r = client(url)
    pause, waited = FIRST_PAUSE, False
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            try:
                r.ping()
            except REFUSED:
                raise
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning(
                    "waiting for the server at %s (%s); next try in %.1f s, Ctrl-C stops",
                    safe(url),
                    exc,
                    pause,
                )
                time.sleep(pause)
                pause, waited = min(LONGEST_PAUSE, pause * 2), True
                continue
            if waited:
                log.info("the server at %s answers", safe(url))
            return True
    except KeyboardInterrupt:
        log.info("stopped before the server answered")
        return False
    finally:
        signal.signal(signal.SIGTERM, previous)
        r.close()


def run_here(spec: WorkerSpec, metrics_port: int | None) -> int:
    """One Worker in this process, with ``/metrics`` on ``metrics_port`` if given."""
    r = client(spec.redis_url)
    observer = None
    if metrics_port is not None:
        from prometheus_client import REGISTRY

        from ..metrics import PrometheusObserver, QueueCollector, serve

        observer = PrometheusObserver(spec.queues)
        REGISTRY.register(QueueCollector(r, spec.queues, spec.prefix))
        serve(metrics_port, host=spec.metrics_host)
    run_worker(spec.worker(observer))
    return 0


COMMANDS = (
    Command(
        "worker", "run module:function on every message of the queues", worker_options, cmd_worker
    ),
)
