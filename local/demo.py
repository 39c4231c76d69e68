"""``python -m local demo``: the whole flow on generated data, as progress lines, in two stacks
(``TriggerMode=object`` and ``marker``) in one emulator; the scenario is in docs/local-runtime.md ("The demo")
and ``tests/e2e/test_local_demo.py`` checks it. The exit status says whether every run ended as it should.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml

from coilgen import Generated, generate
from coilgen.dictionary import COIL
from etl.schema import load
from local import ROOT
from local.cli import Progress
from local.emulator import Quotas
from local.runtime import Runtime, RuntimeStartError, StackRequest, render_cached

OBJECT_KEY, MARKER, BAD_KEY = "raw/demo/Caravan.csv", "raw/demo-seed/", "raw/demo/garbage.csv"
BURST, BURST_FOLDER, BURST_ROWS = 24, "raw/demo-burst/", 5  # more than 20 executions and 4 instances
ROUTED, ROUTED_KEY = "claims-training", "raw/claims/date=2026-11-30/claims.csv"
ROUTE = {
    "prefix": "raw/claims/",
    "pattern": r"date=(?P<date>\d{4}-\d{2}-\d{2})/[^/]+\.csv",
    "pipeline": ROUTED,
    "parameters": {"InputDataUrl": "{snapshot_url}", "RunDate": "{date}"},
}


def is_output_of(output_url: str, key: str, raw_prefix: str = "raw/", clean_prefix: str = "clean/") -> bool:
    """Whether an execution's ``OutputDataUrl`` is one of ``key``'s (an object, or a marker's folder):
    the trigger writes to ``<clean prefix><key under the raw prefix>/<upload id>/``."""
    return f"/{clean_prefix}{key.removeprefix(raw_prefix).rstrip('/')}/" in output_url


def runs(pipeline: str, key: str | None = None) -> list[dict[str, Any]]:
    """The executions of ``pipeline`` (on ``key``): their summaries, with their ``Parameters``."""
    sagemaker, found = boto3.client("sagemaker"), []
    for page in sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline):
        for run in page["PipelineExecutionSummaries"]:
            listed = sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=run["PipelineExecutionArn"]
            )
            run["Parameters"] = {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}
            if key is None or is_output_of(run["Parameters"].get("OutputDataUrl", ""), key):
                found.append(run)
    return found


@dataclass
class Demo:
    """The demo's data and progress lines, its runtime, and the first upload's S3 event (to resend)."""

    data: dict[str, Generated]
    progress: Progress
    runtime: Runtime = field(init=False)
    event: str | None = None
    quiet: set[str] = field(default_factory=set)  # the burst's executions

    @classmethod
    def create(cls, folder: Path, progress: Progress, rows: int = 5000, **options: Any) -> Demo:
        """The data generated in ``folder``; the runtime (``Runtime``'s ``options``) with both stacks,
        the demo's routes (the shipped ones, a dataset route first) and the routed pipeline's stand-in."""
        faults: Any = {"faults": ["bad-values"], "fault_rate": 0.002}
        data = {
            "object": generate(folder / "object", layout="named", rows=rows, seed=2000, **faults),
            "marker": generate(folder / "marker", layout="seed", rows=9822, seed=2001, **faults),
            "burst": generate(folder / "burst", layout="named", rows=BURST_ROWS, seed=2002),
        }
        demo = cls(data, progress)
        routes = folder / "routes.yaml"  # JSON is YAML
        shipped = yaml.safe_load((ROOT / "routes.yaml").read_text(encoding="utf-8"))
        routes.write_text(json.dumps({"routes": [ROUTE, *shipped["routes"]]}), encoding="utf-8")
        stacks = [
            StackRequest("coil-demo-object", {"TriggerMode": "object"}),
            StackRequest("coil-demo-marker", {"TriggerMode": "marker", "PipelineName": "coil-demo-marker"}),
        ]
        demo.runtime = Runtime(
            stacks=stacks, routes=routes, stand_ins=[ROUTED], notify=demo.notify, **options
        )
        return demo

    def notify(self, kind: str, details: dict[str, Any]) -> None:
        keys = details.get("keys") or [str(details.get("key") or "")]  # a batch's, or a trigger line's
        if kind == "invoked" and keys == [OBJECT_KEY] and self.event is None:
            self.event = details["bodies"][0]
        if is_output_of((details.get("parameters") or {}).get("OutputDataUrl", ""), BURST_FOLDER):
            self.quiet.add(details["arn"])
        # the burst is summed up, not told line by line
        if not all(k.startswith(BURST_FOLDER) for k in keys) and details.get("arn") not in self.quiet:
            self.progress.event(kind, details)

    def upload(self, stack: int, key: str, body: bytes, say: bool = True) -> None:
        bucket = self.runtime.stacks[stack].ref("DataBucket")
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        if say:
            self.progress.line("upload", f"{key} ({self.runtime.stacks[stack].name})")

    def settle(self, timeout: float = 120) -> None:
        if not self.runtime.wait_idle(timeout):
            self.progress.line("WARNING", f"the runtime is still busy after {timeout:.0f} s")

    def outputs(self, pipeline: str, key: str) -> list[dict[str, Any]]:
        """``key``'s runs, with a line for the outputs of each that succeeded."""
        found = runs(pipeline, key)
        for run in (r for r in found if r["PipelineExecutionStatus"] == "Succeeded"):
            bucket, _, prefix = run["Parameters"]["OutputDataUrl"][5:].partition("/")
            report = boto3.client("s3").get_object(Bucket=bucket, Key=prefix + "report.json")["Body"].read()
            totals = json.loads(report)["totals"]
            written, rejected = totals["rows_written"], totals["rows_rejected"]
            self.progress.line(
                "output", f"{prefix}: full_data.csv ({written} rows), rejects.csv ({rejected}), report.json"
            )
        return found

    def run(self) -> bool:
        """The scenario (module docstring); whether every run ended as it should."""
        objects, markers = (stack.parameters["PipelineName"] for stack in self.runtime.stacks)
        folder, small = self.data["marker"].out_dir, (self.data["burst"].out_dir / "Caravan.csv").read_bytes()
        self.upload(0, OBJECT_KEY, (self.data["object"].out_dir / "Caravan.csv").read_bytes())
        for name in ("train.csv", "test.csv", "gt.csv", "col_info.csv"):
            self.upload(1, MARKER + name, (folder / name).read_bytes(), say=False)
        self.upload(1, MARKER + "_SUCCESS", b"")
        self.upload(0, BAD_KEY, b"this,is,not\nCOIL 2000 data\n")
        self.settle()
        first, seed = self.outputs(objects, OBJECT_KEY), self.outputs(markers, MARKER)

        mapping = next(m for m in self.runtime.stacks[0].event_sources if m.function_id == "TriggerFunction")
        boto3.client("sqs").send_message(QueueUrl=mapping.queue_url, MessageBody=self.event or "{}")
        self.progress.line("duplicate", f"the S3 event of {OBJECT_KEY} delivered a second time")
        self.settle()
        self.progress.line("duplicate", f"{len(runs(objects, OBJECT_KEY))} execution of {OBJECT_KEY} in all")

        self.upload(0, ROUTED_KEY, small)
        self.settle()

        began, quotas = time.monotonic(), self.runtime.quotas
        refused = self.runtime.emulator.refused_starts, self.runtime.runner.stats.refused_jobs  # type: ignore[union-attr]
        self.progress.line(
            "burst",
            f"{BURST} files at once under {BURST_FOLDER}, against {quotas.max_concurrent_executions} "
            f"executions and {quotas.max_processing_instances} instances",
        )
        keys = [f"{BURST_FOLDER}file-{n:02d}.csv" for n in range(BURST)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda key: self.upload(0, key, small, say=False), keys))
        self.settle(timeout=240)
        burst = runs(objects, BURST_FOLDER)
        ok = sum(r["PipelineExecutionStatus"] == "Succeeded" for r in burst)
        starts = self.runtime.emulator.refused_starts - refused[0]
        jobs = self.runtime.runner.stats.refused_jobs - refused[1]  # type: ignore[union-attr]
        self.progress.line(
            "burst",
            f"{ok} of {BURST} Succeeded in {time.monotonic() - began:.1f} s, no one acting; "
            f"ResourceLimitExceeded: {starts} start(s) waited in the queue, {jobs} job refusals retried",
        )
        bad, routed = runs(objects, BAD_KEY), runs(ROUTED)
        statuses = [r["PipelineExecutionStatus"] for r in first + seed + bad + burst]
        return statuses == ["Succeeded"] * 2 + ["Failed"] + ["Succeeded"] * BURST and len(routed) == 1


def run_demo(
    *, rows: int = 5000, quotas: Quotas | None = None, time_scale: float, workdir: Path | None = None
) -> int:
    """The demo; its exit status."""
    progress = Progress()
    if (shipped := load()).names != COIL.names:  # the pipeline ships etl/schema.json; the data is COIL's
        progress.line("FAILED", f"etl/schema.json is {shipped.title!r}, the demo's data is COIL 2000's")
        return 2
    if not render_cached():
        progress.line(
            "render", "the definition is rendered with the SageMaker SDK as sam build does (10-40 s)"
        )
    with tempfile.TemporaryDirectory(prefix="local-demo-", dir=workdir) as tmp:
        demo = Demo.create(Path(tmp), progress, rows, quotas=quotas, time_scale=time_scale)
        progress.line(
            "generate", f"{rows} rows in Caravan.csv, 9822 in the seed's 4 files, {BURST} small files"
        )
        try:
            with demo.runtime:
                demo.runtime.warm_up()
                passed = demo.run()
                outcome = "passed" if passed else "FAILED: a run did not end as it should"
                progress.line("demo", f"{outcome} in {progress.elapsed():.1f} s; stopping the runtime")
        except RuntimeStartError as exc:
            progress.line("FAILED", str(exc))
            return 2
    return 0 if passed else 1


__all__ = ["Demo", "is_output_of", "run_demo", "runs"]
