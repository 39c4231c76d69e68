"""Load: a burst of 1,000 uploads through the local runtime against a concurrent-execution cap.

    .venv/bin/python bench/load_burst.py [--uploads 1000] [--cap 50] [--workers 2] [--baseline 100]

SageMaker caps how many pipeline executions run at once (an account-level service limit); a start
beyond the cap answers ``ResourceLimitExceeded``, which botocore does not retry. This benchmark puts
such a cap into the emulator of this process only: a wrapper around the emulator's
StartPipelineExecution refuses a new start while ``--cap`` executions are Executing (an idempotent
replay of an execution that exists is answered as before). Then ``--uploads`` small generated files
(a few rows each) are dropped under ``raw/`` at once (8 upload threads, as bench/local_latency.py
does) and the system recovers on its own terms:

- the trigger's start is refused -> ``StartFailed`` -> the local delivery retries the event as Lambda's
  asynchronous invocation does (``MaximumRetryAttempts`` from template.yaml) -> Lambda's on-failure
  record goes to the dead-letter queue;
- an operator loop runs the redrive command, ``python -m redrive --local --queue-url <DLQ> --max N``
  (its ``main`` in this process, the trigger's settings from the stack), whenever the cap has room for
  N more executions;

until every upload's execution has finished and every queue is empty. The figures are then read from
the emulator, not from the benchmark's own bookkeeping: executions == uploads, one per input URL (lost
0, duplicated 0), each Succeeded with its clean full_data.csv holding the file's rows; the time to
drain; how many uploads started at the first attempt, on a Lambda retry, or through the dead-letter
queue and the redrive; how many starts the cap refused.

Baseline, in the same process and runtime: a smaller burst (``--baseline``) without the cap. The ratio
of seconds per upload (capped / uncapped) is what the cap, the retries and the redrive cost the drain.

Prints a table and writes bench/results/load.json. Costs about 1.2 s of runner time per upload with 2
workers on 2 cores (the ETL subprocess dominates): 1,000 uploads take about 10 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
from botocore.exceptions import ClientError
from local_latency import percentile  # bench/ is this script's folder: the burst benchmark's helpers
from moto.sagemaker import models as sm_models
from moto.sagemaker.exceptions import SagemakerClientError

import redrive.__main__ as redrive_cli
from coilgen import generate
from local.emulator import ACCOUNT_ID, environment
from local.runtime import Runtime, StackRequest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load.json"
TRIGGER = "TriggerFunction"
LIMIT_MESSAGE = (
    "The account-level service limit 'Maximum number of concurrent pipeline executions' is {cap} "
    "Pipeline Executions, with current utilization of {used} Pipeline Executions."
)


# -- the cap, in the emulator of this process --------------------------------------------------------


class ResourceLimitExceeded(SagemakerClientError):
    """SageMaker's answer to a start beyond the concurrent-execution limit (HTTP 400)."""

    code = "ResourceLimitExceeded"


class ExecutionCap:
    """At most ``limit`` executions Executing at once in the emulator; a new start beyond it is refused.

    Wraps the emulator's own (fidelity-patched) StartPipelineExecution in moto's backend class, so it
    applies to every client of this process's emulator and to nothing else; ``remove`` restores it.
    """

    def __init__(self, region: str, limit: int | None = None) -> None:
        self.region = region
        self.limit = limit
        self.refused = 0
        self.most = 0  # the most executions Executing right after a start
        self._lock = threading.RLock()  # starts add executions: counting must not race them
        self._original: Callable[..., dict[str, str]] | None = None

    def executing(self) -> int:
        backend = sm_models.sagemaker_backends[ACCOUNT_ID][self.region]
        with self._lock:
            return sum(
                1
                for pipeline in backend.pipelines.values()
                for execution in pipeline.pipeline_executions.values()
                if execution.pipeline_execution_status == "Executing"
            )

    def install(self) -> ExecutionCap:
        backend_cls = sm_models.SageMakerModelBackend
        original = self._original = backend_cls.start_pipeline_execution
        cap = self

        def start_pipeline_execution(backend: Any, pipeline_name: str, *args: Any) -> dict[str, str]:
            token = args[-1] if args else None
            with cap._lock:
                pipeline = backend.pipelines.get(pipeline_name)
                replay = pipeline is not None and any(
                    token and e.client_request_token == token for e in pipeline.pipeline_executions.values()
                )
                used = cap.executing()
                if cap.limit is not None and not replay and used >= cap.limit:
                    cap.refused += 1
                    raise ResourceLimitExceeded(LIMIT_MESSAGE.format(cap=cap.limit, used=used))
                result = original(backend, pipeline_name, *args)
                cap.most = max(cap.most, cap.executing())
                return result

        backend_cls.start_pipeline_execution = start_pipeline_execution
        return self

    def remove(self) -> None:
        if self._original is not None:
            sm_models.SageMakerModelBackend.start_pipeline_execution = self._original
            self._original = None


