"""End to end through the local runtime: upload -> S3 event -> trigger -> execution -> ETL -> clean output.

One runtime (its own emulator, the stack deployed from template.yaml by the real deploy function) serves
the module; each test uses its own keys.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from coilgen import generate
from local.delivery import s3_keys
from local.runtime import Runtime
from tests.support.runtime import Recorder, bucket, executions_for, finished, pipeline, running

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def runtime(recorder: Recorder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with running("e2e", recorder, tmp_path_factory.mktemp("scratch")) as rt:
        yield rt


def output_prefix(summary: dict[str, Any]) -> str:
    """The key prefix the execution wrote its output under (its OutputDataUrl), ending with /."""
    params = boto3.client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=summary["PipelineExecutionArn"]
    )["PipelineParameters"]
    url = {p["Name"]: p["Value"] for p in params}["OutputDataUrl"]
    return url[5:].partition("/")[2].rstrip("/") + "/"


def read(bucket_name: str, key: str) -> bytes:
    body: bytes = boto3.client("s3").get_object(Bucket=bucket_name, Key=key)["Body"].read()
    return body


def run_etl_directly(input_dir: Path, out: Path, input_url: str) -> subprocess.CompletedProcess[str]:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "etl",
            "--input-dir",
            str(input_dir),
            "--output-dir",
            str(out),
            "--input-url",
            input_url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_upload_produces_the_etl_output_for_exactly_that_object(runtime: Runtime, tmp_path: Path) -> None:
    # Given a named-layout file with a few faulty rows, and a different file whose key extends its key
    data = generate(
        tmp_path / "in", layout="named", rows=300, seed=11, faults=["bad-values"], fault_rate=0.01
    )
    other = generate(tmp_path / "other", layout="named", rows=50, seed=12)
    name = bucket(runtime)
    s3 = boto3.client("s3")
    s3.upload_file(str(other.out_dir / "Caravan.csv"), name, "raw/e2e/content/Caravan.csv.bak")

    # When the file is uploaded under raw/
    s3.upload_file(str(data.out_dir / "Caravan.csv"), name, "raw/e2e/content/Caravan.csv")

    # Then one execution ran on exactly that object and succeeded
    url = f"s3://{name}/raw/e2e/content/Caravan.csv"
    summary = finished(runtime, "raw/e2e/content/Caravan.csv")
    assert summary["PipelineExecutionStatus"] == "Succeeded"
    # and its output under clean/<key>/ is what the ETL makes of that file alone (not of the .bak too)
    expected = tmp_path / "expected"
    assert run_etl_directly(data.out_dir, expected, url).returncode == 0
    prefix = output_prefix(summary)
    assert prefix.startswith("clean/e2e/content/Caravan.csv/")
    assert read(name, prefix + "full_data.csv") == (expected / "full_data.csv").read_bytes()
    assert read(name, prefix + "rejects.csv") == (expected / "rejects.csv").read_bytes()
    totals = json.loads(read(name, prefix + "report.json"))["totals"]
    assert totals["rows_written"] == data.rows - data.faulty_rows
    assert totals["rows_rejected"] == data.faulty_rows > 0


def test_a_duplicate_notification_starts_one_execution(
    runtime: Runtime, recorder: Recorder, tmp_path: Path
) -> None:
    # Given an upload that ran
    data = generate(tmp_path, layout="named", rows=40, seed=21)
    name, key = bucket(runtime), "raw/e2e/duplicate/Caravan.csv"
    boto3.client("s3").upload_file(str(data.out_dir / "Caravan.csv"), name, key)
    first = finished(runtime, key)
    [body] = [
        b
        for d in recorder.of("invoked")
        for b, k in zip(d["bodies"], (s3_keys(b) for b in d["bodies"]), strict=True)
        if k == [key]
    ]

    # When S3 delivers the same notification again
    [mapping] = runtime.stacks[0].event_sources
    replays = len(recorder.of("execution-replayed"))
    boto3.client("sqs").send_message(QueueUrl=mapping.queue_url, MessageBody=body)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(recorder.of("execution-replayed")) == replays:
        time.sleep(0.05)

    # Then SageMaker answered the trigger with the first execution, and there is still exactly one
    assert [d["arn"] for d in recorder.of("execution-replayed")[replays:]] == [first["PipelineExecutionArn"]]
    assert runtime.wait_idle(30)
    assert len(executions_for(runtime, key)) == 1


def test_a_failing_etl_input_fails_the_execution_with_the_etls_message(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Given a file where every row has the wrong number of columns
    source = tmp_path / "in"
    source.mkdir()
    (source / "broken.csv").write_text("1,2,3\n4,5,6\n7,8,9\n", encoding="utf-8")
    name, key = bucket(runtime), "raw/e2e/failing/broken.csv"
    url = f"s3://{name}/{key}"
    etl = run_etl_directly(source, tmp_path / "out", url)
    assert etl.returncode != 0
    message = [line for line in etl.stderr.splitlines() if line.strip()][-1]

    # When it is uploaded
    boto3.client("s3").upload_file(str(source / "broken.csv"), name, key)

    # Then the execution failed carrying the ETL's own message
    summary = finished(runtime, key)
    assert summary["PipelineExecutionStatus"] == "Failed"
    assert message in summary["PipelineExecutionFailureReason"]
    # and the step is listed as Failed with it
    steps = boto3.client("sagemaker").list_pipeline_execution_steps(
        PipelineExecutionArn=summary["PipelineExecutionArn"]
    )
    [step] = steps["PipelineExecutionSteps"]
    assert step["StepName"] == "CleanData"
    assert step["StepStatus"] == "Failed"
    assert message in step["FailureReason"]
    # and its output folder holds only the report saying why (no clean data, no rejects: no row was read)
    listed = boto3.client("s3").list_objects_v2(Bucket=name, Prefix="clean/e2e/failing/")
    assert [o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])] == ["report.json"]


def test_an_upload_outside_the_raw_prefix_runs_nothing(runtime: Runtime, recorder: Recorder) -> None:
    name = bucket(runtime)
    before = len(recorder.of("invoked"))

    boto3.client("s3").put_object(Bucket=name, Key="elsewhere/e2e/x.csv", Body=b"1\n")

    assert runtime.wait_idle(10)
    assert len(recorder.of("invoked")) == before


def test_several_processing_instances_each_clean_their_share_of_a_folder(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Given a folder of two files, and an execution started with ProcessingInstanceCount=2
    name = bucket(runtime)
    s3 = boto3.client("s3")
    rows = {}
    for part, count in (("a", 30), ("b", 45)):
        data = generate(tmp_path / part, layout="named", rows=count, seed=len(part) + count)
        s3.upload_file(
            str(data.out_dir / "Caravan.csv"), name, f"sharded/{part}.csv"
        )  # outside raw/: no trigger
        rows[part] = count
    url = f"s3://{name}/sharded/"
    boto3.client("sagemaker").start_pipeline_execution(
        PipelineName=pipeline(runtime),
        PipelineParameters=[
            {"Name": "InputDataUrl", "Value": url},
            {"Name": "OutputDataUrl", "Value": f"s3://{name}/clean/sharded/"},
            {"Name": "ProcessingInstanceCount", "Value": "2"},
        ],
    )

    # When the runner has run it
    assert finished(runtime, "raw/sharded/")["PipelineExecutionStatus"] == "Succeeded"

    # Then each instance wrote its own part files (named after its host), one input file each
    listed = s3.list_objects_v2(Bucket=name, Prefix="clean/sharded/")
    keys = sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"])
    assert keys == sorted(
        f"{stem}-algo-{n}.{ext}"
        for n in (1, 2)
        for stem, ext in (("full_data", "csv"), ("rejects", "csv"), ("report", "json"))
    )
    written = [
        json.loads(read(name, f"clean/sharded/report-algo-{n}.json"))["totals"]["rows_written"]
        for n in (1, 2)
    ]
    assert written == [rows["a"], rows["b"]]


def test_a_700_character_key_runs_and_the_etl_finds_its_one_input_file(
    runtime: Runtime, tmp_path: Path
) -> None:
    # Given a Hive-style key of 700 characters (its snapshot URL would not fit a 256-character container
    # argument, which the pipeline no longer passes)
    data = generate(tmp_path / "in", layout="named", rows=60, seed=31)
    tail = "".join(f"part={n:06d}/" for n in range(50)) + "Caravan.csv"
    key = "raw/e2e/long" + "x" * (700 - len("raw/e2e/long/") - len(tail)) + "/" + tail
    assert len(key) == 700

    # When it is uploaded
    boto3.client("s3").upload_file(str(data.out_dir / "Caravan.csv"), bucket(runtime), key)

    # Then its run succeeds: the ETL found the one file in /opt/ml/processing/input/data and cleaned it,
    # writing under the key's own output folder
    summary = finished(runtime, key)
    assert summary["PipelineExecutionStatus"] == "Succeeded"
    prefix = output_prefix(summary)
    assert prefix.startswith(f"clean/{key.removeprefix('raw/')}/")
    report = json.loads(read(bucket(runtime), prefix + "report.json"))
    assert [f["path"] for f in report["files"]] == ["Caravan.csv"]
    assert report["totals"]["rows_written"] == data.rows
