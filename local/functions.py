"""Run a Lambda function locally, without Docker: one warm execution environment per function.

:class:`FunctionProcess` starts ``python -m local.lambda_host <Handler>`` in the function's code folder
(its ``sam build`` artifact, or its source) with the environment Lambda would give it: the template's
variables, the ``AWS_LAMBDA_*`` runtime variables and the emulator's ``AWS_*`` settings, nothing
else from the caller. The handler module is imported once (the cold start) and then invoked many
times, like a warm container. A timeout kills the environment (the next invocation starts a new one),
as Lambda does. A separate process per function is what lets two configurations of the same code (an
object-mode and a marker-mode trigger) run side by side, each parsing its own config at import.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from local.process import child_environment, kill_tree
from local.template import FunctionSpec

LogSink = Callable[[str, str], None]  # (function logical id, one log line)
INIT_TIMEOUT = 10.0  # Lambda's init phase limit


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation, as Lambda's Invoke API reports it."""

    request_id: str
    payload: Any  # the handler's return value, or Lambda's error object
    error: bool
    duration_ms: float
    init_ms: float | None  # set when this invocation started a new environment

    @property
    def error_message(self) -> str:
        return str(self.payload.get("errorMessage", "")) if self.error else ""

    @property
    def error_type(self) -> str:
        return str(self.payload.get("errorType", "")) if self.error else ""


def _stderr_sink(logical_id: str, line: str) -> None:
    print(line, file=sys.stderr)


class FunctionProcess:
    """One local execution environment of a function; thread-safe, one invocation at a time."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        aws_env: Mapping[str, str],
        code_dir: Path | None = None,
        env_overrides: Mapping[str, str] | None = None,
        on_log: LogSink | None = None,
    ) -> None:
        self.spec = spec
        self.code_dir = (code_dir or spec.code_uri).resolve()
        self._aws_env = dict(aws_env)
        self._env_overrides = dict(env_overrides or {})
        self._on_log = on_log or _stderr_sink
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._readers: list[threading.Thread] = []
        self.log_stream = ""
        self._pending_init_ms: float | None = None  # a warm-up's init, reported by the next invoke

    @property
    def environment(self) -> dict[str, str]:
        """The function's variables as the handler sees them (template + overrides)."""
        return {**self.spec.environment, **self._env_overrides}

    def _process_env(self) -> dict[str, str]:
        spec = self.spec
        region = self._aws_env.get("AWS_REGION") or self._aws_env.get("AWS_DEFAULT_REGION", "us-east-1")
        runtime_env = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.13'}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "PYTHONPATH": str(self.code_dir),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        return child_environment({**self._aws_env, **runtime_env, **self.environment})

    def _start(self) -> float:
        """Start a new environment and run the init phase; the init duration in ms."""
        if not self.code_dir.is_dir():
            raise FileNotFoundError(f"{self.spec.logical_id}: code folder {self.code_dir} does not exist")
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._replies = queue.Queue()
        proc = subprocess.Popen(
            [sys.executable, "-m", "local.lambda_host", self.spec.handler],
            cwd=self.code_dir,
            env=self._process_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._proc = proc
        self._readers = [
            threading.Thread(target=self._read_replies, args=(proc.stdout,), daemon=True),
            threading.Thread(target=self._read_log, args=(proc.stderr,), daemon=True),
        ]
        for thread in self._readers:
            thread.start()
        started = time.perf_counter()
        reply = self._next_reply(INIT_TIMEOUT)
        init_ms = (time.perf_counter() - started) * 1000
        if reply is None or reply.get("type") != "ready":
            self._stop_process()
            raise FunctionInitError(
                self._init_failure(reply, init_ms),
            )
        return init_ms

    def _init_failure(self, reply: dict[str, Any] | None, init_ms: float) -> dict[str, Any]:
        if reply is not None and reply.get("type") == "init_error":
            error: dict[str, Any] = reply["error"]
            return error
        if reply is None and init_ms >= INIT_TIMEOUT * 1000:
            return {
                "errorMessage": f"Init phase timed out after {INIT_TIMEOUT:.0f} seconds",
                "errorType": "Runtime.InitTimeout",
            }
        return {"errorMessage": "Runtime exited during init", "errorType": "Runtime.ExitError"}

    def _read_replies(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                self._replies.put(json.loads(line))
            except json.JSONDecodeError:
                self._on_log(self.spec.logical_id, line.rstrip("\n"))
        self._replies.put(None)

    def _read_log(self, stream: IO[str]) -> None:
        for line in stream:
            self._on_log(self.spec.logical_id, line.rstrip("\n"))

    def _next_reply(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            return None

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):  # the process is gone already
                proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        kill_tree(proc)
        for thread in self._readers:
            thread.join(timeout=5)
        self._readers = []

    def warm(self) -> None:
        """Start the execution environment now if none is running (an init failure shows on invoke)."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop_process()
                try:
                    self._pending_init_ms = self._start()
                except FunctionInitError:
                    self._pending_init_ms = None

    def invoke(
        self, event: Any, *, timeout: float | None = None, request_id: str | None = None
    ) -> Invocation:
        """Invoke the handler with ``event``; a timeout or a crash resets the environment.

        ``request_id``: Lambda keeps an asynchronous event's request ID across its retries.
        """
        limit = float(timeout if timeout is not None else self.spec.timeout)
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            init_ms, self._pending_init_ms = self._pending_init_ms, None
            if self._proc is None or self._proc.poll() is not None:
                self._stop_process()
                try:
                    init_ms = self._start()
                except FunctionInitError as exc:
                    return Invocation(request_id, {**exc.payload, "requestId": request_id}, True, 0.0, None)
            proc = self._proc
            assert proc is not None
            assert proc.stdin is not None
            request = {
                "request_id": request_id,
                "event": event,
                "deadline_ms": int((time.time() + limit) * 1000),
                "function": {
                    "name": self.spec.name,
                    "arn": self.spec.arn,
                    "memory_size": self.spec.memory_size,
                    "log_group": f"/aws/lambda/{self.spec.name}",
                    "log_stream": self.log_stream,
                },
            }
            started = time.perf_counter()
            try:
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError:
                pass  # the reply wait below reports the dead process
            reply = self._next_reply(limit)
            duration_ms = (time.perf_counter() - started) * 1000
            if reply is None:
                timed_out = duration_ms >= limit * 1000
                self._stop_process()
                message = (
                    f"RequestId: {request_id} Error: Task timed out after {limit:.2f} seconds"
                    if timed_out
                    else f"RequestId: {request_id} Error: Runtime exited with error: exit status {proc.returncode}"  # noqa: E501
                )
                error = {
                    "errorMessage": message,
                    "errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError",
                }
                return Invocation(request_id, error, True, duration_ms, init_ms)
            if reply["type"] == "result":
                return Invocation(request_id, json.loads(reply["body"]), False, reply["duration_ms"], init_ms)
            return Invocation(request_id, reply["error"], True, reply["duration_ms"], init_ms)

    def close(self) -> None:
        with self._lock:
            self._stop_process()

    def __enter__(self) -> FunctionProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FunctionInitError(Exception):
    """The function's init phase failed (import error, crash or timeout)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("errorMessage", "init failed"))
        self.payload = payload


__all__ = ["FunctionInitError", "FunctionProcess", "Invocation", "LogSink"]
