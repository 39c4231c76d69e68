"""The local pipeline runner on the project's own rendered definition: parameters, S3Prefix, sharding,
upload modes, failures, the instance quota and the step's retry policies.

The definition is the deploy function's artifact (``python -m pipeline render``, as ``sam build`` makes
it), filled as the deploy function fills it; only its code object is a probe instead of the ETL bundle.
The probe writes what it saw (its arguments, its input and code files, its host) as JSON into its output
folder; an input file named ``sleep.txt`` makes it sleep that many seconds, one named ``fail.txt`` makes
it fail as the ETL does (one line on stderr, exit 3).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from deploy.artifact import Artifact

from local.emulator import Emulator, Quotas
from local.runner import RESOURCE_LIMIT, Runner, StepFailed, resolve, retry_wait
from local.runtime import deploy_artifact

pytestmark = pytest.mark.e2e

BUCKET = "runner-test"
PIPELINE = "runner-test"
PROBE = """
import json, os, pathlib, sys, time
args = sys.argv[1:]
inp, out = (pathlib.Path(args[args.index(flag) + 1]) for flag in ("--input-dir", "--output-dir"))
config = json.loads(pathlib.Path(os.environ["LOCAL_RESOURCE_CONFIG"]).read_text())
files = sorted(p.relative_to(inp).as_posix() for p in inp.rglob("*") if p.is_file())
code = sorted(p.name for p in pathlib.Path(sys.argv[0]).parent.iterdir())
seen = {"host": config["current_host"], "hosts": config["hosts"], "files": files, "code": code, "args": args,
        "contents": {name: (inp / name).read_text() for name in files}}
(out / ("seen-%s.json" % config["current_host"])).write_text(json.dumps(seen))
if "sleep.txt" in files:
    time.sleep(float((inp / "sleep.txt").read_text()))
if "fail.txt" in files:
    print("working on it", file=sys.stderr)
    print("etl: error: data.csv: line 3: expected 86 columns, found 12", file=sys.stderr)
    print("", file=sys.stderr)
    sys.exit(3)
"""
QUOTA_POLICY_WAIT = 60  # IntervalSeconds of the definition's SageMaker.RESOURCE_LIMIT policy


@pytest.fixture(scope="module")
def artifact() -> Artifact:
    """The deploy function's artifact built as ``sam build`` builds it (cached by content)."""
    return Artifact.load(deploy_artifact())


def definition(artifact: Artifact) -> dict[str, Any]:
    """The rendered definition, filled as the deploy function fills it for a bucket ``runner-test``."""
    values = {
        "DataBucket": BUCKET,
        "RoleArn": f"arn:aws:iam::123456789012:role/{PIPELINE}",
        "ImageUri": artifact.image_uri("us-east-1"),
        "SnapshotPrefix": "snapshot/",
        "CleanPrefix": "clean/",
        "ProcessingInstanceType": "ml.m5.xlarge",
    }
    filled: dict[str, Any] = json.loads(artifact.fill(values))
    return filled


Start = Callable[..., str]


@pytest.fixture
def start(aws: Emulator, artifact: Artifact) -> Start:
    """Create the pipeline (from the definition, changed by ``change``) and start one execution of it."""
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=artifact.code_key, Body=PROBE.encode())
    made: set[str] = set()

    def _start(
        parameters: dict[str, str],
        files: dict[str, str] | None = None,
        change: Callable[[dict[str, Any]], None] | None = None,
    ) -> str:
        for key, body in (files or {}).items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        if PIPELINE not in made:
            spec = definition(artifact)
            if change is not None:
                change(spec)
            sagemaker.create_pipeline(
                PipelineName=PIPELINE, PipelineDefinition=json.dumps(spec), RoleArn="r" * 20
            )
            made.add(PIPELINE)
        arn: str = sagemaker.start_pipeline_execution(
            PipelineName=PIPELINE, PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()]
        )["PipelineExecutionArn"]
        return arn

    return _start


Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def events() -> Events:
    return []


