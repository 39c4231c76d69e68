"""``python -m local demo``: the whole flow, end to end, on generated data; exit 0 only if it all checks out.

Two stacks are deployed from ``template.yaml`` into one emulator, as two ``sam deploy`` runs with
different parameter overrides would be: ``TriggerMode=object`` and ``TriggerMode=marker`` (with its own
pipeline name). The trigger mode is a stack setting (one environment variable of the trigger), so this
is how a user would run both kinds of dataset side by side.

1. object mode: one file (the named-CSV layout, ``Caravan.csv``) is uploaded under ``raw/``;
2. duplicate: the very S3 notification of that upload is delivered a second time (S3 delivers at least
   once): the trigger must answer with the same execution and nothing runs twice;
3. marker mode: the seed's four files (train.csv, test.csv, gt.csv, col_info.csv) are uploaded into one
   folder, then its ``_SUCCESS`` marker: one execution for the folder.

Checked at the end: each execution Succeeded; ``full_data.csv``, ``rejects.csv`` and ``report.json`` exist
under its output URL; ``full_data.csv`` has the 86 clean columns and as many rows as the input minus the
rows the generator made faulty (= the report's rejects); the duplicate made no second execution.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3

from coilgen import Generated, generate
from local.console import Progress, short_id, table
from local.process import ROOT
from local.runtime import Runtime, RuntimeStartError, StackRequest
from local.template import Template

N_COLUMNS = 86
OBJECT_KEY = "raw/demo/Caravan.csv"
MARKER_FOLDER = "raw/demo-seed/"
WAIT_SECONDS = 120.0


@dataclass
class Dataset:
    """One thing the demo uploads, and what became of it."""

    label: str
    mode: str
    bucket: str
    key: str  # the key whose notification starts it (the object, or the marker)
    generated: Generated | None
    uploaded_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    execution_arn: str | None = None
    status: str = "not started"
    reason: str = ""
    output_url: str = ""
    rows_written: int | None = None
    rows_rejected: int | None = None
    problems: list[str] = field(default_factory=list)


class Tracker:
    """Collects the runtime's notifications the demo waits for; thread-safe."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.changed = threading.Condition()
        self.notifications: dict[str, dict[str, Any]] = {}  # decoded key -> the S3 event delivered
        self.starts: dict[str, list[tuple[str, float]]] = {}  # decoded key -> [(execution ARN, when)]
        self.finished: dict[str, tuple[str, str, float]] = {}  # ARN -> (status, reason, when)

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        self.progress.event(kind, details)
        now = time.monotonic()
        with self.changed:
            if kind == "notification":
                for key in details["keys"]:
                    self.notifications[unquote_plus(key)] = details["event"]
            elif kind == "invoked" and isinstance(details.get("result"), dict):
                for started in details["result"].get("started") or []:
                    self.starts.setdefault(str(started["key"]), []).append(
                        (str(started["executionArn"]), now)
                    )
            elif kind == "execution-succeeded":
                self.finished[details["arn"]] = ("Succeeded", "", now)
            elif kind == "execution-failed":
                self.finished[details["arn"]] = ("Failed", str(details["reason"]), now)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float = WAIT_SECONDS) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout=timeout)


def _read(bucket: str, key: str) -> bytes | None:
    s3 = boto3.client("s3")
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return body


