"""A burst beyond both quotas, with overwrites, through the local runtime: it drains by itself.

An account allowed 6 concurrent executions and 2 processing instances gets 24 uploads at once: 16 keys,
and 4 keys uploaded twice (the second upload while the first run waits). Every upload runs once, on its
own bytes, into its own output; the refused starts wait in the upload queue and the refused jobs are
retried by the step's retry policy; nothing reaches the dead-letter queue and nobody acts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest

from coilgen import generate
from local.demo import is_output_of
from local.emulator import Quotas
from local.runtime import Runtime, StackRequest

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
KEYS, OVERWRITTEN = 16, 4
QUOTAS = Quotas(max_concurrent_executions=6, max_processing_instances=2)


def clean_rows(folder: Path, rows: int) -> tuple[str, list[str], str, list[str]]:
    """A generated file (header, rows) and the ETL's output for it (header, rows), row for row."""
    data = generate(folder / "in", layout="named", rows=rows, seed=9)
    out = folder / "out"
    out.mkdir()
    command = [sys.executable, "-m", "etl", "--input-dir", str(data.out_dir)]
    subprocess.run([*command, "--output-dir", str(out), "--input-url", "s3://b/raw/Caravan.csv"], check=True)
    raw = (data.out_dir / "Caravan.csv").read_text(encoding="utf-8").splitlines()
    clean = (out / "full_data.csv").read_text(encoding="utf-8").splitlines()
    assert len(raw) == len(clean)  # no faults: every row is cleaned, in order
    return raw[0], raw[1:], clean[0], clean[1:]


@pytest.mark.timeout(600)
def test_a_burst_beyond_the_quotas_with_overwrites_drains_by_itself(tmp_path: Path) -> None:
    header, rows, clean_header, clean = clean_rows(tmp_path, KEYS + 2 * OVERWRITTEN + 4)
    # upload n holds rows n..n+2 (its own bytes); the overwritten keys get a second, other upload
    keys = [f"raw/burst/file-{n:02d}.csv" for n in range(KEYS + OVERWRITTEN)]
    uploads = [(key, n) for n, key in enumerate(keys)]
    uploads += [(key, KEYS + OVERWRITTEN + n) for n, key in enumerate(keys[KEYS:])]

    def body(n: int) -> bytes:
        return ("\n".join([header, *rows[n : n + 3]]) + "\n").encode()

    with Runtime(stacks=[StackRequest("burst")], quotas=QUOTAS, scratch_dir=tmp_path) as runtime:
        runtime.warm_up()
        stack = runtime.stacks[0]
        bucket, pipeline = stack.ref("DataBucket"), stack.parameters["PipelineName"]
        s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
        refused_before = runtime.emulator.refused_starts

        # When the 24 uploads arrive at once (the overwrites right after the first versions)
        with ThreadPoolExecutor(8) as pool:
            first, second = uploads[: len(keys)], uploads[len(keys) :]
            list(pool.map(lambda u: s3.put_object(Bucket=bucket, Key=u[0], Body=body(u[1])), first))
            list(pool.map(lambda u: s3.put_object(Bucket=bucket, Key=u[0], Body=body(u[1])), second))

        # Then, with nobody acting, everything drains
        deadline = time.monotonic() + 300
        summaries: list[dict[str, str]] = []
        while time.monotonic() < deadline and len(summaries) < len(uploads):
            assert runtime.wait_idle(deadline - time.monotonic())
            summaries = sagemaker.list_pipeline_executions(PipelineName=pipeline, MaxResults=100)[
                "PipelineExecutionSummaries"
            ]
        outputs = {}
        for summary in summaries:
            params = sagemaker.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=summary["PipelineExecutionArn"]
            )["PipelineParameters"]
            outputs[summary["PipelineExecutionArn"]] = {p["Name"]: p["Value"] for p in params}[
                "OutputDataUrl"
            ]

        # one execution per upload, every one Succeeded
        assert {s["PipelineExecutionStatus"] for s in summaries} == {"Succeeded"}
        assert len(summaries) == len(uploads) == KEYS + 2 * OVERWRITTEN
        # and each key's outputs hold exactly its uploads' rows, each upload in a folder of its own
        for key in keys:
            expected = sorted([clean_header, *clean[n : n + 3]] for k, n in uploads if k == key)
            got = []
            for url in (u for u in outputs.values() if is_output_of(u, key)):
                found = s3.get_object(Bucket=bucket, Key=url[5:].partition("/")[2] + "full_data.csv")
                got.append(found["Body"].read().decode("utf-8").splitlines())
            assert sorted(got) == expected, key
        # and both quotas were met, and enforced: refused starts and jobs waited, none was lost
        assert 0 < runtime.emulator.most_executing <= QUOTAS.max_concurrent_executions
        assert runtime.emulator.refused_starts > refused_before
        assert runtime.runner is not None
        assert runtime.runner.stats.most_instances == QUOTAS.max_processing_instances
        assert runtime.runner.stats.refused_jobs > 0
        dead = boto3.client("sqs").get_queue_attributes(
            QueueUrl=stack.ref("TriggerDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"