@pytest.fixture
def make_runner(aws: Emulator, tmp_path: Path, events: Events) -> Iterator[Callable[..., Runner]]:
    """A started runner (the account's quotas, the time scale as given); stopped after the test."""
    runners: list[Runner] = []

    def _make(quotas: Quotas | None = None, time_scale: float = 0.001) -> Runner:
        runner = Runner(
            aws,
            sagemaker=boto3.client("sagemaker"),
            s3=boto3.client("s3"),
            quotas=quotas,
            time_scale=time_scale,
            scratch_dir=tmp_path,
            log_dir=tmp_path,
            notify=lambda kind, details: events.append((kind, details)),
        )
        runners.append(runner.start())
        return runner

    yield _make
    for runner in runners:
        runner.stop()


@pytest.fixture
def runner(make_runner: Callable[..., Runner]) -> Runner:
    return make_runner()


def finished(*arns: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Wait until none of ``arns`` is Executing; their descriptions."""
    sagemaker = boto3.client("sagemaker")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = [sagemaker.describe_pipeline_execution(PipelineExecutionArn=a) for a in arns]
        if all(d["PipelineExecutionStatus"] != "Executing" for d in described):
            return described
        time.sleep(0.05)
    raise AssertionError(f"executions still Executing after {timeout} s")


def steps(arn: str) -> list[dict[str, Any]]:
    listed = boto3.client("sagemaker").list_pipeline_execution_steps(PipelineExecutionArn=arn)
    result: list[dict[str, Any]] = listed["PipelineExecutionSteps"]
    return result


def seen(key: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return report


def keys(prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def urls(name: str) -> dict[str, str]:
    return {"InputDataUrl": f"s3://{BUCKET}/raw/{name}", "OutputDataUrl": f"s3://{BUCKET}/clean/{name}/"}


# -- whole executions ------------------------------------------------------------------------------


def test_an_object_url_downloads_every_key_it_prefixes_and_uploads_the_outputs(
    runner: Runner, start: Start
) -> None:
    # Given a.csv, a.csv.bak (same prefix), b.csv and sub/a.csv, and an execution for raw/x/a.csv
    files = {"raw/x/a.csv": "A", "raw/x/a.csv.bak": "B", "raw/x/b.csv": "C", "raw/x/sub/a.csv": "D"}
    arn = start({**urls("x/a.csv"), "MaxRejectFraction": "0.05"}, files)

    # When the runner runs it
    [described] = finished(arn)

    # Then it succeeded; the step saw a.csv and a.csv.bak (S3Prefix semantics), not b.csv or sub/
    assert described["PipelineExecutionStatus"] == "Succeeded"
    report = seen("clean/x/a.csv/seen-algo-1.json")
    assert report["files"] == ["a.csv", "a.csv.bak"]
    assert report["contents"] == {"a.csv": "A", "a.csv.bak": "B"}
    # and the definition's arguments were resolved (the Float through Std:Join), /opt/ml mapped away
    args = report["args"]
    assert args[args.index("--max-reject-fraction") + 1] == "0.05"
    assert args[args.index("--input-dir") + 1].endswith("/algo-1/opt/ml/processing/input/data")
    assert args[args.index("--output-dir") + 1].endswith("/algo-1/opt/ml/processing/output")
    assert report["code"] == ["etl.pyz"]
    assert report["hosts"] == ["algo-1"]
    [step] = steps(arn)
    assert (step["StepName"], step["StepStatus"], step["AttemptCount"]) == ("CleanData", "Succeeded", 1)
    assert "processing-job/pipelines-" in step["Metadata"]["ProcessingJob"]["Arn"]


def test_the_declared_defaults_fill_what_the_start_leaves_out(runner: Runner, start: Start) -> None:
    # Given an execution started with its URLs only
    arn = start(urls("d.csv"), {"raw/d.csv": "1"})
    finished(arn)
    # Then MaxRejectFraction is the declared default, as SageMaker renders a Float
    args = seen("clean/d.csv/seen-algo-1.json")["args"]
    assert args[args.index("--max-reject-fraction") + 1] == "0.01"


def test_a_folder_url_keeps_the_layout_below_the_prefix(runner: Runner, start: Start) -> None:
    arn = start(urls("set/"), {"raw/set/train.csv": "1", "raw/set/sub/gt.csv": "2", "raw/set/_SUCCESS": ""})
    finished(arn)
    assert seen("clean/set/seen-algo-1.json")["files"] == ["_SUCCESS", "sub/gt.csv", "train.csv"]


def test_several_instances_share_the_data_by_key_and_each_gets_the_code(runner: Runner, start: Start) -> None:
    # Given five files and an execution asking for two instances
    files = {f"raw/many/part-{n}.csv": str(n) for n in range(5)}
    arn = start({**urls("many/"), "ProcessingInstanceCount": "2"}, files)

    # When it runs
    [described] = finished(arn)

    # Then each instance saw its own share of the data (ShardedByS3Key), together every file exactly
    # once, and the whole code input (FullyReplicated); each knew its host from its resource config
    assert described["PipelineExecutionStatus"] == "Succeeded"
    first, second = seen("clean/many/seen-algo-1.json"), seen("clean/many/seen-algo-2.json")
    assert (first["host"], second["host"]) == ("algo-1", "algo-2")
    assert first["hosts"] == second["hosts"] == ["algo-1", "algo-2"]
    assert first["files"] == ["part-0.csv", "part-2.csv", "part-4.csv"]
    assert second["files"] == ["part-1.csv", "part-3.csv"]
    assert first["code"] == second["code"] == ["etl.pyz"]


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"Colour": "blue"}, "Colour not declared in the pipeline definition"),
        ({"ProcessingInstanceCount": "two"}, "ProcessingInstanceCount: 'two' is not a valid Integer"),
    ],
)
def test_a_parameter_sagemaker_would_reject_fails_the_execution(
    runner: Runner, start: Start, parameters: dict[str, str], message: str
) -> None:
    arn = start({**urls("p.csv"), **parameters}, {"raw/p.csv": "1"})
    [described] = finished(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert message in described["FailureReason"]
    assert steps(arn) == []


def test_a_failing_script_fails_the_step_with_its_last_stderr_line(runner: Runner, start: Start) -> None:
    # Given data that makes the script explain itself on stderr and exit 3
    arn = start(urls("bad/"), {"raw/bad/fail.txt": "x"})

    # When it runs
    [described] = finished(arn)

    # Then the step and the execution failed with that line and the exit code
    message = "etl: error: data.csv: line 3: expected 86 columns, found 12"
    [step] = steps(arn)
    assert step["StepStatus"] == "Failed"
    assert step["FailureReason"] == f"AlgorithmError: {message}, exit code: 3"
    assert described["PipelineExecutionStatus"] == "Failed"
    assert message in described["FailureReason"]


@pytest.mark.parametrize(("mode", "uploaded"), [("EndOfJob", False), ("Continuous", True)])
def test_a_failed_jobs_output_reaches_s3_only_when_it_is_continuous(
    runner: Runner, start: Start, mode: str, uploaded: bool
) -> None:
    # Given the definition's output in this upload mode, and a job that writes its output, then fails
    def upload_mode(spec: dict[str, Any]) -> None:
        spec["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"] = (
            mode
        )

    arn = start(urls("half/"), {"raw/half/fail.txt": "x"}, change=upload_mode)
    [described] = finished(arn)
    # Then the execution failed, and what the job wrote reached S3 only if the output is Continuous
    assert described["PipelineExecutionStatus"] == "Failed"
    assert keys("clean/half/") == (["clean/half/seen-algo-1.json"] if uploaded else [])


def test_a_succeeded_jobs_continuous_output_is_uploaded(runner: Runner, start: Start) -> None:
    def continuous(spec: dict[str, Any]) -> None:
        spec["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3UploadMode"] = (
            "Continuous"
        )

    arn = start(urls("ok.csv"), {"raw/ok.csv": "1"}, change=continuous)
    assert finished(arn)[0]["PipelineExecutionStatus"] == "Succeeded"
    assert keys("clean/ok.csv/") == ["clean/ok.csv/seen-algo-1.json"]


def test_an_input_with_no_objects_fails_like_sagemaker(runner: Runner, start: Start) -> None:
    arn = start(urls("missing.csv"))
    [described] = finished(arn)
    assert f'No S3 objects found under S3 URL "s3://{BUCKET}/raw/missing.csv"' in described["FailureReason"]


def test_a_definition_feature_with_no_local_equivalent_fails_clearly(runner: Runner, start: Start) -> None:
    # Given the definition with its data input streamed in Pipe mode (SageMaker could, the runner cannot)
    def pipe(spec: dict[str, Any]) -> None:
        spec["Steps"][0]["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3InputMode"] = "Pipe"

    arn = start(urls("p.csv"), {"raw/p.csv": "1"}, change=pipe)
    [described] = finished(arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "input data: S3InputMode Pipe is not supported locally (only File)" in described["FailureReason"]


def test_a_replayed_start_runs_nothing_and_a_retried_execution_runs_again(
    runner: Runner, start: Start, events: Events
) -> None:
    # Given an execution that failed (its input does not exist yet), started with a token
    sagemaker = boto3.client("sagemaker")
    start(urls("first.csv"), {"raw/first.csv": "1"})  # creates the pipeline
    token = "t" * 32
    request = {"PipelineName": PIPELINE, "ClientRequestToken": token}
    arn = sagemaker.start_pipeline_execution(**request, PipelineParameters=[
        {"Name": k, "Value": v} for k, v in urls("later.csv").items()
    ])["PipelineExecutionArn"]  # fmt: skip
    assert finished(arn)[0]["PipelineExecutionStatus"] == "Failed"

    # When the start is replayed, then the input arrives and the execution is retried
    assert sagemaker.start_pipeline_execution(**request)["PipelineExecutionArn"] == arn
    boto3.client("s3").put_object(Bucket=BUCKET, Key="raw/later.csv", Body=b"1")
    sagemaker.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token)

    # Then the replay ran nothing, and the retry ran the execution again, to success
    assert finished(arn)[0]["PipelineExecutionStatus"] == "Succeeded"
    assert [d["arn"] for kind, d in events if kind == "execution-queued"].count(arn) == 2


def test_stopping_the_runner_kills_the_running_job_and_stops_its_execution(
    runner: Runner, start: Start
) -> None:
    arn = start(urls("slow/"), {"raw/slow/sleep.txt": "30"})
    deadline = time.monotonic() + 30
    while not list((runner.log_dir or Path()).rglob("CleanData-algo-1.stdout.log")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    began = time.monotonic()
    runner.stop()
    assert time.monotonic() - began < 10
    [described] = finished(arn, timeout=1)
    assert described["PipelineExecutionStatus"] == "Stopped"


# -- quotas and retry policies -------------------------------------------------------------------------


def test_jobs_beyond_the_instance_quota_are_refused_and_retried_until_they_run(
    make_runner: Callable[..., Runner], start: Start, events: Events
) -> None:
    # Given an account with one processing instance, and the definition's retry policies
    runner = make_runner(Quotas(None, 1))

    # When three executions start at once, each job taking 0.3 s
    arns = [start(urls(f"q{n}/"), {f"raw/q{n}/sleep.txt": "0.3"}) for n in range(3)]

    # Then all three succeeded, one job at a time, the later ones after refusals and retries
    assert [d["PipelineExecutionStatus"] for d in finished(*arns)] == ["Succeeded"] * 3
    assert runner.stats.most_instances == 1
    assert runner.stats.refused_jobs >= 2
    attempts = sorted(steps(a)[0]["AttemptCount"] for a in arns)
    assert attempts[0] == 1
    assert attempts[-1] > 1
    # and each refusal said what SageMaker says, and waited as the policy says (scaled)
    retried = [d for kind, d in events if kind == "step-retrying"]
    assert retried
    assert all(
        d["reason"].startswith("ResourceLimitExceeded: The account-level service limit") for d in retried
    )
    assert all(d["wait"] >= QUOTA_POLICY_WAIT for d in retried)
    assert all(d["local_wait"] == pytest.approx(d["wait"] * 0.001) for d in retried)


def test_a_retry_policy_that_expires_fails_the_step_with_the_refusal(
    make_runner: Callable[..., Runner], start: Start
) -> None:
    # Given one instance, held for 3 s by a first execution, and a clock on which 0.1 s local is
    # 10**5 s on SageMaker's (so the policy's 14,400 minutes pass in under a second and a half)
    make_runner(Quotas(None, 1), time_scale=1e-6)
    first = start(urls("hold/"), {"raw/hold/sleep.txt": "3"})
    time.sleep(0.5)
    second = start(urls("late.csv"), {"raw/late.csv": "1"})

    # Then the second fails once its policy expires, saying why, and the first still succeeds
    held, late = finished(first, second)
    assert held["PipelineExecutionStatus"] == "Succeeded"
    assert late["PipelineExecutionStatus"] == "Failed"
    assert "ResourceLimitExceeded" in late["FailureReason"]
    assert "retry policy (ExpireAfterMin 14400) expired after" in late["FailureReason"]
    [step] = steps(second)
    assert step["StepStatus"] == "Failed"
    assert step["AttemptCount"] > 1


def test_a_job_larger_than_the_quota_fails_clearly_instead_of_waiting_forever(
    make_runner: Callable[..., Runner], start: Start
) -> None:
    make_runner(Quotas(None, 2))
    arn = start({**urls("big.csv"), "ProcessingInstanceCount": "3"}, {"raw/big.csv": "1"})
    reason = finished(arn)[0]["FailureReason"]
    assert "is 2 Instances, with current utilization of 0 Instances and a request delta of 3" in reason
    assert "can never run here" in reason


def test_starts_beyond_the_execution_quota_are_refused_as_sagemaker_refuses_them(
    aws: Emulator, start: Start
) -> None:
    # Given an account allowed two concurrent executions (and no runner: they stay Executing)
    aws.set_quotas(Quotas(2, None))
    try:
        sagemaker = boto3.client("sagemaker")
        tokens = [f"token-{n}".ljust(32, "x") for n in range(3)]
        start(urls("x.csv"))  # the pipeline, and a first execution
        first = sagemaker.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken=tokens[0])

        # When a third starts, it is refused with ResourceLimitExceeded (HTTP 400)
        with pytest.raises(ClientError) as refused:
            sagemaker.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken=tokens[2])
        error = refused.value.response
        assert error["Error"]["Code"] == "ResourceLimitExceeded"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "'Maximum number of concurrent pipeline executions' is 2" in error["Error"]["Message"]
        # but a replay of a started one is answered with its execution, quota or not
        replay = sagemaker.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken=tokens[0])
        assert replay["PipelineExecutionArn"] == first["PipelineExecutionArn"]
        # and once one finishes, the start goes through
        aws.record_execution(first["PipelineExecutionArn"], "Succeeded")
        sagemaker.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken=tokens[2])
        assert aws.executing() == 2
    finally:
        aws.set_quotas(None)


def test_retry_waits_follow_the_definitions_policies(artifact: Artifact) -> None:
    # Given the step's retry policies as rendered
    policies = definition(artifact)["Steps"][0]["RetryPolicies"]

    def waits(exception_type: str, elapsed_step: float = 0) -> tuple[list[float], str]:
        retries, elapsed, found = [0] * len(policies), 0.0, []
        while True:
            wait, why = retry_wait(policies, retries, StepFailed("refused", exception_type), elapsed)
            if wait is None:
                return found, why
            found.append(wait)
            elapsed += wait + elapsed_step

    # Then an internal error is retried 5 times, doubling from 60 s, then given up
    internal, why = waits("SageMaker.JOB_INTERNAL_ERROR")
    assert internal == [60, 120, 240, 480, 960]
    assert why == "SageMaker.JOB_INTERNAL_ERROR retry policy (MaxAttempts 5) exhausted after 5 retries"
    # and a quota refusal every minute or so (x1.01) until 14,400 minutes have passed
    quota, why = waits(RESOURCE_LIMIT, elapsed_step=3600)
    assert quota[:2] == [60, 60.6]
    assert why.startswith(
        "SageMaker.RESOURCE_LIMIT/SageMaker.CAPACITY_ERROR retry policy (ExpireAfterMin 14400)"
    )
    assert sum(quota) + 3600 * (len(quota) - 1) <= 14400 * 60  # the last retry ends within the policy
    # and the script's own error is not retried
    assert retry_wait(policies, [0] * len(policies), StepFailed("AlgorithmError: boom"), 0) == (
        None,
        "not retryable",
    )


def test_an_expression_the_definition_does_not_use_fails_clearly() -> None:
    with pytest.raises(StepFailed, match=r"Steps\.Other\.Properties\.X.*cannot be evaluated locally"):
        resolve({"Get": "Steps.Other.Properties.X"}, {})
    with pytest.raises(StepFailed, match="the function Std:JsonGet is not evaluated"):
        resolve({"Std:JsonGet": {}}, {})
