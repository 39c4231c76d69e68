"""Local runtime benchmark: upload -> execution latency, and the demo's wall time.

    .venv/bin/python bench/local_latency.py [--uploads 30] [--no-demo]

1. Latency: ``--uploads`` uploads one after the other (0.5 s apart) into a running runtime (default
   quotas); for each, the time from the upload's return to the trigger's invocation returning with the
   execution started ("started"), to the runner picking the execution up, and to its job starting.
   Target: median started <= 1 s. Baseline: a bare StartPipelineExecution call against the same
   emulator, in the same process.
2. Demo: ``python -m local demo`` in a subprocess, wall time. Target: <= 30 s (render cache warm).

Bursts against the quotas are bench/load_burst.py's. Prints the figures and writes
bench/results/local.json (with the "report" bench/figures.py renders).
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
from pathlib import Path
from typing import Any

import boto3

from coilgen import generate
from local.demo import is_output_of
from local.runtime import Runtime, StackRequest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "local.json"
FOLDER = "raw/latency/"


class Clock:
    """When each key's invocation returned, and when the runner picked up and ran its execution."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.invoked: dict[str, float] = {}  # key -> when its batch's invocation returned
        self.picked: dict[str, float] = {}  # ARN -> when the runner saw it
        self.running: dict[str, tuple[str, float]] = {}  # ARN -> (OutputDataUrl, when its run started)

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        now = time.monotonic()
        with self.lock:
            if kind == "invoked":
                for key in details.get("keys") or []:
                    self.invoked.setdefault(key, now)
            elif kind == "execution-queued":
                self.picked.setdefault(details["arn"], now)
            elif kind == "execution-started":
                url = str((details.get("parameters") or {}).get("OutputDataUrl", ""))
                self.running.setdefault(details["arn"], (url, now))

    def arn_of(self, key: str) -> str | None:
        with self.lock:
            return next((arn for arn, (url, _) in self.running.items() if is_output_of(url, key)), None)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(runtime: Runtime, clock: Clock, file: Path, count: int) -> dict[str, Any]:
    s3, bucket = boto3.client("s3"), runtime.stacks[0].ref("DataBucket")
    pipeline = runtime.stacks[0].parameters["PipelineName"]
    sagemaker = boto3.client("sagemaker")
    s3.upload_file(str(file), bucket, "baseline/input.csv")  # outside raw/: starts nothing by itself
    baseline = []
    for n in range(10):  # the floor: one StartPipelineExecution, nothing around it
        began = time.monotonic()
        sagemaker.start_pipeline_execution(
            PipelineName=pipeline,
            PipelineParameters=[
                {"Name": "InputDataUrl", "Value": f"s3://{bucket}/baseline/input.csv"},
                {"Name": "OutputDataUrl", "Value": f"s3://{bucket}/clean/baseline/{n}/"},
            ],
        )
        baseline.append(time.monotonic() - began)
    runtime.wait_idle(120)
    uploaded: dict[str, float] = {}
    for n in range(count):
        key = f"{FOLDER}upload-{n:03d}.csv"
        s3.upload_file(str(file), bucket, key)
        uploaded[key] = time.monotonic()
        time.sleep(0.5)
    runtime.wait_idle(300)
    started = [clock.invoked[k] - t for k, t in uploaded.items() if k in clock.invoked]
    arns = {k: clock.arn_of(k) for k in uploaded}
    picked = [clock.picked[a] - uploaded[k] for k, a in arns.items() if a in clock.picked]
    running = [clock.running[a][1] - uploaded[k] for k, a in arns.items() if a in clock.running]
    return {
        "uploads": count,
        "started": len(started),
        "executions": sum(1 for a in arns.values() if a),
        "to_started_median_s": round(statistics.median(started), 3),
        "to_started_p90_s": round(percentile(started, 0.9), 3),
        "to_started_max_s": round(max(started), 3),
        "to_picked_up_median_s": round(statistics.median(picked), 3),
        "to_running_median_s": round(statistics.median(running), 3),
        "baseline_start_call_median_s": round(statistics.median(baseline), 4),
        "ratio_to_baseline": round(statistics.median(started) / statistics.median(baseline), 2),
    }


def demo() -> dict[str, Any]:
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "local", "demo"], cwd=ROOT, capture_output=True, text=True)
    return {
        "exit_status": result.returncode,
        "wall_seconds": round(time.monotonic() - began, 1),
        "last_line": result.stdout.strip().splitlines()[-2:],
    }


def report(results: dict[str, Any], command: str) -> dict[str, Any]:
    lat = results["latency"]
    rows: list[list[Any]] = [
        ["upload -> execution started, median s", lat["to_started_median_s"], "<= 1"],
        ["upload -> execution started, p90 s", lat["to_started_p90_s"], "-"],
        ["upload -> execution started, max s", lat["to_started_max_s"], "-"],
        ["upload -> runner picked it up, median s", lat["to_picked_up_median_s"], "-"],
        ["upload -> its job started, median s", lat["to_running_median_s"], "-"],
        ["started median / a bare StartPipelineExecution", lat["ratio_to_baseline"], "-"],
    ]
    if "demo" in results:
        rows.append(["make demo wall s (render cached)", results["demo"]["wall_seconds"], "<= 30"])
    return {
        "title": "Local runtime latency",
        "command": command,
        "tables": [
            {
                "caption": f"{lat['uploads']} uploads 0.5 s apart through the local runtime (default quotas)",
                "columns": ["figure", "value", "target"],
                "rows": rows,
            }
        ],
        "notes": [
            f"{lat['executions']} executions for {lat['uploads']} uploads; a bare StartPipelineExecution "
            f"against the same emulator takes {lat['baseline_start_call_median_s']} s (median).",
            "'Started' is when the trigger's invocation returned (it snapshots the upload, then starts).",
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        data = generate(Path(tmp), layout="named", rows=20, seed=1)
        with Runtime(stacks=[StackRequest("bench")], notify=clock, scratch_dir=Path(tmp)) as rt:
            rt.warm_up()
            results["latency"] = lat = latency(rt, clock, data.out_dir / "Caravan.csv", args.uploads)
    verdict = "PASS" if lat["to_started_median_s"] <= 1 and lat["executions"] == args.uploads else "FAIL"
    print(json.dumps(lat, indent=2), f"\nlatency: {verdict}", flush=True)
    if not args.no_demo:
        results["demo"] = d = demo()
        ok = d["exit_status"] == 0 and d["wall_seconds"] <= 30
        print(f"make demo: exit {d['exit_status']}, wall {d['wall_seconds']} s: {'PASS' if ok else 'FAIL'}")
    results["report"] = report(results, " ".join([".venv/bin/python bench/local_latency.py", *sys.argv[1:]]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