@contextlib.contextmanager
def capped(cap: ExecutionCap) -> Iterator[ExecutionCap]:
    cap.install()
    try:
        yield cap
    finally:
        cap.remove()


# -- what happened to each upload, from the runtime's notifications ----------------------------------


@dataclass
class Tally:
    """Per key: the attempt its start succeeded at, dead letters; per execution: when it finished."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    started_at_attempt: dict[str, int] = field(default_factory=dict)
    failed_attempts: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    finished: dict[str, float] = field(default_factory=dict)  # ARN -> monotonic time
    invocations: int = 0

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        with self.lock:
            if kind == "invoked":
                self.invocations += 1
                for started in (details.get("result") or {}).get("started") or []:
                    self.started_at_attempt.setdefault(started["key"], int(details["attempt"]))
            elif kind == "invoke-error":
                self.invocations += 1
                for key in details.get("keys") or []:  # as the S3 record has it: URL-encoded
                    self.failed_attempts[unquote_plus(key)] += 1
            elif kind == "dead-letter":
                for key in details.get("keys") or []:
                    self.dead_lettered[unquote_plus(key)] += 1
            elif kind in ("execution-succeeded", "execution-failed"):
                self.finished[details["arn"]] = time.monotonic()


@dataclass
class Redrives:
    """The operator's redrive runs: their count and what their reports said."""

    runs: int = 0
    read: int = 0
    started_new: int = 0
    already_running: int = 0
    failed: int = 0  # replays refused again (the cap filled up meanwhile): left in the queue
    deleted: int = 0
    keys: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def run(self, queue_url: str, room: int) -> None:
        """``python -m redrive --local --queue-url Q --max room --wait-seconds 0 --json``, in-process."""
        argv = ["--local", "--queue-url", queue_url, "--max", str(room), "--wait-seconds", "0", "--json"]
        out, logs = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(logs):
            code = redrive_cli.main(argv)
        self.runs += 1
        if code == redrive_cli.EXIT_ERROR:
            self.errors.append(logs.getvalue().strip().splitlines()[-1])
            return
        report = json.loads(out.getvalue())
        self.read += report["read"]
        self.deleted += report["deleted"]
        self.failed += len(report["failed"])
        for started in report["started"]:
            if started["new"] is False:
                self.already_running += 1
            else:
                self.started_new += 1
                self.keys[started["key"]] += 1


# -- one burst -----------------------------------------------------------------------------------------


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def executions_by_input(sagemaker: Any, pipeline: str, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """InputDataUrl -> [(execution ARN, status)] for the executions whose input is under ``prefix``."""
    found: dict[str, list[tuple[str, str]]] = {}
    for summary in sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]:
        arn = summary["PipelineExecutionArn"]
        params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
        url = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}.get("InputDataUrl", "")
        if url.startswith(prefix):
            found.setdefault(url, []).append((arn, summary["PipelineExecutionStatus"]))
    return found


