"""Load: 1,000 uploads at once through the local runtime, against SageMaker's default quotas.

    .venv/bin/python bench/load_burst.py [--uploads 1000] [--overwrites 100]
        [--max-concurrent-executions 20] [--max-processing-instances 4]

The local runtime is an account with quotas (``python -m local up``'s defaults): a StartPipelineExecution
beyond 20 Executing answers ResourceLimitExceeded, and a processing job beyond 4 instances is refused
and retried by the step's retry policies (waits scaled as printed). Nobody acts: no redrive, no manual
start; the benchmark only uploads and waits. Two bursts, each into a fresh stack:

1. ``--uploads`` distinct keys at once (8 upload threads). Each file holds its own slice of rows of a
   generated COIL 2000 file (3 to 7 rows, a different offset per key).
2. the overwrite variant: ``--overwrites`` keys uploaded, then each uploaded again with other rows
   while its first run is pending (the burst keeps it waiting): two runs per key, each on its own bytes.

Figures, read from the emulator, not from the benchmark's bookkeeping: executions per upload (lost,
duplicated), their status, whether each output's full_data.csv holds exactly its upload's rows (the ETL
run once on the whole generated file, sliced), messages left in any dead-letter queue, the refusals
the quotas made, and the drain time as a ratio to the quota-bound minimum: uploads x mean job time /
slots of the tighter quota (min(executions, instances / instances per job)). Goal: <= 1.3.

Writes bench/results/load_burst.json (with the "report" bench/figures.py renders).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from coilgen import generate
from local.demo import is_output_of
from local.emulator import Quotas
from local.runtime import Runtime, StackRequest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load_burst.json"
GOAL = 1.3
UPLOAD_THREADS = 8


class Watch:
    """The most messages any delivery saw received (ApproximateReceiveCount), from notifications."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.max_receive_count = 0
        self.item_failures = 0
        self.last_finished = 0.0  # monotonic time the last execution finished

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        if kind in ("execution-succeeded", "execution-failed"):
            with self.lock:
                self.last_finished = time.monotonic()
        elif kind in ("invoked", "invoke-error"):
            with self.lock:
                self.max_receive_count = max(self.max_receive_count, int(details.get("max_receive_count", 0)))
                self.item_failures += int(details.get("failed") or 0)


class Rows:
    """A generated file's rows, and what the ETL makes of them (run once, then sliced per upload)."""

    def __init__(self, folder: Path, count: int) -> None:
        data = generate(folder / "rows", layout="named", rows=count, seed=7)
        source = data.out_dir / "Caravan.csv"
        lines = source.read_text(encoding="utf-8").splitlines()
        self.header, self.rows = lines[0], lines[1:]
        out = folder / "clean"
        out.mkdir()
        command = [sys.executable, "-m", "etl", "--input-dir", str(data.out_dir)]
        command += ["--output-dir", str(out), "--input-url", "s3://rows/raw/Caravan.csv"]
        subprocess.run(command, check=True, capture_output=True)
        clean = (out / "full_data.csv").read_text(encoding="utf-8").splitlines()
        self.clean_header, self.clean = clean[0], clean[1:]
        if len(self.clean) != len(self.rows):
            raise RuntimeError("the generated rows must all be clean (no faults)")

    @staticmethod
    def span(n: int) -> tuple[int, int]:
        """Upload ``n``'s rows: 3 to 7 of them, at an offset of its own."""
        return n, n + 3 + n % 5

    def body(self, n: int) -> bytes:
        start, end = self.span(n)
        return ("\n".join([self.header, *self.rows[start:end]]) + "\n").encode()

    def expected(self, n: int) -> list[str]:
        start, end = self.span(n)
        return [self.clean_header, *self.clean[start:end]]


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def executions(sagemaker: Any, pipeline: str) -> list[dict[str, Any]]:
    """Every execution of the pipeline with its status and parameters."""
    found = []
    for page in sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline):
        for summary in page["PipelineExecutionSummaries"]:
            arn = summary["PipelineExecutionArn"]
            params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
            values = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}
            found.append({"arn": arn, "status": summary["PipelineExecutionStatus"], **values})
    return found


def output_lines(s3: Any, output_url: str) -> list[str] | None:
    bucket, _, prefix = output_url[5:].partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=prefix.rstrip("/") + "/full_data.csv")["Body"].read()
    except ClientError:
        return None
    lines: list[str] = body.decode("utf-8").splitlines()
    return lines


