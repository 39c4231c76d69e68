"""Starting and stopping the runtime: nothing left running, in-process or as `python -m local up` + Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import psutil
import pytest

from coilgen import generate
from local.emulator import CREDENTIALS, environment
from local.runtime import Runtime, StackRequest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".local-runtime" / "runtime.json"


def test_the_runtime_leaves_no_process_or_thread_behind(tmp_path: Path) -> None:
    # Given the threads before, and a runtime that ran an execution (function hosts and an ETL started)
    me = psutil.Process(os.getpid())
    threads_before = {t.ident for t in threading.enumerate()}
    data = generate(tmp_path, layout="named", rows=30, seed=3)
    with Runtime(stacks=[StackRequest("lifecycle")], scratch_dir=tmp_path) as runtime:
        runtime.warm_up()
        boto3.client("s3").upload_file(
            str(data.out_dir / "Caravan.csv"), runtime.stacks[0].ref("DataBucket"), "raw/x.csv"
        )
        assert runtime.wait_idle(60)
        assert me.children(recursive=True), "the trigger's execution environment should be running"
        endpoint = runtime.endpoint_url

    # When it has stopped
    # Then no child process and no thread of its own is left, and the emulator's port is closed
    assert me.children(recursive=True) == []
    leftover = [t for t in threading.enumerate() if t.ident not in threads_before]
    assert leftover == []
    port = int(endpoint.rsplit(":", 1)[1])
    assert not [
        c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "LISTEN"
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_up_runs_every_drop_reports_status_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    if STATE.exists():
        pytest.skip(f"a local runtime seems to be running here ({STATE})")
    # Given `python -m local up` in the foreground, on a port of its own (--port; the default is fixed)
    port = free_port()
    up = subprocess.Popen(
        [sys.executable, "-m", "local", "up", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert up.stdout is not None
        for line in up.stdout:
            output.append(line)
            if line.startswith("Watch the executions"):
                break
        text = "".join(output)
        assert "20 concurrent executions, 4 processing instances" in text  # the account's quotas
        # and the commands it prints run as printed from the project's folder, on that port
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port} " in text, text
        assert '.venv/bin/python -c "import boto3' in text
        assert ".venv/bin/s3sm status" in text
        state = json.loads(STATE.read_text(encoding="utf-8"))
        children = psutil.Process(up.pid).children(recursive=True)
        assert children, "up should run the trigger's execution environment"

        # When a file is dropped under raw/ (as a user would, with the printed endpoint)
        data = generate(tmp_path, layout="named", rows=25, seed=4)
        env = {
            **os.environ,
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": state["endpoint"],
            "AWS_DEFAULT_REGION": state["region"],
        }
        with environment(env):
            boto3.client("s3").upload_file(
                str(data.out_dir / "Caravan.csv"), state["stacks"][0]["bucket"], "raw/dropped.csv"
            )

        # Then `s3sm status` shows its execution succeeding, with input and output
        deadline, report = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            status = subprocess.run(
                [str(ROOT / ".venv" / "bin" / "s3sm"), "status", "--json"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            assert status.returncode == 0, status.stderr
            report = json.loads(status.stdout)["executions"]
            if report and report[0]["status"] != "Executing":
                break
            time.sleep(0.2)
        [execution] = report
        assert execution["status"] == "Succeeded"
        assert execution["upload"].endswith("/dropped.csv")  # its snapshot
        assert "/clean/dropped.csv/" in execution["output"]  # a folder of its own under the key's

        # When Ctrl-C is pressed
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()

    # Then it stopped cleanly: exit 0, its processes gone, its state file removed
    assert up.returncode == 0, "".join(output) + rest
    assert "nothing left running" in rest
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not STATE.exists()
