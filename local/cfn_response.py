"""A local stand-in for CloudFormation's pre-signed ``ResponseURL``: collects custom resource responses.

A small HTTP server on ``127.0.0.1`` accepts the ``PUT`` a custom resource handler sends and hands the
JSON body to whoever waits for that request.
"""

from __future__ import annotations

import json
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ResponseServer:
    """``url()`` gives a fresh response URL; ``wait(url, timeout)`` returns the body PUT to it."""

    def __init__(self) -> None:
        self._responses: dict[str, Any] = {}
        self._arrived = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = {"Status": "INVALID", "Reason": f"response body is not JSON: {raw[:200]!r}"}
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with server._arrived:
                    server._responses[self.path] = body
                    server._arrived.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def start(self) -> ResponseServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="cfn-response", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ResponseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/cloudformation-response/{uuid.uuid4()}"

    def wait(self, url: str, timeout: float) -> dict[str, Any] | None:
        """The response PUT to ``url``, or None when none came within ``timeout`` seconds."""
        path = "/" + url.split("/", 3)[3]
        with self._arrived:
            self._arrived.wait_for(lambda: path in self._responses, timeout=timeout)
            body = self._responses.pop(path, None)
        return body if body is None else dict(body)


__all__ = ["ResponseServer"]
