"""The inside of a local Lambda execution environment: ``python -m local.lambda_host module.function``.

Started by :class:`local.functions.FunctionProcess` with the function's environment and its code
folder as working directory and first ``sys.path`` entry (as ``/var/task`` is on Lambda). It imports
the handler once (the init phase), then serves invocations one at a time, as one warm Lambda
container does: a JSON request per line on stdin, a JSON reply per line on the original stdout. The
handler's own stdout and stderr (Powertools' JSON log lines, prints) go to stderr, which the parent
reads as the function's log. Standard library only: it runs next to whatever the artifact ships.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO


class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    def __init__(self, request: dict[str, Any]) -> None:
        function: dict[str, Any] = request["function"]
        self.aws_request_id: str = request["request_id"]
        self.function_name: str = function["name"]
        self.function_version: str = function.get("version", "$LATEST")
        self.invoked_function_arn: str = function["arn"]
        self.memory_limit_in_mb: int = int(function["memory_size"])
        self.log_group_name: str = function["log_group"]
        self.log_stream_name: str = function["log_stream"]
        self.identity = None
        self.client_context = None
        self._deadline_ms: int = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, request_id: str | None = None) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns for an exception."""
    payload: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }
    if request_id:
        payload["requestId"] = request_id
    return payload


def _log_error(payload: dict[str, Any]) -> None:
    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr)
    for line in payload["stackTrace"]:
        print(line.rstrip("\n"), file=sys.stderr)


def _load(handler: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    return function  # type: ignore[no-any-return]


def _reply(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m local.lambda_host module.function", file=sys.stderr)
        return 2
    # Keep the original stdout for replies; everything the handler prints goes to the log (stderr).
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    started = time.perf_counter()
    try:
        handler = _load(argv[0])
    except Exception as exc:  # noqa: BLE001 - any import failure is the function's init error
        payload = _error(exc)
        payload["errorType"] = f"Runtime.ImportModuleError: {payload['errorType']}"
        _log_error(payload)
        _reply(channel, {"type": "init_error", "error": payload})
        return 1
    _reply(channel, {"type": "ready", "init_ms": (time.perf_counter() - started) * 1000})

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request)
        started = time.perf_counter()
        reply: dict[str, Any]
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - the runtime reports every handler exception
            payload = _error(exc, context.aws_request_id)
            _log_error(payload)
            reply = {"type": "error", "error": payload}
        else:
            try:
                reply = {"type": "result", "body": json.dumps(result)}  # what Lambda does with it
            except (TypeError, ValueError) as exc:
                payload = {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": context.aws_request_id,
                    "stackTrace": [],
                }
                _log_error(payload)
                reply = {"type": "error", "error": payload}
        reply["duration_ms"] = (time.perf_counter() - started) * 1000
        _reply(channel, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
