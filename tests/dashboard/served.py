"""A dashboard served by uvicorn on a free loopback port, and HTTP calls to it."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any

import uvicorn

from tests.support import wait_for


class Client:
    """HTTP calls to a dashboard at ``url``; ``act`` sends ``csrf`` as the token."""

    def __init__(self, url: str, csrf: str = "") -> None:
        self.url = url
        self.csrf = csrf

    def call(
        self, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """(status, body) of a GET, or of a POST when ``body`` is given; JSON is decoded."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, _decoded(response)
        except urllib.error.HTTPError as exc:
            return exc.code, _decoded(exc)

    def headers_of(self, path: str) -> tuple[int, Any]:
        """(status, response headers) of a GET."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers

    def act(self, path: str, body: Any = None) -> tuple[int, Any]:
        """A POST with the right CSRF token."""
        return self.call(path, body=body or {}, headers={"X-CSRF-Token": self.csrf})


class Served(Client):
    """A dashboard app served on a free loopback port until ``close()``."""

    def __init__(self, app: Any) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        super().__init__(
            f"http://127.0.0.1:{sock.getsockname()[1]}", app.state.dashboard.csrf_token
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]})
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _decoded(response: Any) -> Any:
    text = response.read().decode()
    return json.loads(text) if response.headers["Content-Type"] == "application/json" else text
