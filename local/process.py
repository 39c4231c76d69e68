"""What every child process of the local runtime shares: a small, explicit environment; clean killing."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local-runtime"  # gitignored: endpoint file, logs, bytecode cache
STATE_FILE = STATE_DIR / "runtime.json"  # a running `up`: endpoint, region, pid, its stacks and their outputs

# Passed through from the runtime's own environment; everything else a child gets is set explicitly
# (a Lambda function or a processing container starts from a clean environment too).
_PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


def _bytecode_settings() -> dict[str, str]:
    """Let children cache bytecode outside the tree when the environment forbids writing it.

    With PYTHONDONTWRITEBYTECODE=1 and a venv installed without compiled bytecode, every child would
    compile pandas/boto3 from source on each start (seconds, measured). Caching it under the gitignored
    state folder keeps the tree clean and makes the second start fast.
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return {}
    spec = importlib.util.find_spec("botocore")
    if spec is not None and spec.origin and Path(importlib.util.cache_from_source(spec.origin)).exists():
        return {"PYTHONDONTWRITEBYTECODE": "1"}  # the venv ships compiled bytecode: nothing to do
    return {"PYTHONPYCACHEPREFIX": str(STATE_DIR / "pycache")}


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """A clean environment for a child process: PATH/HOME/locale, bytecode cache, then ``extra``."""
    env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(_bytecode_settings())
    env.update(extra)
    return env


def kill_tree(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Kill a child started with ``start_new_session=True`` and everything it started; reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


__all__ = ["ROOT", "STATE_DIR", "STATE_FILE", "child_environment", "kill_tree"]
