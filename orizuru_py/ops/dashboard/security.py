"""Who may see the dashboard and who may act through it.

Anyone who can push to a queue decides what the page renders, and a browser that can
reach the dashboard can be made to send it requests by any site it visits. So: an
optional password (HTTP basic auth), a CSRF token on every action, no actions at all
in read-only mode, a Host check against DNS rebinding wherever it is bound, and a
Content-Security-Policy that lets no inline script run should escaping ever fail.

The Host check is what stops a rebinding page: its requests carry its own name, so
only the names the operator expects are answered: the loopback names, the bound
address, and those given with ``--allowed-host``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import re
from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_HEADER = "X-CSRF-Token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # bound to every interface: no name to match
# host, or [IPv6], then an optional port; nothing else (no userinfo, no trailing junk)
_HOST = re.compile(r"(?:\[(?P<ip6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::[0-9]{1,5})?")
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def exposure_refusal(host: str, read_only: bool, password: str | None) -> str | None:
    """Why a dashboard must not start: bound beyond loopback, able to act, no password."""
    if is_loopback(host) or read_only or password:
        return None
    return (
        f"refusing to bind {host} with actions on and no password: anyone who can reach "
        "it could purge queues; add --read-only, or set ORIZURU_DASHBOARD_PASSWORD"
    )


def host_name(header: str) -> str | None:
    """The host of a Host header, lower-case ("[::1]:9181" -> "::1"); None when the
    header is not a host and an optional port ("[::1].evil.example" is not)."""
    match = _HOST.fullmatch(header.strip().lower())
    if match is None:
        return None
    if match["ip6"] is None:
        return str(match["name"]).rstrip(".")
    try:
        return str(ipaddress.IPv6Address(match["ip6"]))
    except ValueError:
        return None


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names a dashboard bound to ``bound`` answers: loopback, ``bound`` unless
    it is a wildcard, and ``extra``. Raises ``ValueError`` for an entry that is no host."""
    names = set(LOOPBACK_NAMES)
    for entry in [bound, *extra]:
        if entry in WILDCARDS:
            continue
        name = host_name(f"[{entry}]" if ":" in entry and "[" not in entry else entry)
        if name is None:
            raise ValueError(f"{entry!r} is not a host name or address")
        names.add(name)
    return frozenset(names)


def _password_of(header: str) -> bytes | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b":")[2]


class SecurityHeaders:
    """Adds ``HEADERS`` to every response, the app's errors (500s) included: it wraps
    the whole app, outside Starlette's own error middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Gate(BaseHTTPMiddleware):
    """Checks every request before the app sees it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        csrf_token: str,
        read_only: bool,
        password: str | None,
        hosts: frozenset[str],
    ) -> None:
        super().__init__(app)
        self.csrf_token = csrf_token.encode()
        self.read_only = read_only
        self.password = password.encode() if password else None
        self.hosts = hosts

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return self.refusal(request) or await call_next(request)

    def refusal(self, request: Request) -> Response | None:
        """The response that refuses ``request``, or None to let it through."""
        headers = request.headers
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return _error(
                400,
                f"Host {headers.get('host', '')[:100]!r} is not one this dashboard answers "
                f"({', '.join(sorted(self.hosts))}): name it with --allowed-host",
            )
        if self.password is not None:
            given = _password_of(headers.get("authorization", ""))
            if given is None or not hmac.compare_digest(given, self.password):
                response = _error(401, "a password is needed (HTTP basic auth, any user name)")
                response.headers["WWW-Authenticate"] = 'Basic realm="orizuru", charset="UTF-8"'
                return response
        if request.method in SAFE_METHODS:
            return None
        if self.read_only:
            return _error(403, "the dashboard is read-only")
        token = headers.get(CSRF_HEADER, "").encode()
        if not hmac.compare_digest(token, self.csrf_token):
            return _error(403, f"missing or wrong {CSRF_HEADER} header (GET /api/csrf)")
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
