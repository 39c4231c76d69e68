"""Local runtime benchmark: upload -> execution latency, a burst of uploads, and the demo's wall time.

    .venv/bin/python bench/local_latency.py [--uploads 30] [--burst 200] [--no-burst] [--no-demo]

1. Latency: ``--uploads`` uploads one after the other (0.5 s apart) into a running runtime; for each,
   the time from the upload's return to the trigger's StartPipelineExecution returning ("started"),
   and to the runner picking the execution up ("running"). Target: median started <= 1 s. Baseline:
   a bare StartPipelineExecution call against the same emulator, in the same process.
2. Burst: ``--burst`` uploads at once (8 threads); then waits until every execution finished. Target:
   as many executions as uploads, none lost, none duplicated, each Succeeded with its full_data.csv.
   Baseline: the ETL run directly (``python etl.py``) on the same file, sequentially; the ratio is the
   runner's cost per execution per worker against it.
3. Demo: ``python -m local demo`` in a subprocess, wall time. Target: <= 30 s (render cache warm).

Prints the figures and writes bench/results/local.json.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3

from coilgen import generate
from local.runtime import Runtime, StackRequest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "local.json"


class Clock:
    """Notification times by key (trigger returned) and by execution ARN (runner picked it up)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: dict[str, float] = {}  # key -> when StartPipelineExecution returned (trigger done)
        self.arn_of: dict[str, str] = {}
        self.picked: dict[str, float] = {}  # ARN -> when the runner saw it (then it waits for a worker)
        self.running: dict[str, float] = {}  # ARN -> when a worker started running it
        self.done: dict[str, tuple[str, float]] = {}

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.lock:
            if kind == "invoked":
                for started in (details.get("result") or {}).get("started") or []:
                    self.started.setdefault(started["key"], now)
                    self.arn_of.setdefault(started["key"], started["executionArn"])
            elif kind == "execution-queued":
                self.picked.setdefault(details["arn"], now)
            elif kind == "execution-started":
                self.running.setdefault(details["arn"], now)
            elif kind in ("execution-succeeded", "execution-failed"):
                self.done[details["arn"]] = (kind, now)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(runtime: Runtime, clock: Clock, file: Path, count: int) -> dict[str, Any]:
    s3, bucket = boto3.client("s3"), runtime.stacks[0].ref("DataBucket")
    pipeline = runtime.stacks[0].parameters["PipelineName"]
    sagemaker = boto3.client("sagemaker")
    baseline = []
    for n in range(10):  # the floor: one StartPipelineExecution, nothing around it
        began = time.monotonic()
        sagemaker.start_pipeline_execution(
            PipelineName=pipeline,
            PipelineParameters=[
                {"Name": "InputDataUrl", "Value": f"s3://{bucket}/raw/latency/baseline-{n}.csv"},
                {"Name": "OutputDataUrl", "Value": f"s3://{bucket}/clean/latency/baseline-{n}.csv/"},
            ],
        )
        baseline.append(time.monotonic() - began)
    s3.upload_file(str(file), bucket, "raw/latency/baseline-0.csv")  # the baseline executions need input
    for n in range(1, 10):
        s3.copy_object(
            Bucket=bucket,
            Key=f"raw/latency/baseline-{n}.csv",
            CopySource=f"{bucket}/raw/latency/baseline-0.csv",
        )
    runtime.wait_idle(120)
    uploaded: dict[str, float] = {}
    for n in range(count):
        key = f"raw/latency/upload-{n:03d}.csv"
        s3.upload_file(str(file), bucket, key)
        uploaded[key] = time.monotonic()
        time.sleep(0.5)
    runtime.wait_idle(300)
    started = [clock.started[k] - t for k, t in uploaded.items() if k in clock.started]
    picked = [
        clock.picked[clock.arn_of[k]] - t for k, t in uploaded.items() if clock.arn_of.get(k) in clock.picked
    ]
    running = [
        clock.running[clock.arn_of[k]] - t
        for k, t in uploaded.items()
        if clock.arn_of.get(k) in clock.running
    ]
    return {
        "uploads": count,
        "started": len(started),
        "to_started_median_s": statistics.median(started),
        "to_started_p90_s": percentile(started, 0.9),
        "to_started_max_s": max(started),
        "to_picked_up_median_s": statistics.median(picked),
        "to_running_median_s": statistics.median(running),
        "baseline_start_call_median_s": statistics.median(baseline),
        "ratio_to_baseline": statistics.median(started) / statistics.median(baseline),
    }


