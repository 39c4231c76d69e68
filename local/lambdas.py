"""A Lambda function run locally, without Docker: one warm execution environment per process.

:class:`FunctionProcess` runs ``python -m local.lambdas <Handler>`` in the function's code folder with the
environment Lambda would give it (docs/local-runtime.md, "Functions"). The ``__main__`` part is the inside
of the environment: a JSON request or reply a line over a socket pair, the handler's output on
stdout/stderr as its log; standard library only. Nothing provides a Docker-free Lambda runtime here (the
runtime interface emulator is not installable): this is the small part of it the functions need.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from local import STATE_DIR

LogSink = Callable[[str, str], None]  # (function logical id, one log line)
INIT_TIMEOUT = 10.0  # Lambda's init phase limit
# Passed through from the caller; everything else a child gets is set explicitly (a Lambda function or
# a processing container starts from a clean environment too).
_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """A clean environment for a child process: PATH/HOME/locale, a bytecode cache, then ``extra``
    (with PYTHONDONTWRITEBYTECODE and an uncompiled venv, each child would compile pandas/boto3 again)."""
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ} | {"PYTHONUNBUFFERED": "1"}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        spec = importlib.util.find_spec("botocore")
        compiled = spec is not None and spec.origin and Path(importlib.util.cache_from_source(spec.origin))
        if compiled and compiled.exists():
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env["PYTHONPYCACHEPREFIX"] = str(STATE_DIR / "pycache")
    return {**env, **extra}


def kill_tree(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Kill a child started with ``start_new_session=True`` and everything it started; reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@dataclass(frozen=True)
class FunctionSpec:
    """Everything needed to run one function as Lambda would."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_uri: Path
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    log_group: str = ""  # LoggingConfig.LogGroup; empty: Lambda's default, /aws/lambda/<name>

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation, as Lambda's Invoke API reports it."""

    request_id: str
    payload: Any  # the handler's return value, or Lambda's error object
    error: bool
    duration_ms: float
    init_ms: float | None  # set when this invocation started a new environment