def burst(
    runtime: Runtime,
    cap: ExecutionCap,
    tally: Tally,
    file: Path,
    rows: int,
    *,
    count: int,
    folder: str,
    timeout: float,
    redrive_every: float = 1.0,
) -> dict[str, Any]:
    stack = runtime.stacks[0]
    bucket, pipeline = stack.ref("DataBucket"), stack.parameters["PipelineName"]
    dlq = stack.outputs["TriggerDeadLetterQueueUrl"]
    s3, sqs, sagemaker = boto3.client("s3"), boto3.client("sqs"), boto3.client("sagemaker")
    keys = [f"raw/{folder}/file-{n:04d}.csv" for n in range(count)]
    prefix = f"s3://{bucket}/raw/{folder}/"
    redrives = Redrives()
    refused_before, invocations_before = cap.refused, tally.invocations
    stats_before = runtime.deliveries[0].stats.dead_lettered
    finished_before = len(tally.finished)

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.upload_file(str(file), bucket, key), keys))
    uploaded = time.monotonic() - began

    drained: float | None = None
    last_redrive = last_progress = 0.0
    while time.monotonic() - began < timeout:
        time.sleep(0.5)
        waiting = queue_depth(sqs, dlq)
        if time.monotonic() - last_progress >= 30:
            last_progress = time.monotonic()
            print(
                f"  {last_progress - began:6.0f} s: {len(tally.finished) - finished_before} finished, "
                f"{cap.executing()} Executing, {waiting} in the dead-letter queue, "
                f"{redrives.runs} redrive runs",
                flush=True,
            )
        if waiting and time.monotonic() - last_redrive >= redrive_every:
            room = waiting if cap.limit is None else cap.limit - cap.executing()
            if room > 0:  # replay only what the cap has room for: the rest would be refused again
                redrives.run(dlq, min(room, waiting))
                last_redrive = time.monotonic()
                continue
        if waiting or not runtime.idle():
            continue
        done = executions_by_input(sagemaker, pipeline, prefix)
        if len(done) == count and all(status != "Executing" for runs in done.values() for _, status in runs):
            drained = time.monotonic() - began
            break

    found = executions_by_input(sagemaker, pipeline, prefix)
    expected = {f"s3://{bucket}/{key}" for key in keys}
    clean = 0
    for key in keys:
        try:
            body = s3.get_object(Bucket=bucket, Key=f"clean/{key[len('raw/') :]}/full_data.csv")[
                "Body"
            ].read()
        except ClientError:  # no clean output
            continue
        clean += body.count(b"\n") == rows + 1
    statuses = Counter(status for runs in found.values() for _, status in runs)
    first = sum(1 for k in keys if tally.started_at_attempt.get(k) == 1)
    retried = sum(1 for k in keys if (tally.started_at_attempt.get(k) or 0) > 1)
    via_dlq = sum(1 for k in keys if redrives.keys.get(k))
    finish_times = sorted(
        tally.finished[arn] - began for runs in found.values() for arn, _ in runs if arn in tally.finished
    )
    return {
        "uploads": count,
        "cap": cap.limit,
        "workers": runtime.workers,
        "rows_per_file": rows,
        "upload_seconds": round(uploaded, 2),
        "drained": drained is not None,
        "drain_seconds": round(drained if drained is not None else time.monotonic() - began, 2),
        "executions": sum(len(runs) for runs in found.values()),
        "distinct_inputs": len(found),
        "lost": len(expected - set(found)),
        "duplicated": sum(len(runs) - 1 for runs in found.values()),
        "unexpected_inputs": len(set(found) - expected),
        "statuses": dict(statuses),
        "succeeded_with_clean_output": clean,
        "started_first_attempt": first,
        "started_on_lambda_retry": retried,
        "started_via_dlq_redrive": via_dlq,
        "dead_letter_records": runtime.deliveries[0].stats.dead_lettered - stats_before,
        "uploads_dead_lettered": sum(1 for k in keys if tally.dead_lettered.get(k)),
        "trigger_invocations": tally.invocations - invocations_before,
        "failed_invocations": sum(tally.failed_attempts[k] for k in keys),
        "starts_refused_by_cap": cap.refused - refused_before,
        "most_executing_at_once": cap.most,
        "redrive": {
            "runs": redrives.runs,
            "messages_read": redrives.read,
            "started_new": redrives.started_new,
            "already_running": redrives.already_running,
            "refused_again_left_in_queue": redrives.failed,
            "deleted": redrives.deleted,
            "errors": redrives.errors,
        },
        "dlq_left": queue_depth(sqs, dlq),
        "finished_p50_s": round(percentile(finish_times, 0.5), 2) if finish_times else None,
        "seconds_per_upload": round((drained or float("nan")) / count, 4),
    }


def verdict(result: dict[str, Any]) -> bool:
    n = result["uploads"]
    return (
        result["drained"]
        and result["executions"] == result["distinct_inputs"] == result["succeeded_with_clean_output"] == n
        and result["lost"] == result["duplicated"] == result["unexpected_inputs"] == result["dlq_left"] == 0
        and result["statuses"] == {"Succeeded": n}
        and (result["cap"] is None or result["most_executing_at_once"] <= result["cap"])
    )


