"""The deploy function's harness: the real handler, a built artifact, and a stand-in for CloudFormation.

CloudFormation's side of the protocol is a tiny HTTP server on 127.0.0.1 that records every response
PUT to it; its URL replaces the ``ResponseURL`` of the replayed ``events/cfn-*.json``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from deploy import handler

from contract.artifact import copy_package
from pipeline.__main__ import compile_routes
from pipeline.pipeline import render_image_uris, render_template
from tests.support.lambda_context import LambdaContext
from tests.support.project import ROOT

ETL_PACKAGE = ROOT / "etl"
CONTEXT = LambdaContext(function_name="DeployFunction", aws_request_id="5d0c7b1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e")


def build_artifact(directory: Path) -> Path:
    """What `sam build` puts next to the deploy package: pipeline.json, image_uris.json, etl/, routes.json."""
    copy_package(ETL_PACKAGE, directory / "etl")
    (directory / "pipeline.json").write_text(render_template(directory / "etl"), encoding="utf-8")
    (directory / "image_uris.json").write_text(render_image_uris(), encoding="utf-8")
    (directory / "routes.json").write_text(compile_routes(ROOT / "routes.yaml"), encoding="utf-8")
    return directory


@dataclass
class CloudFormation:
    """Records the responses PUT to it; answers with the queued HTTP statuses (then 200)."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    url: str = ""

    def response_url(self, request_id: str) -> str:
        return f"{self.url}/response/{request_id}?X-Amz-Signature=local"


@contextmanager
def cloudformation_server() -> Iterator[CloudFormation]:
    """A CloudFormation stand-in listening on 127.0.0.1 (a free port) while the block runs."""
    cfn = CloudFormation()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = cfn.statuses.pop(0) if cfn.statuses else 200
            if status == 200:
                cfn.responses.append(json.loads(body))
                cfn.headers.append(dict(self.headers.items()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cfn.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield cfn
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Deploy:
    """The real deploy handler wired to the emulator, the artifact and the CloudFormation stand-in."""

    cloudformation: CloudFormation
    load_event: Callable[[str], dict[str, Any]]
    monkeypatch: pytest.MonkeyPatch

    def use_artifact(self, directory: Path) -> None:
        """Point the function at another build artifact (read on the next invocation)."""
        self.monkeypatch.setenv(handler.ARTIFACT_DIR_VARIABLE, str(directory))
        handler.pipeline_resource.cache_clear()
        handler.route_provider.cache_clear()

    def event(self, name: str, **changes: Any) -> dict[str, Any]:
        """events/<name>.json, answering to the local CloudFormation; `Properties=` merges into them."""
        event = self.load_event(name)
        properties = changes.pop("Properties", None)
        event.update(changes)
        if properties:
            event["ResourceProperties"] = {**event["ResourceProperties"], **properties}
        event["ResponseURL"] = self.cloudformation.response_url(event["RequestId"])
        return event

    def call(self, event: dict[str, Any]) -> None:
        """Run the handler, whatever it does."""
        handler.lambda_handler(event, CONTEXT)

    def invoke(self, event: dict[str, Any], *, remaining_ms: int = 300_000) -> dict[str, Any]:
        """Run the handler (with that much time left); return the one response it sent to CloudFormation."""
        sent = len(self.cloudformation.responses)
        handler.lambda_handler(event, replace(CONTEXT, remaining_ms=remaining_ms))
        assert len(self.cloudformation.responses) == sent + 1, "the function must answer exactly once"
        return self.cloudformation.responses[-1]