@dataclass
class LogWriter:
    """Log lines into the emulator's CloudWatch Logs (PutLogEvents), batched every ``interval`` s."""

    logs: Any  # a boto3 CloudWatch Logs client
    interval: float = 0.5
    _pending: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _created: set[tuple[str, str]] = field(default_factory=set)  # the streams made (and their groups)

    def add(self, group: str, stream: str, line: str) -> None:
        with self._lock:
            self._pending.setdefault((group, stream), []).append(
                {"timestamp": int(time.time() * 1000), "message": line}
            )

    def flush(self) -> None:
        # Imported here: the function's own process runs this module too, and its cold start is measured.
        from botocore.exceptions import BotoCoreError, ClientError

        with self._lock:
            pending, self._pending = self._pending, {}
        exists = self.logs.exceptions.ResourceAlreadyExistsException
        for (group, stream), events in pending.items():
            try:
                if (group, stream) not in self._created:
                    with contextlib.suppress(exists):
                        self.logs.create_log_group(logGroupName=group)
                    with contextlib.suppress(exists):
                        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
                    self._created.add((group, stream))
                self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except (ClientError, BotoCoreError) as exc:  # said, and the writer goes on with the next batch
                print(f"{len(events)} log line(s) not written to {group}: {exc}", file=sys.stderr)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def start(self) -> LogWriter:
        self._thread = threading.Thread(target=self._loop, name="log-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()


def _stderr_sink(logical_id: str, line: str) -> None:
    print(line, file=sys.stderr)


class FunctionProcess:
    """One local execution environment of a function; thread-safe, one invocation at a time. A timeout or
    a crash kills it, and the next invocation starts a new one, as Lambda resets an environment."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        aws_env: Mapping[str, str],
        code_dir: Path | None = None,
        env_overrides: Mapping[str, str] | None = None,
        on_log: LogSink | None = None,
        logs: LogWriter | None = None,
    ) -> None:
        self.spec, self.code_dir = spec, (code_dir or spec.code_uri).resolve()
        self._aws_env, self._env_overrides = dict(aws_env), dict(env_overrides or {})
        self._on_log, self._logs = on_log or _stderr_sink, logs
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._channel: socket.socket | None = None
        self._replies: IO[str] | None = None
        self._reader: threading.Thread | None = None
        self.log_stream = ""

    def _ensure(self) -> tuple[float | None, dict[str, Any] | None]:
        """A running environment, started now (init phase included) if none is: (init ms if started now,
        Lambda's error object if the init failed)."""
        if self._proc is not None and self._proc.poll() is None:
            return None, None
        self._stop_process()
        spec = self.spec
        if not self.code_dir.is_dir():
            raise FileNotFoundError(f"{spec.logical_id}: code folder {self.code_dir} does not exist")
        self.log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        region = self._aws_env.get("AWS_REGION") or self._aws_env.get("AWS_DEFAULT_REGION", "us-east-1")
        runtime_env = {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.13'}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "PYTHONPATH": str(self.code_dir),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
        parent, child = socket.socketpair()
        with child:
            self._proc = proc = subprocess.Popen(
                [sys.executable, "-m", "local.lambdas", spec.handler, spec.arn, str(child.fileno())],
                cwd=self.code_dir,
                env=child_environment(
                    {**self._aws_env, **runtime_env, **spec.environment, **self._env_overrides}
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
                pass_fds=(child.fileno(),),
            )
        self._channel, self._replies = parent, parent.makefile("r", encoding="utf-8")
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()
        started = time.perf_counter()
        reply = self._next_reply(INIT_TIMEOUT)
        init_ms = (time.perf_counter() - started) * 1000
        if reply is not None and reply.get("type") == "ready":
            return init_ms, None
        self._stop_process()
        if reply is not None and reply.get("type") == "init_error":
            return None, dict(reply["error"])
        if reply is None and init_ms >= INIT_TIMEOUT * 1000:
            return None, {
                "errorMessage": f"Init phase timed out after {INIT_TIMEOUT:.0f} seconds",
                "errorType": "Runtime.InitTimeout",
            }
        return None, {"errorMessage": "Runtime exited during init", "errorType": "Runtime.ExitError"}

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._on_log(self.spec.logical_id, line.rstrip("\n"))
            if self._logs is not None:
                self._logs.add(self.spec.log_group_name, self.log_stream, line.rstrip("\n"))

    def _next_reply(self, timeout: float) -> dict[str, Any] | None:
        """The environment's reply; None when it gave none within ``timeout`` seconds or exited."""
        assert self._channel is not None
        assert self._replies is not None
        self._channel.settimeout(timeout)
        try:
            line = self._replies.readline()
        except OSError:  # the timeout; the socket is not read again: the environment is replaced
            return None
        return dict(json.loads(line)) if line else None

    def _stop_process(self) -> None:
        proc, channel, replies = self._proc, self._channel, self._replies
        self._proc = self._channel = self._replies = None
        if proc is None or channel is None or replies is None:
            return
        replies.close()
        channel.close()  # the environment's cue to exit
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        kill_tree(proc)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def warm(self) -> None:
        """Start the execution environment now if none is running (an init failure shows on invoke)."""
        with self._lock:
            self._ensure()

    def invoke(
        self, event: Any, *, timeout: float | None = None, request_id: str | None = None
    ) -> Invocation:
        """Invoke the handler with ``event``; a timeout or a crash resets the environment."""
        limit = float(timeout if timeout is not None else self.spec.timeout)
        request_id = request_id or str(uuid.uuid4())
        with self._lock:
            init_ms, error = self._ensure()
            if error:
                return Invocation(request_id, {**error, "requestId": request_id}, True, 0.0, None)
            proc, channel = self._proc, self._channel
            assert proc is not None
            assert channel is not None
            started = time.perf_counter()
            with contextlib.suppress(OSError):  # a dead process: the reply wait below reports it
                request = {"request_id": request_id, "event": event, "deadline": time.time() + limit}
                channel.sendall(json.dumps(request).encode() + b"\n")
            reply = self._next_reply(limit)
            duration_ms = (time.perf_counter() - started) * 1000
            if reply is None:
                timed_out = duration_ms >= limit * 1000
                self._stop_process()
                error_text = (
                    f"Task timed out after {limit:.2f} seconds"
                    if timed_out
                    else (f"Runtime exited with error: exit status {proc.returncode}")
                )
                payload = {
                    "errorMessage": f"RequestId: {request_id} Error: {error_text}",
                    "errorType": "Sandbox.Timedout" if timed_out else "Runtime.ExitError",
                }
                return Invocation(request_id, payload, True, duration_ms, init_ms)
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


# -- inside the execution environment ----------------------------------------------------------------


class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    def __init__(self, request: dict[str, Any], arn: str) -> None:
        self.aws_request_id: str = request["request_id"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline = float(request["deadline"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(exc: BaseException, kind: str = "", request_id: str | None = None) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns for an exception (logged as it logs it)."""
    trace = traceback.format_list(traceback.extract_tb(exc.__traceback__))
    payload = {"errorMessage": str(exc), "errorType": kind or type(exc).__name__, "stackTrace": trace}
    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr)
    print("".join(trace).rstrip("\n"), file=sys.stderr)
    return payload | ({"requestId": request_id} if request_id else {})


def _serve(handler_name: str, arn: str, fd: str) -> int:
    channel = socket.socket(fileno=int(fd))

    def reply(message: dict[str, Any], started: float) -> None:
        message["duration_ms"] = (time.perf_counter() - started) * 1000
        channel.sendall(json.dumps(message).encode() + b"\n")

    started = time.perf_counter()
    module_name, _, function_name = handler_name.rpartition(".")
    try:
        if not module_name:
            raise ValueError(f"Bad handler '{handler_name}': not enough values to unpack (expected 2, got 1)")
        handler = getattr(importlib.import_module(module_name), function_name, None)
        if not callable(handler):
            raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    except Exception as exc:  # noqa: BLE001 - any import failure is the function's init error
        error = _error(exc, f"Runtime.ImportModuleError: {type(exc).__name__}")
        reply({"type": "init_error", "error": error}, started)
        return 1
    reply({"type": "ready"}, started)
    for line in channel.makefile("r", encoding="utf-8"):  # until the runtime closes the channel
        request = json.loads(line)
        context, started = LambdaContext(request, arn), time.perf_counter()
        answer: dict[str, Any]
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - the runtime reports every handler exception
            answer = {"type": "error", "error": _error(exc, "", context.aws_request_id)}
        else:
            try:  # what Lambda does with the return value
                answer = {"type": "result", "body": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                marshal = _error(ValueError(f"Unable to marshal response: {exc}"), "Runtime.MarshalError")
                answer = {"type": "error", "error": marshal | {"requestId": context.aws_request_id}}
        reply(answer, started)
    return 0


if __name__ == "__main__":
    sys.exit(_serve(*sys.argv[1:4]))