def print_table(load: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    r = load["redrive"]
    rows = [
        ("uploads (in a burst)", f"{load['uploads']}", f"uploaded in {load['upload_seconds']:.1f} s"),
        (
            "concurrent-execution cap",
            f"{load['cap']}",
            f"most Executing at once: {load['most_executing_at_once']}",
        ),
        ("executions", f"{load['executions']}", f"expected {load['uploads']}"),
        ("distinct input URLs", f"{load['distinct_inputs']}", ""),
        ("lost", f"{load['lost']}", ""),
        ("duplicated", f"{load['duplicated']}", ""),
        (
            "Succeeded + clean output",
            f"{load['succeeded_with_clean_output']}",
            f"statuses {load['statuses']}",
        ),
        ("started at 1st attempt", f"{load['started_first_attempt']}", ""),
        ("started on a Lambda retry", f"{load['started_on_lambda_retry']}", ""),
        (
            "dead-lettered",
            f"{load['uploads_dead_lettered']}",
            f"{load['dead_letter_records']} on-failure records",
        ),
        (
            "started by the redrive",
            f"{load['started_via_dlq_redrive']}",
            f"{r['runs']} runs, {r['messages_read']} replays, {r['refused_again_left_in_queue']} refused "
            f"again and kept, {r['already_running']} already running",
        ),
        ("starts refused by the cap", f"{load['starts_refused_by_cap']}", "ResourceLimitExceeded"),
        (
            "trigger invocations",
            f"{load['trigger_invocations']}",
            f"{load['failed_invocations']} failed (StartFailed)",
        ),
        ("left in the DLQ", f"{load['dlq_left']}", ""),
        (
            "drained in",
            f"{load['drain_seconds']:.1f} s",
            f"{load['seconds_per_upload']:.3f} s/upload with {load['workers']} runner workers",
        ),
    ]
    if baseline is not None:
        ratio = load["seconds_per_upload"] / baseline["seconds_per_upload"]
        load["ratio_to_uncapped"] = round(ratio, 3)
        rows.append(
            (
                "vs no cap (baseline)",
                f"x{ratio:.2f}",
                f"{baseline['uploads']} uploads uncapped: {baseline['seconds_per_upload']:.3f} s/upload, "
                f"{baseline['executions']} executions, {baseline['lost']} lost, "
                f"{baseline['duplicated']} duplicated",
            )
        )
    width = max(len(label) for label, _, _ in rows)
    print(f"\nload: {load['uploads']} uploads in a burst against a cap of {load['cap']} executions")
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>9}  {note}".rstrip())
    print(f"  result: {'PASS' if verdict(load) else 'FAIL'}", flush=True)


def run_bursts(
    runtime: Runtime, tally: Tally, file: Path, args: argparse.Namespace
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The uncapped baseline burst (unless --baseline 0), then the burst against the cap."""
    baseline = None
    if args.baseline:
        print(f"baseline: {args.baseline} uploads, no cap ...", flush=True)
        with capped(ExecutionCap(runtime.emulator.region)) as cap:
            baseline = burst(
                runtime,
                cap,
                tally,
                file,
                args.rows,
                count=args.baseline,
                folder="baseline",
                timeout=args.timeout,
            )
        print(
            f"  drained in {baseline['drain_seconds']:.1f} s, {baseline['executions']} executions "
            f"({'PASS' if verdict(baseline) else 'FAIL'})",
            flush=True,
        )
    print(f"load: {args.uploads} uploads, cap {args.cap} ...", flush=True)
    with capped(ExecutionCap(runtime.emulator.region, args.cap)) as cap:
        load = burst(
            runtime, cap, tally, file, args.rows, count=args.uploads, folder="load", timeout=args.timeout
        )
    return baseline, load


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=1000, help="uploads in the burst (%(default)s)")
    parser.add_argument("--cap", type=int, default=50, help="concurrent executions allowed (%(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="runner workers (%(default)s)")
    parser.add_argument("--rows", type=int, default=5, help="rows per uploaded file (%(default)s)")
    parser.add_argument(
        "--baseline",
        type=int,
        default=100,
        help="uploads of the uncapped baseline burst; 0: none (%(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    args = parser.parse_args()
    if args.cap < 1 or args.uploads < 1:
        parser.error("--cap and --uploads must be at least 1")

    results: dict[str, Any] = {"command": "python bench/load_burst.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp) / "data", layout="named", rows=args.rows, seed=3)
        tally = Tally()
        runtime = Runtime(
            stacks=[StackRequest("load")], workers=args.workers, notify=tally, scratch_dir=Path(tmp)
        )
        with runtime:
            runtime.warm_up()
            # The redrive runs the trigger handler in this process: with the deployed function's settings.
            with environment(runtime.stacks[0].functions[TRIGGER].environment):
                baseline, load = run_bursts(runtime, tally, data.out_dir / "Caravan.csv", args)
    if baseline is not None:
        results["baseline"] = baseline
    results["load"] = load
    print_table(load, baseline)
    results["pass"] = verdict(load) and (baseline is None or verdict(baseline))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