def burst(runtime: Runtime, clock: Clock, file: Path, count: int, workers: int) -> dict[str, Any]:
    s3, bucket = boto3.client("s3"), runtime.stacks[0].ref("DataBucket")
    pipeline = runtime.stacks[0].parameters["PipelineName"]
    keys = [f"raw/burst/file-{n:04d}.csv" for n in range(count)]
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.upload_file(str(file), bucket, key), keys))
    uploaded = time.monotonic() - began
    sagemaker = boto3.client("sagemaker")
    expected = {f"s3://{bucket}/{k}" for k in keys}
    deadline = time.monotonic() + 60 + 5 * count
    inputs: list[str] = []
    statuses: dict[str, str] = {}
    while time.monotonic() < deadline:
        summaries = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
        statuses = {s["PipelineExecutionArn"]: s["PipelineExecutionStatus"] for s in summaries}
        mine = [
            a
            for a in statuses
            if a in clock.arn_of.values() and unquote_plus(_key_of(clock, a)).startswith("raw/burst/")
        ]
        if len(mine) >= count and all(statuses[a] != "Executing" for a in mine):
            break
        time.sleep(0.5)
    drained = time.monotonic() - began
    for arn in statuses:
        params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)[
            "PipelineParameters"
        ]
        url = {p["Name"]: p["Value"] for p in params}.get("InputDataUrl", "")
        if url in expected:
            inputs.append(url)
    by_input = {url: inputs.count(url) for url in expected}
    succeeded = [a for a in statuses if statuses[a] == "Succeeded" and a in clock.arn_of.values()]
    outputs = 0
    for key in keys:
        head = s3.list_objects_v2(Bucket=bucket, Prefix=f"clean/{key[len('raw/') :]}/full_data.csv")
        outputs += head.get("KeyCount", 0)

    # the baseline: the ETL itself, run directly on the same file, sequentially
    etl = ROOT / "etl" / "etl.py"
    direct = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(5):
            out = Path(tmp) / f"out-{n}"
            out.mkdir()
            began_direct = time.monotonic()
            subprocess.run(
                [sys.executable, str(etl), "--input-dir", str(file.parent), "--output-dir", str(out)],
                check=True,
                capture_output=True,
            )
            direct.append(time.monotonic() - began_direct)
    per_execution = drained * workers / count
    return {
        "uploads": count,
        "upload_seconds": uploaded,
        "executions": len(inputs),
        "lost": sum(1 for c in by_input.values() if c == 0),
        "duplicated": sum(c - 1 for c in by_input.values() if c > 1),
        "succeeded": len([a for a in succeeded if _key_of(clock, a).startswith("raw/burst/")]),
        "outputs_with_full_data": outputs,
        "drain_seconds": drained,
        "executions_per_second": count / drained,
        "workers": workers,
        "direct_etl_median_s": statistics.median(direct),
        "runner_cost_per_execution_per_worker_s": per_execution,
        "ratio_to_direct_etl": per_execution / statistics.median(direct),
    }


def _key_of(clock: Clock, arn: str) -> str:
    for key, value in clock.arn_of.items():
        if value == arn:
            return key
    return ""


def demo() -> dict[str, Any]:
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "local", "demo"], cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - began
    return {
        "exit_status": result.returncode,
        "wall_seconds": wall,
        "last_line": result.stdout.strip().splitlines()[-2:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-burst", action="store_true")
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp), layout="named", rows=20, seed=1)
        file = data.out_dir / "Caravan.csv"
        with Runtime(
            stacks=[StackRequest("bench")], workers=args.workers, notify=clock, scratch_dir=Path(tmp)
        ) as rt:
            rt.warm_up()
            results["latency"] = latency(rt, clock, file, args.uploads)
            lat = results["latency"]
            verdict = "PASS" if lat["to_started_median_s"] <= 1 else "FAIL"
            baseline_ms = lat["baseline_start_call_median_s"] * 1000
            print(
                f"upload -> execution started: median {lat['to_started_median_s']:.3f} s, "
                f"p90 {lat['to_started_p90_s']:.3f} s, max {lat['to_started_max_s']:.3f} s "
                f"over {lat['uploads']} uploads (target median <= 1 s: {verdict}); "
                f"x{lat['ratio_to_baseline']:.1f} a bare StartPipelineExecution ({baseline_ms:.0f} ms)\n"
                f"  runner picked it up: median {lat['to_picked_up_median_s']:.3f} s; "
                f"its job started: median {lat['to_running_median_s']:.3f} s "
                f"(queued for one of {args.workers} workers)",
                flush=True,
            )
            if not args.no_burst:
                results["burst"] = b = burst(rt, clock, file, args.burst, args.workers)
                counts = {b["uploads"], b["executions"], b["succeeded"], b["outputs_with_full_data"]}
                verdict = "PASS" if len(counts) == 1 and not (b["lost"] or b["duplicated"]) else "FAIL"
                print(
                    f"burst of {b['uploads']} uploads: {b['executions']} executions, {b['lost']} lost, "
                    f"{b['duplicated']} duplicated, {b['succeeded']} succeeded, "
                    f"{b['outputs_with_full_data']} outputs ({verdict})\n"
                    f"  drained in {b['drain_seconds']:.1f} s ({b['executions_per_second']:.2f}/s with "
                    f"{b['workers']} workers); per execution per worker "
                    f"{b['runner_cost_per_execution_per_worker_s']:.2f} s = x{b['ratio_to_direct_etl']:.2f} "
                    f"the ETL run directly ({b['direct_etl_median_s']:.2f} s)",
                    flush=True,
                )
    if not args.no_demo:
        results["demo"] = d = demo()
        print(
            f"make demo: exit {d['exit_status']}, wall {d['wall_seconds']:.1f} s "
            f"(target <= 30 s: {'PASS' if d['exit_status'] == 0 and d['wall_seconds'] <= 30 else 'FAIL'})",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