def burst(
    runtime: Runtime, watch: Watch, rows: Rows, *, keys: int, overwrite: bool, timeout: float
) -> dict[str, Any]:
    """``keys`` uploads at once (then each key again if ``overwrite``); waits for the drain; the figures."""
    stack = runtime.stacks[-1]
    bucket, pipeline = stack.ref("DataBucket"), stack.parameters["PipelineName"]
    s3, sqs, sagemaker = boto3.client("s3"), boto3.client("sqs"), boto3.client("sagemaker")
    runner = runtime.runner
    assert runner is not None
    folder = "overwrite" if overwrite else "burst"
    uploads = [(n, f"raw/{folder}/file-{n:04d}.csv", n) for n in range(keys)]  # (upload, key, rows slice)
    if overwrite:  # the second version of each key: other rows
        uploads += [(keys + n, key, keys + n) for n, key, _ in uploads]
    refused_starts, stats = runtime.emulator.refused_starts, runner.stats
    refused_jobs, retries, jobs_before = stats.refused_jobs, stats.retries, len(stats.job_durations)

    began = time.monotonic()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        first = uploads[:keys]
        list(pool.map(lambda u: s3.put_object(Bucket=bucket, Key=u[1], Body=rows.body(u[2])), first))
        list(pool.map(lambda u: s3.put_object(Bucket=bucket, Key=u[1], Body=rows.body(u[2])), uploads[keys:]))
    uploaded = time.monotonic() - began
    queues = [m.queue_url for m in stack.event_sources]
    resources = stack.resolver.template.resources
    other_queues = [  # the dead-letter queue(s): every queue of the stack no mapping consumes
        stack.ref(i)
        for i, r in resources.items()
        if r.get("Type") == "AWS::SQS::Queue" and stack.ref(i) not in queues
    ]

    drained: float | None = None
    last_line = began
    while time.monotonic() - began < timeout:
        time.sleep(1)
        if time.monotonic() - last_line >= 30:
            last_line = time.monotonic()
            print(
                f"  {last_line - began:5.0f} s: {runner.stats.succeeded} succeeded, "
                f"{runtime.emulator.executing()} Executing, "
                f"{sum(queue_depth(sqs, q) for q in queues)} queued",
                flush=True,
            )
        if any(queue_depth(sqs, q) for q in queues) or not runtime.idle():
            continue
        found = executions(sagemaker, pipeline)
        if len(found) >= len(uploads) and all(e["status"] != "Executing" for e in found):
            drained = watch.last_finished - began  # when the last one finished, not when this loop looked
            break
    seconds = drained if drained is not None else time.monotonic() - began

    found = executions(sagemaker, pipeline)
    keys_of = sorted({k for _, k, _ in uploads})
    by_key: dict[str, list[dict[str, Any]]] = {}
    for execution in found:
        key = next((k for k in keys_of if is_output_of(execution.get("OutputDataUrl", ""), k)), None)
        by_key.setdefault(str(key), []).append(execution)
    own_rows = 0
    for key in {k for _, k, _ in uploads}:
        expected = sorted(tuple(rows.expected(s)) for _, k, s in uploads if k == key)
        outputs = [output_lines(s3, e.get("OutputDataUrl", "")) for e in by_key.get(key, [])]
        got = sorted(tuple(o) for o in outputs if o is not None)
        own_rows += sum(1 for item in got if item in expected)
        own_rows -= max(0, len(got) - len(set(got)))  # two runs on the same bytes: one is not its own
    per_key_expected = 2 if overwrite else 1
    jobs = stats.job_durations[jobs_before:]
    mean_job = statistics.fmean(jobs) if jobs else float("nan")
    quotas = runtime.quotas
    slots = min(
        quotas.max_concurrent_executions or len(uploads),
        quotas.max_processing_instances or len(uploads),  # one instance per job (the default count)
    )
    minimum = len(uploads) * mean_job / slots
    statuses = Counter(e["status"] for e in found)
    return {
        "uploads": len(uploads),
        "keys": keys,
        "overwrite": overwrite,
        "upload_seconds": round(uploaded, 2),
        "drained": drained is not None,
        "drain_seconds": round(seconds, 1),
        "executions": len(found),
        "succeeded": statuses.get("Succeeded", 0),
        "statuses": dict(statuses),
        "lost": sum(max(0, per_key_expected - len(v)) for k, v in by_key.items() if k != "None")
        + per_key_expected * (keys - len([k for k in by_key if k != "None"])),
        "duplicated": sum(max(0, len(v) - per_key_expected) for k, v in by_key.items() if k != "None"),
        "unmatched_executions": len(by_key.get("None", [])),
        "outputs_with_own_rows": own_rows,
        "dead_lettered": sum(queue_depth(sqs, q) for q in other_queues),
        "operator_actions": 0,  # the benchmark runs no redrive and starts nothing itself
        "starts_refused": runtime.emulator.refused_starts - refused_starts,
        "jobs_refused": stats.refused_jobs - refused_jobs,
        "step_retries": stats.retries - retries,
        "most_executing": runtime.emulator.most_executing,
        "most_instances": stats.most_instances,
        "max_receive_count": watch.max_receive_count,
        "mean_job_seconds": round(mean_job, 3),
        "slots": slots,
        "quota_bound_seconds": round(minimum, 1),
        "ratio": round(seconds / minimum, 3),
    }


