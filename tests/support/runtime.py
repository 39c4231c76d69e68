"""The local runtime as the end-to-end tests drive it: one warmed-up runtime, what it notified, and the
executions of a key."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from local.demo import is_output_of
from local.runtime import Runtime, StackRequest


class Recorder:
    """Keeps the runtime's notifications for the tests to look at."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((kind, details))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [d for k, d in self.events if k == kind]


def bucket(runtime: Runtime) -> str:
    return runtime.stacks[0].ref("DataBucket")


def pipeline(runtime: Runtime) -> str:
    return runtime.stacks[0].parameters["PipelineName"]


def executions_for(runtime: Runtime, key: str) -> list[dict[str, Any]]:
    """The executions of ``key`` (their OutputDataUrl is one of the key's output folders)."""
    sagemaker = boto3.client("sagemaker")
    found = []
    for summary in sagemaker.list_pipeline_executions(PipelineName=pipeline(runtime))[
        "PipelineExecutionSummaries"
    ]:
        arn = summary["PipelineExecutionArn"]
        params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)[
            "PipelineParameters"
        ]
        if is_output_of({p["Name"]: p["Value"] for p in params}.get("OutputDataUrl", ""), key):
            found.append(summary)
    return found


def finished(runtime: Runtime, key: str, timeout: float = 60) -> dict[str, Any]:
    """Wait for the one execution on ``key`` to finish; its summary."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = executions_for(runtime, key)
        if found and all(s["PipelineExecutionStatus"] != "Executing" for s in found):
            assert len(found) == 1, f"{len(found)} executions for {key}"
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no finished execution for {key} within {timeout} s")


@contextmanager
def running(stack: str, recorder: Recorder, scratch: Path, **options: Any) -> Iterator[Runtime]:
    """A warmed-up runtime with the one stack ``stack`` (from template.yaml), notifying ``recorder``.
    ``options``: more of Runtime's arguments."""
    with Runtime(stacks=[StackRequest(stack)], scratch_dir=scratch, notify=recorder, **options) as rt:
        rt.warm_up()
        yield rt
