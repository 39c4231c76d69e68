"""The unit tier's guard: a test here that opens a network connection or starts a process fails.

`tests/unit` runs in seconds with no emulator, no subprocess and no network. Nothing in pytest or the
standard library enforces that, so every test here runs with socket connects and process spawns
replaced by a call that records the attempt and raises `UnitTierViolation`. It derives from
BaseException, so code that catches `Exception` (botocore's retries, a handler's error path) cannot
swallow it; and the attempt is recorded too, so the test fails at teardown even if something did.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest


class UnitTierViolation(BaseException):
    """A unit test tried to reach the network or start a process."""


@dataclass
class Guard:
    attempts: list[str] = field(default_factory=list)

    def refuse(self, what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> Any:
            shown = ", ".join(repr(a) for a in args[:3] if not isinstance(a, socket.socket))
            message = f"tests/unit makes no network call and starts no process: {what}({shown})"
            self.attempts.append(message)
            raise UnitTierViolation(message)

        return refused

    @contextmanager
    def expect_violation(self) -> Iterator[None]:
        """For the guard's own tests: the block must be refused; the attempt is then forgiven."""
        before = len(self.attempts)
        with pytest.raises(UnitTierViolation):
            yield
        assert len(self.attempts) > before
        del self.attempts[before:]


GUARDED = [
    (socket.socket, "connect"),
    (socket.socket, "connect_ex"),
    (socket.socket, "sendto"),
    (socket, "getaddrinfo"),
    (subprocess.Popen, "_execute_child"),
    (_posixsubprocess, "fork_exec"),
    (os, "system"),
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    *((os, name) for name in dir(os) if name.startswith(("spawn", "exec"))),
]
