"""The pipeline runner on hand-written definitions: expressions, parameters, S3Prefix, sharding, failures.

Each test creates a pipeline in the emulator from a definition written here, starts an execution the
way the trigger does, and lets the runner run it; the step's "container" is a small Python script that
writes what it saw (its arguments, its input files, its host) as JSON into its output folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.emulator import Emulator, Quotas
from local.runner import (
    ExecutionInfo,
    Runner,
    StepFailed,
    parameter_values,
    resolve,
    retry_policies,
    retry_wait,
)

pytestmark = pytest.mark.e2e

BUCKET = "runner-test"
ROLE = "arn:aws:iam::123456789012:role/runner-test"

PROBE = """
import json, os, pathlib, sys
args = sys.argv[1:]
inp = pathlib.Path(args[args.index("--input-dir") + 1])
out = pathlib.Path(args[args.index("--output-dir") + 1])
config = json.loads(pathlib.Path(os.environ["LOCAL_RESOURCE_CONFIG"]).read_text())
files = sorted(p.relative_to(inp).as_posix() for p in inp.rglob("*") if p.is_file())
contents = {name: (inp / name).read_text() for name in files}
report = {"host": config["current_host"], "hosts": config["hosts"], "files": files, "contents": contents,
          "args": args, "env": os.environ.get("GREETING")}
