"""The unit tier's guard refuses network connections and process spawns, even when they are swallowed."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from typing import Any

import pytest


def test_a_tcp_connection_is_refused(unit_guard: Any) -> None:
    # Given the guard, when a test connects to a local port, then it is refused before any packet
    with unit_guard.expect_violation():
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_a_subprocess_is_refused(unit_guard: Any) -> None:
    with unit_guard.expect_violation():
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_os_system_is_refused(unit_guard: Any) -> None:
    with unit_guard.expect_violation():
        os.system("true")  # noqa: S605


def test_a_swallowed_attempt_still_fails_the_test(unit_guard: Any) -> None:
    # When code catches everything around a connect, the attempt is still on record for teardown
    with contextlib.suppress(BaseException):
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert len(unit_guard.attempts) == 1
    assert "'127.0.0.1'" in unit_guard.attempts[0]
    unit_guard.attempts.clear()


def test_boto3_cannot_reach_an_endpoint(unit_guard: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore retries connection errors it knows; the guard's error is not one of them
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    with unit_guard.expect_violation():
        client.list_buckets()
