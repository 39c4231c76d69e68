"""``python -m local demo``: the whole flow, end to end, on generated data; exit 0 only if it all checks out.

Two stacks are deployed from ``template.yaml`` into one emulator, as two ``sam deploy`` runs with
different parameter overrides would be: ``TriggerMode=object`` and ``TriggerMode=marker`` (with its own
pipeline name). The trigger mode is a stack setting (one environment variable of the trigger), so this
is how a user would run both kinds of dataset side by side.

1. object mode: one file (the named-CSV layout, ``Caravan.csv``) is uploaded under ``raw/``;
2. duplicate: the very S3 notification of that upload is delivered a second time (S3 delivers at least
   once): the trigger must answer with the same execution and nothing runs twice;
3. marker mode: the seed's four files (train.csv, test.csv, gt.csv, col_info.csv) are uploaded into one
   folder, then its ``_SUCCESS`` marker: one execution for the folder;
4. routes: the demo's routes put one dataset route before the shipped ``routes.yaml``'s (a pipeline of
   another team, ``claims-training``, made here as a stand-in whose runs are recorded, not run): an
   upload under ``raw/claims/date=2026-11-30/`` starts it with ``RunDate=2026-11-30`` from its key;
5. a burst: :data:`BURST` small files at once, more than the account's quotas allow (20 concurrent
   executions, 4 processing instances by default): the starts SageMaker refuses wait in the upload
   queue, the jobs it refuses are retried by the step's retry policy, and all of it drains by itself.
   Summed up in two lines (its per-file lines are left out).

Checked at the end: each execution Succeeded; ``full_data.csv``, ``rejects.csv`` and ``report.json`` exist
under its output URL; ``full_data.csv`` has the 86 clean columns and as many rows as the input minus the
rows the generator made faulty (= the report's rejects); the duplicate made no second execution; the
routed upload started the claims pipeline with its key's date and its snapshot; every burst file ran
once, on its own rows, and nothing reached the dead-letter queue.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from trigger.routing import digest

from coilgen import Generated, generate
from coilgen.dictionary import COIL, N_COLUMNS
from etl.schema import load
from local import ROOT
from local.cli import Progress, short_id
from local.delivery import s3_keys
from local.emulator import Quotas
from local.runner import TIME_SCALE
from local.runtime import Runtime, RuntimeStartError, StackRequest, render_cached
from local.stack import Template
from ops.text import table

OBJECT_KEY = "raw/demo/Caravan.csv"
MARKER_FOLDER = "raw/demo-seed/"
BURST_FOLDER = "raw/demo-burst/"
BURST = 24  # more than the 20 executions and 4 instances the default quotas allow at once
BURST_ROWS = 5
WAIT_SECONDS = 120.0
TABLE_WIDTH = 120
# 4. a dataset route before the shipped ones: a pipeline of another team, its date from the key
ROUTED_PIPELINE = "claims-training"
ROUTED_KEY = "raw/claims/date=2026-11-30/claims.csv"
ROUTED_ROUTE = {
    "prefix": "raw/claims/",
    "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/[^/]+\.csv",
    "pipeline": ROUTED_PIPELINE,
    "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}"},
}


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


def is_output_of(output_url: str, key: str, raw_prefix: str = "raw/", clean_prefix: str = "clean/") -> bool:
    """Whether an execution's ``OutputDataUrl`` is one of ``key``'s (an object, or a marker's folder).

    The trigger writes each upload's output to ``<clean prefix><key under the raw prefix>/<upload id>/``.
    """
    relative = key.removeprefix(raw_prefix).rstrip("/")
    return f"/{clean_prefix}{relative}/" in output_url


class Tracker:
    """Collects the runtime's notifications the demo waits for; thread-safe.

    Executions are told apart by their ``OutputDataUrl`` (the runner's ``execution-started``), which
    names the upload's key or folder: what the trigger answers is not needed.
    """

    def __init__(self, progress: Progress, quiet_prefix: str = BURST_FOLDER) -> None:
        self.progress = progress
        self.quiet_prefix = quiet_prefix  # the burst: counted, not printed line by line
        self.changed = threading.Condition()
        self.bodies: dict[str, str] = {}  # decoded key -> the first message body (S3 event) delivered
        self.starts: list[tuple[str, str, float]] = []  # (OutputDataUrl, execution ARN, when)
        self.replayed: list[str] = []  # executions a start was answered with again
        self.finished: dict[str, tuple[str, str, float]] = {}  # ARN -> (status, reason, when)
        self.recorded: dict[str, dict[str, str]] = {}  # a stand-in's execution ARN -> its parameters
        self.quiet: set[str] = set()  # ARNs of the burst's executions

    def _is_quiet(self, kind: str, details: dict[str, Any]) -> bool:
        keys = details.get("keys") or []
        if keys and all(k.startswith(self.quiet_prefix) for k in keys):
            return True
        url = str((details.get("parameters") or {}).get("OutputDataUrl", ""))
        if is_output_of(url, self.quiet_prefix):
            self.quiet.add(str(details["arn"]))
        return str(details.get("arn")) in self.quiet

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.changed:
            if not self._is_quiet(kind, details):
                self.progress.event(kind, details)
            if kind in ("invoked", "invoke-error"):
                for body in details.get("bodies") or []:
                    for key in s3_keys(body):
                        self.bodies.setdefault(key, body)
            elif kind == "execution-started":
                url = str((details.get("parameters") or {}).get("OutputDataUrl", ""))
                self.starts.append((url, str(details["arn"]), now))
            elif kind == "execution-replayed":
                self.replayed.append(str(details["arn"]))
            elif kind == "execution-recorded":
                self.recorded[str(details["arn"])] = dict(details.get("parameters") or {})
            elif kind == "execution-succeeded":
                self.finished[details["arn"]] = ("Succeeded", "", now)
            elif kind == "execution-failed":
                self.finished[details["arn"]] = ("Failed", str(details["reason"]), now)
            self.changed.notify_all()

    def starts_for(self, key: str) -> list[tuple[str, float]]:
        """(ARN, when) of the executions of ``key`` (an object, or a marker's folder)."""
        with self.changed:
            return [(arn, when) for url, arn, when in self.starts if is_output_of(url, key)]

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


def _settle(dataset: Dataset, tracker: Tracker, match: str | None = None) -> None:
    """Wait for the dataset's execution to start and finish, and note what happened."""
    match = match or dataset.key
    if not tracker.wait(lambda: bool(tracker.starts_for(match))):
        dataset.problems.append(f"no execution started for s3://{dataset.bucket}/{dataset.key}")
        return
    dataset.execution_arn, dataset.started_at = tracker.starts_for(match)[0]
    arn = dataset.execution_arn
    if not tracker.wait(lambda: arn in tracker.finished):
        dataset.problems.append(f"execution {short_id(arn)} did not finish within {WAIT_SECONDS:.0f} s")
        return
    dataset.status, dataset.reason, dataset.finished_at = tracker.finished[arn]
    if dataset.status != "Succeeded":
        dataset.problems.append(f"execution {short_id(arn)} {dataset.status}: {dataset.reason}")
    dataset.output_url = _parameters(arn).get("OutputDataUrl", "")


def _parameters(arn: str) -> dict[str, str]:
    listed = boto3.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
    return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}


def _seconds(start: float | None, end: float | None) -> str:
    return f"{end - start:.2f}" if start is not None and end is not None else "-"


def run_demo(
    *,
    rows: int = 5000,
    seed: int = 2000,
    workdir: Path | None = None,
    quotas: Quotas | None = None,
    time_scale: float = TIME_SCALE,
) -> int:
    """The demo; its exit status."""
    progress = Progress()
    if (
        shipped := load()
    ).names != COIL.names:  # the pipeline ships etl/schema.json; the demo's data is COIL's
        progress.line(
            "FAILED",
            f"the demo uploads COIL 2000 data, but etl/schema.json (the schema the pipeline ships) is "
            f"{shipped.title!r}: run it with the COIL example's (cp etl/examples/coil2000/schema.json etl/)",
        )
        return 2
    tracker = Tracker(progress)
    template = Template(ROOT / "template.yaml")
    pipeline_default = str(template.parameters.get("PipelineName", {}).get("Default", "s3-sagemaker-trigger"))
    stacks = [
        StackRequest("coil-demo-object", {"TriggerMode": "object"}),
        StackRequest(
            "coil-demo-marker", {"TriggerMode": "marker", "PipelineName": f"{pipeline_default}-marker"}
        ),
    ]
    if not render_cached():
        progress.line("render", "first run since pipeline/ or etl/ changed: the deploy function ships the")
        progress.line(
            "render", "definition rendered by the SageMaker SDK (as sam build does): 10-40 s, then cached"
        )
    with tempfile.TemporaryDirectory(prefix="local-demo-", dir=workdir) as tmp:
        data = Path(tmp)
        faults = {"faults": ["bad-values"], "fault_rate": 0.002}
        single = generate(data / "object", layout="named", rows=rows, seed=seed, **faults)  # type: ignore[arg-type]
        folder = generate(data / "marker", layout="seed", rows=9822, seed=seed + 1, **faults)  # type: ignore[arg-type]
        small = generate(data / "burst", layout="named", rows=BURST_ROWS, seed=seed + 2)
        progress.line(
            "generate",
            f"{single.rows} rows in Caravan.csv, {folder.rows} in the seed's {len(folder.files)} files, "
            f"{BURST} x {BURST_ROWS} for the burst; {single.faulty_rows + folder.faulty_rows} made faulty",
        )
        routes = data / "routes.yaml"  # JSON is YAML: the shipped routes, one dataset route first
        shipped = yaml.safe_load((ROOT / "routes.yaml").read_text(encoding="utf-8"))
        routes.write_text(json.dumps({"routes": [ROUTED_ROUTE, *shipped["routes"]]}), encoding="utf-8")
        try:
            with Runtime(
                stacks=stacks,
                notify=tracker,
                log_dir=None,
                quotas=quotas,
                time_scale=time_scale,
                routes=routes,
                stand_ins=[ROUTED_PIPELINE],
            ) as runtime:
                runtime.warm_up()
                progress.line("ready", "trigger functions warm; uploading")
                return _scenario(runtime, progress, tracker, single, folder, small)
        except RuntimeStartError as exc:
            progress.line("FAILED", str(exc))
            return 2


def _scenario(
    runtime: Runtime,
    progress: Progress,
    tracker: Tracker,
    single: Generated,
    folder: Generated,
    small: Generated,
) -> int:
    s3 = boto3.client("s3")
    object_stack, marker_stack = runtime.stacks
    object_bucket, marker_bucket = object_stack.ref("DataBucket"), marker_stack.ref("DataBucket")

    # 1. object mode: one upload, one execution
    first = Dataset("Caravan.csv", "object", object_bucket, OBJECT_KEY, single)
    first.uploaded_at = time.monotonic()
    s3.upload_file(str(single.out_dir / "Caravan.csv"), object_bucket, OBJECT_KEY)
    progress.line("upload", f"{OBJECT_KEY} (object stack)")

    # 3. marker mode (uploaded now, so it runs alongside): four files, then the marker
    marker_key = MARKER_FOLDER + "_SUCCESS"
    second = Dataset("marker folder", "marker", marker_bucket, marker_key, folder)
    for name in ("train.csv", "test.csv", "gt.csv", "col_info.csv"):
        s3.upload_file(str(folder.out_dir / name), marker_bucket, MARKER_FOLDER + name)
    second.uploaded_at = time.monotonic()
    s3.put_object(Bucket=marker_bucket, Key=marker_key, Body=b"")
    progress.line("upload", f"{MARKER_FOLDER}{{train,test,gt,col_info}}.csv, then _SUCCESS (marker stack)")

    _settle(first, tracker)
    duplicate = _duplicate(runtime, progress, tracker, first)
    _settle(second, tracker, MARKER_FOLDER)
    for dataset in (first, second):
        if dataset.execution_arn and dataset.status == "Succeeded":
            check_output(dataset)
    duplicate.rows_written, duplicate.rows_rejected = first.rows_written, first.rows_rejected

    routed = _routed(progress, tracker, object_bucket, small)
    burst_problems = _burst(runtime, progress, tracker, small)

    results = [first, duplicate, second, routed]
    print()
    print(
        *table(
            ["upload", "execution", "status", "output", "rows", "rejects", "start s", "run s"],
            [
                [
                    d.label,
                    short_id(d.execution_arn) if d.execution_arn else "-",
                    d.status,
                    d.output_url.split("/", 3)[-1] if d.output_url else "-",  # the key prefix
                    str(d.rows_written) if d.rows_written is not None else "-",
                    str(d.rows_rejected) if d.rows_rejected is not None else "-",
                    _seconds(d.uploaded_at, d.started_at),
                    _seconds(d.started_at, d.finished_at) if d is not duplicate else "-",
                ]
                for d in results
            ],
            width=120,
            shrink=[0, 3],
        ),
        sep="\n",
    )
    problems = [f"{d.label}: {p}" for d in results for p in d.problems] + burst_problems
    print()
    if problems:
        print("demo FAILED:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print(
        f"demo passed in {progress.elapsed():.1f} s: every output exists and checks out, the duplicate ran "
        "nothing, and the burst drained by itself."
    )
    return 0


def _routed(progress: Progress, tracker: Tracker, bucket: str, small: Generated) -> Dataset:
    """An upload a route sends to another pipeline, with a parameter from its key (4. in the doc)."""
    routed = Dataset("routed upload", "object", bucket, ROUTED_KEY, None)
    routed.uploaded_at = time.monotonic()
    boto3.client("s3").upload_file(str(small.out_dir / "Caravan.csv"), bucket, ROUTED_KEY)
    progress.line("upload", f"{ROUTED_KEY} (object stack; routed to {ROUTED_PIPELINE})")
    if not tracker.wait(lambda: bool(tracker.recorded)):
        routed.problems.append(f"no execution of {ROUTED_PIPELINE} was started")
        return routed
    arn, parameters = next(iter(tracker.recorded.items()))
    routed.execution_arn, routed.started_at, routed.status = arn, time.monotonic(), "recorded"
    routed.output_url = f"RunDate={parameters.get('RunDate')}"
    if parameters.get("RunDate") != "2026-11-30":
        routed.problems.append(f"RunDate is {parameters.get('RunDate')!r}, not the key's 2026-11-30")
    if not str(parameters.get("InputDataUrl", "")).startswith(
        f"s3://{bucket}/snapshot/{digest(ROUTED_KEY)}/"
    ):
        routed.problems.append(
            f"InputDataUrl {parameters.get('InputDataUrl')!r} is not the upload's snapshot"
        )
    return routed


def _duplicate(runtime: Runtime, progress: Progress, tracker: Tracker, first: Dataset) -> Dataset:
    """The very S3 notification of the first upload, delivered again: the same execution answers."""
    object_stack = runtime.stacks[0]
    duplicate = Dataset("duplicate event", "object", first.bucket, OBJECT_KEY, None)
    body = tracker.bodies.get(OBJECT_KEY)
    if body is None:
        duplicate.problems.append("the upload's S3 notification was never seen")
        return duplicate
    [mapping] = [m for m in object_stack.event_sources if m.function_id == "TriggerFunction"]
    seen, replays = len(tracker.starts_for(OBJECT_KEY)), len(tracker.replayed)
    duplicate.uploaded_at = time.monotonic()
    boto3.client("sqs").send_message(QueueUrl=mapping.queue_url, MessageBody=body)
    progress.line("duplicate", f"the S3 event for {OBJECT_KEY} delivered a second time")
    if tracker.wait(lambda: len(tracker.replayed) > replays or len(tracker.starts_for(OBJECT_KEY)) > seen):
        duplicate.finished_at = duplicate.started_at = time.monotonic()
        duplicate.output_url, duplicate.status = first.output_url, "same execution"
        duplicate.execution_arn = tracker.replayed[-1] if len(tracker.replayed) > replays else ""
        if duplicate.execution_arn != first.execution_arn:
            duplicate.problems.append("the duplicate delivery started a new execution")
    else:
        duplicate.problems.append("the duplicate event was not handled")
    executions = boto3.client("sagemaker").list_pipeline_executions(
        PipelineName=object_stack.parameters["PipelineName"]
    )["PipelineExecutionSummaries"]
    if len(executions) != 1:
        duplicate.problems.append(f"{len(executions)} executions in the object-mode pipeline, expected 1")
    return duplicate


def _burst(runtime: Runtime, progress: Progress, tracker: Tracker, small: Generated) -> list[str]:
    """:data:`BURST` uploads at once against the quotas; two lines of summary; the problems found."""
    stack = runtime.stacks[0]
    bucket = stack.ref("DataBucket")
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    quotas, runner = runtime.quotas, runtime.runner
    assert runner is not None
    refused_starts, refused_jobs = runtime.emulator.refused_starts, runner.stats.refused_jobs
    keys = [f"{BURST_FOLDER}file-{n:02d}.csv" for n in range(BURST)]
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.upload_file(str(small.out_dir / "Caravan.csv"), bucket, key), keys))
    progress.line(
        "burst",
        f"{BURST} files at once under {BURST_FOLDER}, against {quotas.max_concurrent_executions} executions "
        f"and {quotas.max_processing_instances} instances",
    )

    def done() -> bool:
        arns = {arn for key in keys for arn, _ in tracker.starts_for(key)}
        return len(arns) >= BURST and arns <= set(tracker.finished)

    drained = tracker.wait(done, timeout=WAIT_SECONDS * 2)
    seconds = time.monotonic() - began
    problems = [] if drained else [f"burst: not drained after {seconds:.0f} s"]
    runs = {key: [arn for arn, _ in tracker.starts_for(key)] for key in keys}
    problems += [f"burst: {key} ran {len(arns)} times" for key, arns in runs.items() if len(arns) != 1]
    own_rows = 0
    for arns in runs.values():
        for arn in arns:
            output = _parameters(arn).get("OutputDataUrl", "")
            body = _read(bucket, output[5:].partition("/")[2] + "full_data.csv") if output else None
            own_rows += body is not None and body.count(b"\n") == BURST_ROWS + 1
    succeeded = sum(
        1 for arns in runs.values() for a in arns if tracker.finished.get(a, ("",))[0] == "Succeeded"
    )
    dlq = stack.outputs.get("TriggerDeadLetterQueueUrl", "")
    attributes = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    dead = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    if succeeded != BURST or own_rows != BURST:
        problems.append(
            f"burst: {succeeded} of {BURST} Succeeded, {own_rows} with their own {BURST_ROWS} rows"
        )
    if dead:
        problems.append(f"burst: {dead} messages in the dead-letter queue")
    progress.line(
        "burst",
        f"{succeeded} of {BURST} Succeeded in {seconds:.1f} s, {own_rows} with their own {BURST_ROWS} rows; "
        f"{dead} in the dead-letter queue; no one acted",
    )
    progress.line(
        "burst",
        f"ResourceLimitExceeded: {runtime.emulator.refused_starts - refused_starts} start(s) waited in the "
        f"queue, {runner.stats.refused_jobs - refused_jobs} job refusals retried by the step",
    )
    return problems


__all__ = ["Dataset", "Tracker", "check_output", "is_output_of", "run_demo"]