def verdict(result: dict[str, Any]) -> bool:
    n = result["uploads"]
    return bool(
        result["drained"]
        and result["executions"] == result["succeeded"] == result["outputs_with_own_rows"] == n
        and result["lost"] == result["duplicated"] == result["unmatched_executions"] == 0
        and result["dead_lettered"] == result["operator_actions"] == 0
        and result["ratio"] <= GOAL
    )


def report(results: dict[str, Any], command: str) -> dict[str, Any]:
    runs = [r for r in (results.get("burst"), results.get("overwrite")) if r]
    labels = {False: "burst", True: "overwrite variant"}
    quotas = results["quotas"]
    rows = [
        [
            labels[r["overwrite"]],
            r["uploads"],
            r["succeeded"],
            r["outputs_with_own_rows"],
            r["lost"],
            r["duplicated"],
            r["dead_lettered"],
            r["operator_actions"],
            r["drain_seconds"],
            r["quota_bound_seconds"],
            r["ratio"],
            "PASS" if verdict(r) else "FAIL",
        ]
        for r in runs
    ]
    refusals = [
        [
            labels[r["overwrite"]],
            r["starts_refused"],
            r["jobs_refused"],
            r["step_retries"],
            r["most_executing"],
            r["most_instances"],
            r["max_receive_count"],
            r["mean_job_seconds"],
        ]
        for r in runs
    ]
    return {
        "title": "Bursts against SageMaker's quotas (local runtime)",
        "command": command,
        "tables": [
            {
                "caption": (
                    f"Uploads at once against {quotas['max_concurrent_executions']} concurrent executions "
                    f"and {quotas['max_processing_instances']} processing instances; no operator step. "
                    f"Ratio = drain time / (uploads x mean job time / {runs[0]['slots'] if runs else '?'} "
                    f"slots); goal <= {GOAL}"
                ),
                "columns": [
                    "run",
                    "uploads",
                    "Succeeded",
                    "own rows",
                    "lost",
                    "duplicated",
                    "in a DLQ",
                    "operator actions",
                    "drain s",
                    "quota-bound s",
                    "ratio",
                    "result",
                ],
                "rows": rows,
            },
            {
                "caption": "What the quotas refused and how it was absorbed",
                "columns": [
                    "run",
                    "starts refused (queue backoff)",
                    "jobs refused",
                    "step retries",
                    "most Executing",
                    "most instances",
                    "highest receive count",
                    "mean job s",
                ],
                "rows": refusals,
            },
        ],
        "notes": [
            "Each upload holds its own 3-7 rows; 'own rows' counts outputs whose full_data.csv is exactly "
            "the ETL of that upload's rows (overwrite variant: both versions of a key, each in its own run).",
            f"Retry waits and the trigger's queue backoff run x{results['time_scale']:.4g} of SageMaker's "
            "(docs/local-runtime.md); job times are this machine's (2 cores shared by all processes).",
            "Operator actions: none are run (no redrive, no manual start): the benchmark uploads and waits.",
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=1000, help="uploads in the burst (%(default)s)")
    parser.add_argument("--overwrites", type=int, default=100, help="keys of the overwrite variant; 0: none")
    parser.add_argument("--max-concurrent-executions", type=int, default=Quotas().max_concurrent_executions)
    parser.add_argument("--max-processing-instances", type=int, default=Quotas().max_processing_instances)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    args = parser.parse_args()
    if args.uploads < 1:
        parser.error("--uploads must be at least 1")
    quotas = Quotas(args.max_concurrent_executions, args.max_processing_instances)
    command = " ".join([".venv/bin/python bench/load_burst.py", *sys.argv[1:]])
    results: dict[str, Any] = {
        "quotas": {
            "max_concurrent_executions": quotas.max_concurrent_executions,
            "max_processing_instances": quotas.max_processing_instances,
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        rows = Rows(Path(tmp), args.uploads + 2 * args.overwrites + 8)
        for name, keys, overwrite in (("burst", args.uploads, False), ("overwrite", args.overwrites, True)):
            if not keys:
                continue
            watch = Watch()
            with Runtime(
                template=args.template,
                stacks=[StackRequest(f"load-{name}")],
                quotas=quotas,
                notify=watch,
                scratch_dir=Path(tmp),
            ) as runtime:
                results["time_scale"] = runtime.time_scale
                runtime.warm_up()
                print(f"{name}: {keys} keys{' (each uploaded twice)' if overwrite else ''} ...", flush=True)
                result = burst(runtime, watch, rows, keys=keys, overwrite=overwrite, timeout=args.timeout)
            results[name] = result
            print(json.dumps(result, indent=2), flush=True)
    results["pass"] = all(verdict(results[n]) for n in ("burst", "overwrite") if n in results)
    results["report"] = report(results, command)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"{'PASS' if results['pass'] else 'FAIL'}; results written to {RESULTS.relative_to(ROOT)}")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