def check_output(dataset: Dataset) -> None:
    """Fill rows written/rejected from the outputs and record every problem found."""
    if not dataset.output_url.startswith("s3://"):
        dataset.problems.append("no output URL")
        return
    bucket, _, prefix = dataset.output_url[5:].partition("/")
    found = {name: _read(bucket, prefix + name) for name in ("full_data.csv", "rejects.csv", "report.json")}
    for name, body in found.items():
        if body is None:
            dataset.problems.append(f"{name} missing under {dataset.output_url}")
    report_body, full = found["report.json"], found["full_data.csv"]
    if report_body is None or full is None:
        return
    totals = json.loads(report_body)["totals"]
    dataset.rows_written, dataset.rows_rejected = int(totals["rows_written"]), int(totals["rows_rejected"])
    rows = list(csv.reader(io.StringIO(full.decode("utf-8"))))
    header, data = rows[0], rows[1:]
    if len(header) != N_COLUMNS:
        dataset.problems.append(f"full_data.csv has {len(header)} columns, expected {N_COLUMNS}")
    if any(len(r) != N_COLUMNS for r in data):
        dataset.problems.append("full_data.csv has rows with a wrong number of fields")
    if len(data) != dataset.rows_written:
        dataset.problems.append(
            f"full_data.csv has {len(data)} rows, report.json says {dataset.rows_written}"
        )
    if totals["rows_read"] - dataset.rows_rejected != len(data):
        dataset.problems.append(
            f"rows read {totals['rows_read']} - rejected {dataset.rows_rejected} != {len(data)} rows written"
        )
    if dataset.generated is not None:
        expected = dataset.generated.rows - dataset.generated.faulty_rows
        if len(data) != expected or dataset.rows_rejected != dataset.generated.faulty_rows:
            dataset.problems.append(
                f"expected {expected} clean rows and {dataset.generated.faulty_rows} rejects (the "
                f"generator's faults), got {len(data)} and {dataset.rows_rejected}"
            )


def _settle(dataset: Dataset, tracker: Tracker) -> None:
    """Wait for the dataset's execution to start and finish, and note what happened."""
    if not tracker.wait(lambda: dataset.key in tracker.starts):
        dataset.problems.append(f"no execution started for s3://{dataset.bucket}/{dataset.key}")
        return
    dataset.execution_arn, dataset.started_at = tracker.starts[dataset.key][0]
    arn = dataset.execution_arn
    if not tracker.wait(lambda: arn in tracker.finished):
        dataset.problems.append(f"execution {short_id(arn)} did not finish within {WAIT_SECONDS:.0f} s")
        return
    dataset.status, dataset.reason, dataset.finished_at = tracker.finished[arn]
    if dataset.status != "Succeeded":
        dataset.problems.append(f"execution {short_id(arn)} {dataset.status}: {dataset.reason}")
    parameters = boto3.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    values = {p["Name"]: p["Value"] for p in parameters["PipelineParameters"]}
    dataset.output_url = values.get("OutputDataUrl", "")


def _seconds(start: float | None, end: float | None) -> str:
    return f"{end - start:.2f}" if start is not None and end is not None else "-"


