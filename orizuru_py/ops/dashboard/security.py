"""Who may see the dashboard and who may act through it.

Anyone who can push to a queue decides what the page renders, and a browser that can
reach the dashboard can be made to send it requests by any site it visits. So: an
optional password (HTTP basic auth), a CSRF token on every action, no actions at all
in read-only mode, a Host check against DNS rebinding while bound to loopback, and a
Content-Security-Policy that lets no inline script run should escaping ever fail.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

CSRF_HEADER = "X-CSRF-Token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
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


def exposure_warning(host: str, read_only: bool, password: str | None) -> str | None:
    """What to warn about when a dashboard that can act is reachable from the network."""
    if is_loopback(host) or read_only or password:
        return None
    return (
        f"the dashboard is bound to {host} with actions and no password: anyone who can "
        "reach it can purge queues. Use --read-only, or set ORIZURU_DASHBOARD_PASSWORD"
    )


def _hostname(header: str) -> str:
    """The host part of a Host header ("[::1]:9181" -> "::1")."""
    if header.startswith("["):
        return header[1 : header.find("]")]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _password_of(header: str) -> bytes | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded.partition(b":")[2]


class Gate(BaseHTTPMiddleware):
    """Checks every request before the app sees it; adds the security headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        csrf_token: str,
        read_only: bool,
        password: str | None,
        hosts: frozenset[str] | None,
    ) -> None:
        super().__init__(app)
        self.csrf_token = csrf_token.encode()
        self.read_only = read_only
        self.password = password.encode() if password else None
        self.hosts = hosts

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        refused = self.refusal(request)
        response = refused or await call_next(request)
        response.headers.update(HEADERS)
        return response

    def refusal(self, request: Request) -> Response | None:
        """The response that refuses ``request``, or None to let it through."""
        headers = request.headers
        host = _hostname(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return _error(
                400,
                f"Host {host!r} is not a loopback name: bound to loopback, the dashboard "
                "answers only localhost, 127.0.0.1 and [::1] (a reverse proxy must send one)",
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