(out / ("seen-%s.json" % config["current_host"])).write_text(json.dumps(report))
"""

FAILING = """
import sys
print("working on it", file=sys.stderr)
print("etl: error: data.csv: line 3: expected 86 columns, found 12", file=sys.stderr)
print("", file=sys.stderr)
sys.exit(3)
"""


def definition(
    *,
    step_type: str = "Processing",
    distribution: str = "ShardedByS3Key",
    extra_args: list[Any] | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceType": {"Get": "Parameters.ProcessingInstanceType"},
                "InstanceCount": {"Get": "Parameters.ProcessingInstanceCount"},
                "VolumeSizeInGB": 30,
            }
        },
        "AppSpecification": {
            "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/probe.py"],
            "ContainerArguments": [
                "--input-dir",
                "/opt/ml/processing/input/data",
                "--output-dir",
                "/opt/ml/processing/output",
                "--input-url",
                {"Get": "Parameters.InputDataUrl"},
                *(extra_args or []),
            ],
        },
        "RoleArn": ROLE,
        "ProcessingInputs": [
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": {"Get": "Parameters.InputDataUrl"},
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": distribution,
                    "S3CompressionType": "None",
                },
            },
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/probe.py",
                    "LocalPath": "/opt/ml/processing/input/code",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "S3CompressionType": "None",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "clean",
                    "S3Output": {
                        "S3Uri": {"Get": "Parameters.OutputDataUrl"},
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }
    if environment:
        arguments["Environment"] = environment
    return {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "InputDataUrl", "Type": "String", "DefaultValue": f"s3://{BUCKET}/raw/"},
            {"Name": "OutputDataUrl", "Type": "String", "DefaultValue": f"s3://{BUCKET}/clean/"},
            {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
            {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1},
        ],
        "Steps": [{"Name": "CleanData", "Type": step_type, "Arguments": arguments}],
    }


Start = Callable[..., str]


@pytest.fixture
def runner(aws: Emulator, tmp_path: Path) -> Runner:
    return Runner(
        aws,
        sagemaker=boto3.client("sagemaker"),
        s3=boto3.client("s3"),
        scratch_dir=tmp_path,
        log_dir=tmp_path,
    )


@pytest.fixture
def start(aws: Emulator) -> Start:
    """Create the pipeline from a definition and start one execution; returns the execution ARN."""
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)

    def _start(
        spec: dict[str, Any],
        parameters: dict[str, str],
        *,
        script: str = PROBE,
        files: dict[str, str] | None = None,
    ) -> str:
        s3.put_object(Bucket=BUCKET, Key="code/probe.py", Body=script.encode())
        for key, body in (files or {}).items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        sagemaker.create_pipeline(
            PipelineName="runner-test", PipelineDefinition=json.dumps(spec), RoleArn=ROLE
        )
        arn: str = sagemaker.start_pipeline_execution(
            PipelineName="runner-test",
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        )["PipelineExecutionArn"]
        return arn

    return _start


def execution(arn: str) -> dict[str, Any]:
    described: dict[str, Any] = boto3.client("sagemaker").describe_pipeline_execution(
        PipelineExecutionArn=arn
    )
    return described


def steps(arn: str) -> list[dict[str, Any]]:
    listed = boto3.client("sagemaker").list_pipeline_execution_steps(PipelineExecutionArn=arn)
    result: list[dict[str, Any]] = listed["PipelineExecutionSteps"]
    return result


def seen(key: str) -> dict[str, Any]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    report: dict[str, Any] = json.loads(body)
    return report


INFO = ExecutionInfo(
    arn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc123",
    pipeline_name="p",
    pipeline_arn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/p",
    start_time=datetime(2026, 11, 26, tzinfo=UTC),
)


# -- expressions -----------------------------------------------------------------------------------


def test_get_and_join_resolve_parameters_and_execution_variables() -> None:
    # Given parameters merged over the defaults, and a node using Get and Std:Join
    params = parameter_values(definition(), [{"Name": "OutputDataUrl", "Value": "s3://b/clean/x/"}])
    node = {
        "Out": {"Std:Join": {"On": "/", "Values": [{"Get": "Parameters.OutputDataUrl"}, "part"]}},
        "Run": {"Std:Join": {"On": "-", "Values": ["run", {"Get": "Execution.PipelineExecutionId"}]}},
        "Count": {"Get": "Parameters.ProcessingInstanceCount"},
        "In": [{"Get": "Parameters.InputDataUrl"}],
    }

    # When it is resolved
    resolved = resolve(node, params, INFO)

    # Then given values win, defaults fill the rest (typed as declared), execution variables resolve
    assert resolved == {
        "Out": "s3://b/clean/x//part",
        "Run": "run-abc123",
        "Count": 1,
        "In": [f"s3://{BUCKET}/raw/"],
    }


def test_an_integer_parameter_with_a_non_integer_value_is_rejected() -> None:
    with pytest.raises(StepFailed, match="ProcessingInstanceCount: 'two' is not a valid Integer"):
        parameter_values(definition(), [{"Name": "ProcessingInstanceCount", "Value": "two"}])


def test_a_step_property_reference_fails_clearly() -> None:
    with pytest.raises(StepFailed, match=r"Steps\.Other\.Properties\.X.*cannot be evaluated locally"):
        resolve({"Get": "Steps.Other.Properties.X"}, {}, INFO)


# -- whole executions ------------------------------------------------------------------------------


def test_an_object_url_downloads_every_key_it_prefixes_and_uploads_the_outputs(
    runner: Runner, start: Start
) -> None:
    # Given a.csv, a.csv.bak (same prefix) and b.csv, and an execution for the object raw/x/a.csv
    arn = start(
        definition(environment={"GREETING": "hello"}),
        {"InputDataUrl": f"s3://{BUCKET}/raw/x/a.csv", "OutputDataUrl": f"s3://{BUCKET}/clean/x/a.csv/"},
        files={"raw/x/a.csv": "A", "raw/x/a.csv.bak": "B", "raw/x/b.csv": "C", "raw/x/sub/a.csv": "D"},
    )

    # When the runner runs it
    runner.run_execution(arn)

    # Then it succeeded; the step saw a.csv and a.csv.bak (S3Prefix semantics), not b.csv or sub/
    assert execution(arn)["PipelineExecutionStatus"] == "Succeeded"
    report = seen("clean/x/a.csv/seen-algo-1.json")
    assert report["files"] == ["a.csv", "a.csv.bak"]
    assert report["contents"] == {"a.csv": "A", "a.csv.bak": "B"}
    # and its arguments were resolved, with /opt/ml paths mapped to its scratch folder
    args = report["args"]
    assert args[args.index("--input-url") + 1] == f"s3://{BUCKET}/raw/x/a.csv"
    assert args[args.index("--input-dir") + 1].endswith("/algo-1/opt/ml/processing/input/data")
    assert not args[args.index("--input-dir") + 1].startswith("/opt/ml")
    assert report["env"] == "hello"
    assert report["hosts"] == ["algo-1"]
    [step] = steps(arn)
    assert (step["StepName"], step["StepStatus"]) == ("CleanData", "Succeeded")
    assert "processing-job/pipelines-" in step["Metadata"]["ProcessingJob"]["Arn"]


def test_a_folder_url_keeps_the_layout_below_the_prefix(runner: Runner, start: Start) -> None:
    arn = start(
        definition(),
        {"InputDataUrl": f"s3://{BUCKET}/raw/set/", "OutputDataUrl": f"s3://{BUCKET}/clean/set/"},
        files={"raw/set/train.csv": "1", "raw/set/sub/gt.csv": "2", "raw/set/_SUCCESS": ""},
    )

    runner.run_execution(arn)

    assert seen("clean/set/seen-algo-1.json")["files"] == ["_SUCCESS", "sub/gt.csv", "train.csv"]


def test_several_instances_share_the_files_by_key(runner: Runner, start: Start) -> None:
    # Given five files and an execution asking for two instances
    files = {f"raw/many/part-{n}.csv": str(n) for n in range(5)}
    arn = start(
        definition(),
        {
            "InputDataUrl": f"s3://{BUCKET}/raw/many/",
            "OutputDataUrl": f"s3://{BUCKET}/clean/many/",
            "ProcessingInstanceCount": "2",
        },
        files=files,
    )

    # When it runs
    runner.run_execution(arn)

    # Then each instance saw its own share (ShardedByS3Key), together every file exactly once,
    # and each knew its host name from its resource config
    first, second = seen("clean/many/seen-algo-1.json"), seen("clean/many/seen-algo-2.json")
    assert (first["host"], second["host"]) == ("algo-1", "algo-2")
    assert first["hosts"] == second["hosts"] == ["algo-1", "algo-2"]
    assert first["files"] == ["part-0.csv", "part-2.csv", "part-4.csv"]
    assert second["files"] == ["part-1.csv", "part-3.csv"]


def test_fully_replicated_input_gives_every_instance_every_file(runner: Runner, start: Start) -> None:
    arn = start(
        definition(distribution="FullyReplicated"),
        {
            "InputDataUrl": f"s3://{BUCKET}/raw/rep/",
            "OutputDataUrl": f"s3://{BUCKET}/clean/rep/",
            "ProcessingInstanceCount": "2",
        },
        files={"raw/rep/a.csv": "1", "raw/rep/b.csv": "2"},
    )

    runner.run_execution(arn)

    assert seen("clean/rep/seen-algo-2.json")["files"] == ["a.csv", "b.csv"]


def test_an_undeclared_parameter_fails_the_execution(runner: Runner, start: Start) -> None:
    # Given an execution started with a parameter the definition does not declare
    arn = start(definition(), {"InputDataUrl": f"s3://{BUCKET}/raw/a.csv", "Colour": "blue"})

    # When the runner picks it up
    runner.run_execution(arn)

    # Then it failed, naming the parameter, and no step ran
    described = execution(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "Colour not declared in the pipeline definition" in described["FailureReason"]
    assert steps(arn) == []


def test_a_step_type_the_runner_cannot_run_fails_clearly(runner: Runner, start: Start) -> None:
    arn = start(definition(step_type="Training"), {})

    runner.run_execution(arn)

    described = execution(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "type 'Training', which the local runner cannot run" in described["FailureReason"]
    [step] = steps(arn)
    assert step["StepStatus"] == "Failed"
    assert "Processing steps only" in step["FailureReason"]


def test_a_failing_script_fails_the_step_with_its_last_stderr_line(runner: Runner, start: Start) -> None:
    # Given a script that explains itself on stderr and exits 3
    arn = start(
        definition(),
        {"InputDataUrl": f"s3://{BUCKET}/raw/bad.csv", "OutputDataUrl": f"s3://{BUCKET}/clean/bad.csv/"},
        script=FAILING,
        files={"raw/bad.csv": "x"},
    )

    # When it runs
    runner.run_execution(arn)

    # Then the step and the execution failed with that line and the exit code; nothing was uploaded
    message = "etl: error: data.csv: line 3: expected 86 columns, found 12"
    [step] = steps(arn)
    assert step["StepStatus"] == "Failed"
    assert step["FailureReason"] == f"AlgorithmError: {message}, exit code: 3"
    described = execution(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert message in described["FailureReason"]
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="clean/")


def test_an_input_with_no_objects_fails_like_sagemaker(runner: Runner, start: Start) -> None:
    arn = start(definition(), {"InputDataUrl": f"s3://{BUCKET}/raw/missing.csv"})

    runner.run_execution(arn)

    assert (
        'No S3 objects found under S3 URL "s3://runner-test/raw/missing.csv"'
        in execution(arn)["FailureReason"]
    )


def test_the_polling_runner_picks_up_started_executions_and_stops_cleanly(
    runner: Runner, start: Start
) -> None:
    # Given a started execution and the runner polling in the background
    arn = start(
        definition(),
        {"InputDataUrl": f"s3://{BUCKET}/raw/p.csv", "OutputDataUrl": f"s3://{BUCKET}/clean/p.csv/"},
        files={"raw/p.csv": "1"},
    )
    runner.start()
    try:
        # When we wait for it
        for _ in range(200):
            if execution(arn)["PipelineExecutionStatus"] != "Executing":
                break
            runner._stop.wait(0.05)
    finally:
        runner.stop()

    # Then it ran once
    assert execution(arn)["PipelineExecutionStatus"] == "Succeeded"
    assert runner.stats.started == 1


def test_an_input_feature_with_no_local_equivalent_fails_clearly(runner: Runner, start: Start) -> None:
    # Given a definition whose data input streams in Pipe mode
    spec = definition()
    spec["Steps"][0]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "Pipe"
    arn = start(spec, {"InputDataUrl": f"s3://{BUCKET}/raw/p.csv"}, files={"raw/p.csv": "1"})

    runner.run_execution(arn)

    described = execution(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "input data: S3InputMode Pipe is not supported locally (only File)" in described["FailureReason"]


def test_a_malformed_definition_fails_the_execution_instead_of_hanging(runner: Runner, start: Start) -> None:
    spec = definition()
    spec["Steps"] = {"CleanData": spec["Steps"][0]}  # an object where a list belongs
    arn = start(spec, {})

    runner.run_execution(arn)

    described = execution(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "Steps must be a list" in described["FailureReason"]


# -- quotas and retry policies -------------------------------------------------------------------------

SLOW = """
import pathlib, sys, time
args = sys.argv[1:]
time.sleep(float(args[args.index("--sleep") + 1]))
(pathlib.Path(args[args.index("--output-dir") + 1]) / "done.txt").write_text("done")
"""
QUOTA_RETRY = {
    "ExceptionType": ["SageMaker.RESOURCE_LIMIT"],
    "IntervalSeconds": 1,
    "BackoffRate": 1.0,
}


def start_many(spec: dict[str, Any], count: int, script: str, sleep: float) -> list[str]:
    """One pipeline from ``spec`` running ``script``, and ``count`` executions of it."""
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="code/probe.py", Body=script.encode())
    s3.put_object(Bucket=BUCKET, Key="raw/q.csv", Body=b"1\n")
    spec["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"] += ["--sleep", str(sleep)]
    sagemaker.create_pipeline(PipelineName="quota-test", PipelineDefinition=json.dumps(spec), RoleArn=ROLE)
    return [
        sagemaker.start_pipeline_execution(
            PipelineName="quota-test",
            PipelineParameters=[
                {"Name": "InputDataUrl", "Value": f"s3://{BUCKET}/raw/q.csv"},
                {"Name": "OutputDataUrl", "Value": f"s3://{BUCKET}/clean/q-{n}/"},
            ],
        )["PipelineExecutionArn"]
        for n in range(count)
    ]


def run_all(runner: Runner, arns: list[str], timeout: float = 60) -> None:
    runner.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(execution(a)["PipelineExecutionStatus"] != "Executing" for a in arns):
                return
            time.sleep(0.05)
        raise AssertionError(f"executions still Executing after {timeout} s")
    finally:
        runner.stop()


def quota_runner(aws: Emulator, tmp_path: Path, instances: int, events: list[tuple[str, Any]]) -> Runner:
    return Runner(
        aws,
        sagemaker=boto3.client("sagemaker"),
        s3=boto3.client("s3"),
        quotas=Quotas(None, instances),
        time_scale=0.05,  # IntervalSeconds 1 -> 50 ms
        poll_interval=0.05,
        scratch_dir=tmp_path,
        notify=lambda kind, details: events.append((kind, details)),
    )


def test_jobs_beyond_the_instance_quota_are_refused_and_retried_until_they_run(
    aws: Emulator, tmp_path: Path
) -> None:
    # Given an account with one processing instance, and a step that retries quota refusals
    spec = definition()
    spec["Steps"][0]["RetryPolicies"] = [{**QUOTA_RETRY, "ExpireAfterMin": 60}]
    events: list[tuple[str, Any]] = []
    runner = quota_runner(aws, tmp_path, 1, events)

    # When three executions start at once, each job taking 0.3 s
    arns = start_many(spec, 3, SLOW, 0.3)
    run_all(runner, arns)

    # Then all three succeeded, one job at a time, the later ones after refusals and retries
    assert [execution(a)["PipelineExecutionStatus"] for a in arns] == ["Succeeded"] * 3
    assert runner.stats.most_instances == 1
    assert runner.stats.refused_jobs >= 2
    attempts = sorted(steps(a)[0]["AttemptCount"] for a in arns)
    assert attempts[0] == 1
    assert attempts[-1] > 1
    # and each refusal said what SageMaker says
    retried = [d for kind, d in events if kind == "step-retrying"]
    assert retried
    assert all(
        d["reason"].startswith("ResourceLimitExceeded: The account-level service limit") for d in retried
    )
    assert {d["wait"] for d in retried} == {1.0}
    assert {round(d["local_wait"], 3) for d in retried} == {0.05}


def test_a_retry_policy_that_runs_out_fails_the_step_with_the_refusal(aws: Emulator, tmp_path: Path) -> None:
    # Given one instance, held for 3 s by a first execution, and a policy of two retries
    spec = definition()
    spec["Steps"][0]["RetryPolicies"] = [{**QUOTA_RETRY, "MaxAttempts": 2}]
    events: list[tuple[str, Any]] = []
    runner = quota_runner(aws, tmp_path, 1, events)

    arns = start_many(spec, 2, SLOW, 3)
    run_all(runner, arns)

    # Then one ran and the other failed after 1 + 2 attempts, saying why
    by_status = {execution(a)["PipelineExecutionStatus"]: a for a in arns}
    assert sorted(by_status) == ["Failed", "Succeeded"]
    reason = execution(by_status["Failed"])["FailureReason"]
    assert "ResourceLimitExceeded" in reason
    assert "(MaxAttempts 2) exhausted after 2 retries" in reason
    [step] = steps(by_status["Failed"])
    assert (step["StepStatus"], step["AttemptCount"]) == ("Failed", 3)


def test_without_a_retry_policy_a_refused_job_fails_its_step_at_once(aws: Emulator, tmp_path: Path) -> None:
    events: list[tuple[str, Any]] = []
    runner = quota_runner(aws, tmp_path, 1, events)

    first, second = start_many(definition(), 2, SLOW, 2)
    run_all(runner, [first, second])

    statuses = sorted(execution(a)["PipelineExecutionStatus"] for a in (first, second))
    assert statuses == ["Failed", "Succeeded"]
    assert not [d for kind, d in events if kind == "step-retrying"]


def test_a_job_larger_than_the_quota_fails_clearly_instead_of_waiting_forever(
    aws: Emulator, tmp_path: Path
) -> None:
    spec = definition()
    spec["Steps"][0]["RetryPolicies"] = [{**QUOTA_RETRY, "ExpireAfterMin": 14400}]
    spec["Parameters"][3]["DefaultValue"] = 3  # ProcessingInstanceCount
    runner = quota_runner(aws, tmp_path, 2, [])

    [arn] = start_many(spec, 1, SLOW, 0)
    run_all(runner, [arn])

    reason = execution(arn)["FailureReason"]
    assert "is 2 Instances, with current utilization of 0 Instances and a request delta of 3" in reason
    assert "can never run here" in reason


def test_starts_beyond_the_execution_quota_are_refused_as_sagemaker_refuses_them(aws: Emulator) -> None:
    # Given an account allowed two concurrent executions
    aws.set_quotas(Quotas(2, None))
    try:
        spec = definition()
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_pipeline(PipelineName="q", PipelineDefinition=json.dumps(spec), RoleArn=ROLE)
        tokens = [f"token-{n}".ljust(32, "x") for n in range(3)]
        first, _ = (
            sagemaker.start_pipeline_execution(PipelineName="q", ClientRequestToken=t)["PipelineExecutionArn"]
            for t in tokens[:2]
        )

        # When a third starts, it is refused with ResourceLimitExceeded (HTTP 400)
        with pytest.raises(ClientError) as refused:
            sagemaker.start_pipeline_execution(PipelineName="q", ClientRequestToken=tokens[2])
        error = refused.value.response
        assert error["Error"]["Code"] == "ResourceLimitExceeded"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "'Maximum number of concurrent pipeline executions' is 2" in error["Error"]["Message"]
        # but a replay of a started one is answered with its execution, quota or not
        replay = sagemaker.start_pipeline_execution(PipelineName="q", ClientRequestToken=tokens[0])
        assert replay["PipelineExecutionArn"] == first
        # and once one finishes, the start goes through
        aws.record_execution(first, "Succeeded")
        sagemaker.start_pipeline_execution(PipelineName="q", ClientRequestToken=tokens[2])
        assert aws.executing() == 2
    finally:
        aws.set_quotas(None)


def test_retry_waits_follow_interval_times_backoff_until_the_policy_expires() -> None:
    [policy] = retry_policies(
        {
            "Name": "S",
            "RetryPolicies": [
                {**QUOTA_RETRY, "IntervalSeconds": 60, "BackoffRate": 2.0, "ExpireAfterMin": 7}
            ],
        }
    )
    refusal = StepFailed("ResourceLimitExceeded: ...", "SageMaker.RESOURCE_LIMIT")
    retries, elapsed, waits = [0], 0.0, []
    while True:
        wait, why = retry_wait([policy], retries, refusal, elapsed)
        if wait is None:
            break
        waits.append(wait)
        elapsed += wait
    assert waits == [60, 120, 240]  # a fourth (480 s) would end after the 7 minutes
    assert why == "SageMaker.RESOURCE_LIMIT retry policy (ExpireAfterMin 7) expired after 3 retries"
    # a failure of another type is not retried by it
    assert retry_wait([policy], [0], StepFailed("AlgorithmError: boom"), 0)[0] is None


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        (
            [{**QUOTA_RETRY, "MaxAttempts": 1, "ExpireAfterMin": 1}],
            "exactly one of MaxAttempts and ExpireAfterMin",
        ),
        ([{"IntervalSeconds": 1, "MaxAttempts": 2}], r"RetryPolicies\[0\] is malformed: KeyError"),
        ([{**QUOTA_RETRY, "MaxAttempts": "many"}], r"RetryPolicies\[0\] is malformed: ValueError"),
        ({"ExceptionType": "x"}, "RetryPolicies must be a list"),
    ],
)
def test_malformed_retry_policies_fail_the_step_clearly(policies: Any, message: str) -> None:
    with pytest.raises(StepFailed, match=message):
        retry_policies({"Name": "CleanData", "RetryPolicies": policies})
