"""A function's local execution environment: Lambda's environment, errors, timeout, warm reuse."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from local.lambdas import FunctionProcess, FunctionSpec

HANDLERS = """
import os, time

LOADED_AT = time.time()


def echo(event, context):
    return {
        "event": event,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "env": {k: os.environ.get(k) for k in ("GREETING", "AWS_LAMBDA_FUNCTION_NAME", "PARENT_ONLY")},
        "loaded_at": LOADED_AT,
    }


def boom(event, context):
    print("about to fail")
    raise ValueError("the event has no Records")


def slow(event, context):
    time.sleep(30)


def unserialisable(event, context):
    return {"when": object()}
"""


def spec(code: Path, handler: str, timeout: int = 3) -> FunctionSpec:
    return FunctionSpec(
        logical_id="TestFunction",
        name="test-function",
        arn="arn:aws:lambda:us-east-1:123456789012:function:test-function",
        handler=handler,
        code_uri=code,
        runtime="python3.13",
        timeout=timeout,
        memory_size=128,
        environment={"GREETING": "hello"},
    )


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def test_the_handler_sees_lambdas_environment_and_context_not_the_callers(
    code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a variable only the caller has
    monkeypatch.setenv("PARENT_ONLY", "leaked")
    with FunctionProcess(spec(code, "handlers.echo"), aws_env={"AWS_REGION": "us-east-1"}) as function:
        # When the function is invoked
        result = function.invoke({"n": 1})

    # Then it got the event, a context with time left, the template's and Lambda's variables only
    assert not result.error
    assert result.payload["event"] == {"n": 1}
    assert result.payload["function_name"] == "test-function"
    assert 0 < result.payload["remaining_ms"] <= 3000
    assert result.payload["request_id"] == result.request_id
    assert result.payload["env"] == {
        "GREETING": "hello",
        "AWS_LAMBDA_FUNCTION_NAME": "test-function",
        "PARENT_ONLY": None,
    }


def test_a_warm_environment_is_reused_and_only_the_first_call_pays_the_init(code: Path) -> None:
    with FunctionProcess(spec(code, "handlers.echo"), aws_env={}) as function:
        first, second = function.invoke({}), function.invoke({})

    assert first.init_ms is not None
    assert second.init_ms is None
    assert first.payload["loaded_at"] == second.payload["loaded_at"]  # imported once


def test_an_exception_comes_back_as_lambdas_error_object_and_the_log_keeps_the_output(code: Path) -> None:
    lines: list[str] = []
    with FunctionProcess(
        spec(code, "handlers.boom"), aws_env={}, on_log=lambda f, line: lines.append(line)
    ) as f:
        result = f.invoke({})

    assert result.error
    assert result.payload["errorType"] == "ValueError"
    assert result.payload["errorMessage"] == "the event has no Records"
    assert any("boom" in frame for frame in result.payload["stackTrace"])
    assert "about to fail" in lines
    assert "[ERROR] ValueError: the event has no Records" in lines


def test_a_return_value_that_is_not_json_is_a_marshal_error(code: Path) -> None:
    with FunctionProcess(spec(code, "handlers.unserialisable"), aws_env={}) as function:
        result = function.invoke({})

    assert result.error
    assert result.payload["errorType"] == "Runtime.MarshalError"


def test_a_missing_handler_is_an_init_error(code: Path) -> None:
    with FunctionProcess(spec(code, "handlers.nope"), aws_env={}) as function:
        result = function.invoke({})

    assert result.error
    assert result.payload["errorType"].startswith("Runtime.ImportModuleError")
    assert "nope" in result.payload["errorMessage"]


def test_the_timeout_is_enforced_and_the_environment_replaced(code: Path) -> None:
    # Given a handler that sleeps 30 s in a function with a 1 s timeout
    with FunctionProcess(spec(code, "handlers.slow", timeout=1), aws_env={}) as function:
        started = time.monotonic()

        # When it is invoked
        result = function.invoke({})
        elapsed = time.monotonic() - started

        # Then the invocation fails as a Lambda timeout after about 1 s and no process is left over
        assert result.error
        assert result.payload["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in result.payload["errorMessage"]
        assert elapsed < 5
        assert psutil.Process(os.getpid()).children(recursive=True) == []