def run_demo(*, rows: int = 5000, seed: int = 2000, workdir: Path | None = None) -> int:
    """The demo; its exit status."""
    progress = Progress()
    tracker = Tracker(progress)
    template = Template(ROOT / "template.yaml")
    pipeline_default = str(template.parameters.get("PipelineName", {}).get("Default", "s3-sagemaker-trigger"))
    stacks = [
        StackRequest("coil-demo-object", {"TriggerMode": "object"}),
        StackRequest(
            "coil-demo-marker", {"TriggerMode": "marker", "PipelineName": f"{pipeline_default}-marker"}
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="local-demo-", dir=workdir) as tmp:
        data = Path(tmp)
        faults = {"faults": ["bad-values"], "fault_rate": 0.002}
        single = generate(data / "object", layout="named", rows=rows, seed=seed, **faults)  # type: ignore[arg-type]
        folder = generate(data / "marker", layout="seed", rows=9822, seed=seed + 1, **faults)  # type: ignore[arg-type]
        progress.line(
            "generate",
            f"{single.rows} rows in Caravan.csv (object mode); {folder.rows} rows in the seed's "
            f"{len(folder.files)} files (marker mode); "
            f"{single.faulty_rows + folder.faulty_rows} rows made faulty",
        )
        try:
            with Runtime(stacks=stacks, notify=tracker, log_dir=None) as runtime:
                runtime.warm_up()
                progress.line("ready", "trigger functions warm; uploading")
                return _scenario(runtime, progress, tracker, single, folder)
        except RuntimeStartError as exc:
            progress.line("FAILED", str(exc))
            return 2


def _scenario(
    runtime: Runtime, progress: Progress, tracker: Tracker, single: Generated, folder: Generated
) -> int:
    s3 = boto3.client("s3")
    object_stack, marker_stack = runtime.stacks
    object_bucket, marker_bucket = object_stack.ref("DataBucket"), marker_stack.ref("DataBucket")

    # 1. object mode: one upload, one execution
    first = Dataset("Caravan.csv", "object", object_bucket, OBJECT_KEY, single)
    first.uploaded_at = time.monotonic()
    s3.upload_file(str(single.out_dir / "Caravan.csv"), object_bucket, OBJECT_KEY)
    progress.line("upload", f"s3://{object_bucket}/{OBJECT_KEY}")

    # 3. marker mode (uploaded now, so it runs alongside): four files, then the marker
    marker_key = MARKER_FOLDER + "_SUCCESS"
    second = Dataset("seed folder (4 files)", "marker", marker_bucket, marker_key, folder)
    for name in ("train.csv", "test.csv", "gt.csv", "col_info.csv"):
        s3.upload_file(str(folder.out_dir / name), marker_bucket, MARKER_FOLDER + name)
    second.uploaded_at = time.monotonic()
    s3.put_object(Bucket=marker_bucket, Key=marker_key, Body=b"")
    progress.line(
        "upload", f"s3://{marker_bucket}/{MARKER_FOLDER}{{train,test,gt,col_info}}.csv, then _SUCCESS"
    )

    _settle(first, tracker)

    # 2. the duplicate: the same S3 notification delivered again
    duplicate = Dataset("Caravan.csv (duplicate event)", "object", object_bucket, OBJECT_KEY, None)
    event = tracker.notifications.get(OBJECT_KEY)
    if event is None:
        duplicate.problems.append("the upload's S3 notification was never seen")
    else:
        queue_url = object_stack.notification_queues["TriggerFunction"]
        seen = len(tracker.starts.get(OBJECT_KEY, []))
        duplicate.uploaded_at = time.monotonic()
        boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
        progress.line("duplicate", f"the S3 event for {OBJECT_KEY} delivered a second time")
        if tracker.wait(lambda: len(tracker.starts.get(OBJECT_KEY, [])) > seen):
            duplicate.execution_arn, duplicate.started_at = tracker.starts[OBJECT_KEY][seen]
            duplicate.finished_at = duplicate.started_at
            duplicate.output_url, duplicate.status = first.output_url, "same execution"
            if duplicate.execution_arn != first.execution_arn:
                duplicate.problems.append(
                    f"the duplicate started a new execution {short_id(duplicate.execution_arn)}"
                )
        else:
            duplicate.problems.append("the duplicate event was not handled")
        executions = boto3.client("sagemaker").list_pipeline_executions(
            PipelineName=object_stack.parameters["PipelineName"]
        )["PipelineExecutionSummaries"]
        if len(executions) != 1:
            duplicate.problems.append(f"{len(executions)} executions in the object-mode pipeline, expected 1")

    _settle(second, tracker)
    for dataset in (first, second):
        if dataset.execution_arn and dataset.status == "Succeeded":
            check_output(dataset)
    duplicate.rows_written, duplicate.rows_rejected = first.rows_written, first.rows_rejected

    results = [first, duplicate, second]
    print()
    print(
        table(
            [
                "upload",
                "mode",
                "execution",
                "status",
                "output",
                "rows",
                "rejected",
                "to start s",
                "run s",
                "total s",
            ],
            [
                [
                    d.label,
                    d.mode,
                    short_id(d.execution_arn) if d.execution_arn else "-",
                    d.status,
                    d.output_url or "-",
                    d.rows_written if d.rows_written is not None else "-",
                    d.rows_rejected if d.rows_rejected is not None else "-",
                    _seconds(d.uploaded_at, d.started_at),
                    _seconds(d.started_at, d.finished_at) if d is not duplicate else "-",
                    _seconds(d.uploaded_at, d.finished_at) if d is not duplicate else "-",
                ]
                for d in results
            ],
            max_width=80,
        )
    )
    problems = [f"{d.label}: {p}" for d in results for p in d.problems]
    print()
    if problems:
        print("demo FAILED:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"demo passed in {progress.elapsed():.1f} s: every output exists and checks out, "
        "and the duplicate ran nothing."
    )
    return 0


__all__ = ["Dataset", "Tracker", "check_output", "run_demo"]
