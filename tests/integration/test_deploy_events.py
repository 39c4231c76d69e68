"""The deploy function replays events/cfn-*.json against the emulator and always answers CloudFormation."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest
from deploy import handler, resource
from deploy.errors import DeployError, ResponseNotSent
from deploy.properties import OWNER_TAG
from deploy.resource import NOT_CREATED, PipelineResource

from contract.artifact import bundle
from pipeline.pipeline import SKLEARN_FRAMEWORK_VERSION, render_template

BUCKET = "example-data-bucket"
PIPELINE = "s3-sagemaker-trigger"
REGION = "us-east-1"
STACK = "s3-sagemaker-trigger"  # the stack named in events/cfn-*.json
OWNED = {OWNER_TAG: STACK}  # the tag the function adds: the pipeline belongs to this stack


def _code_key(script: bytes) -> str:
    return f"code/{hashlib.sha256(script).hexdigest()}/etl.pyz"


def _expected_definition(artifact: Path, properties: dict[str, Any]) -> dict[str, Any]:
    image_uri = json.loads((artifact / "image_uris.json").read_text(encoding="utf-8"))[REGION]
    text = Template((artifact / "pipeline.json").read_text(encoding="utf-8")).substitute(
        DataBucket=properties["DataBucket"],
        RoleArn=properties["RoleArn"],
        ImageUri=image_uri,
        SnapshotPrefix=properties["SnapshotPrefix"],
        CleanPrefix=properties["CleanPrefix"],
        ProcessingInstanceType=properties["ProcessingInstanceType"],
    )
    result: dict[str, Any] = json.loads(text)
    return result


def _definition(sagemaker: Any, name: str = PIPELINE) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(
        sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"]
    )
    return definition


def _tags(sagemaker: Any, arn: str) -> dict[str, str]:
    tags = sagemaker.list_tags(ResourceArn=arn)["Tags"]
    keys = [t["Key"] for t in tags]
    assert len(keys) == len(set(keys)), f"one value per tag key, got {tags}"
    return {t["Key"]: t["Value"] for t in tags}


OTHER_ROLE = "arn:aws:iam::123456789012:role/other"


def _someone_elses_pipeline(sagemaker: Any, tags: dict[str, str]) -> None:
    """A pipeline of this stack's pipeline name, made outside it (an empty definition, another role)."""
    sagemaker.create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition='{"Version": "2020-12-01", "Steps": []}',
        RoleArn=OTHER_ROLE,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
    )


def _default(definition: dict[str, Any], parameter: str) -> Any:
    return next(p["DefaultValue"] for p in definition["Parameters"] if p["Name"] == parameter)


@pytest.fixture
def bucket(s3: Any) -> str:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return BUCKET


@pytest.fixture
def created(deploy: Any, bucket: str) -> dict[str, Any]:
    answer: dict[str, Any] = deploy.invoke(deploy.event("cfn-create.json"))
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    return answer


# -- Create -----------------------------------------------------------------------------------------


def test_create_uploads_the_etl_bundle_and_creates_the_filled_pipeline_with_its_tags(
    deploy: Any, bucket: str, s3: Any, sagemaker: Any, built_artifact: Path
) -> None:
    # Given the stack's bucket exists and the function holds a built artifact
    event = deploy.event("cfn-create.json")
    script = bundle(built_artifact / "etl")

    # When CloudFormation sends the Create request
    answer = deploy.invoke(event)

    # Then it answers SUCCESS for the pipeline, named by its name, with its ARN as data
    described = sagemaker.describe_pipeline(PipelineName=PIPELINE)
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert answer["Data"] == {"PipelineArn": described["PipelineArn"], "PipelineName": PIPELINE}
    assert (answer["StackId"], answer["RequestId"], answer["LogicalResourceId"]) == (
        event["StackId"],
        event["RequestId"],
        "Pipeline",
    )
    # And the ETL bundle sits at its content-addressed key, a zip application of the whole package
    key = _code_key(script)
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == script
    assert stored["ContentType"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(script)) as archive:
        assert "__main__.py" in archive.namelist()
        assert {f"etl/{p.name}" for p in (built_artifact / "etl").glob("*.py")} <= set(archive.namelist())
    # And the pipeline holds the rendered definition with every placeholder filled
    properties = event["ResourceProperties"]
    definition = _definition(sagemaker)
    assert definition == _expected_definition(built_artifact, properties)
    assert "${" not in described["PipelineDefinition"]
    code_input = definition["Steps"][0]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    assert code_input == f"s3://{bucket}/{key}"
    # (the snapshot prefix: the execution role may read snapshots, not raw uploads)
    assert _default(definition, "InputDataUrl") == f"s3://{bucket}/snapshot/"
    assert definition["Steps"][0]["Arguments"]["AppSpecification"]["ImageUri"].endswith(
        f".dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:{SKLEARN_FRAMEWORK_VERSION}-cpu-py3"
    )
    assert described["RoleArn"] == properties["RoleArn"]
    # And it carries the template's tags, and the tag naming the stack it belongs to
    assert _tags(sagemaker, described["PipelineArn"]) == {
        **{t["Key"]: t["Value"] for t in properties["Tags"]},
        **OWNED,
    }


def test_the_response_is_a_plain_put_without_a_content_type(deploy: Any, bucket: str) -> None:
    # Given a Create request (its pre-signed ResponseURL is signed without a content type)
    event = deploy.event("cfn-create.json")

    # When the function answers
    deploy.invoke(event)

    # Then the PUT carries no form content type that would break the signature
    headers = {k.lower(): v for k, v in deploy.cloudformation.headers[-1].items()}
    assert headers.get("content-type", "") == ""


def test_create_of_a_name_already_taken_fails_and_its_rollback_leaves_that_pipeline_alone(
    deploy: Any, bucket: str, sagemaker: Any
) -> None:
    # Given a pipeline of the same name that this stack did not create
    _someone_elses_pipeline(sagemaker, tags={})

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it fails naming the AWS error, with a physical ID that is no pipeline's name
    assert answer["Status"] == "FAILED"
    assert "CreatePipeline s3-sagemaker-trigger failed" in answer["Reason"]
    assert "already exists" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith(NOT_CREATED)

    # And the rollback's Delete (for that physical ID) succeeds without touching the other pipeline
    rollback = deploy.invoke(deploy.event("cfn-delete.json", PhysicalResourceId=answer["PhysicalResourceId"]))
    assert rollback["Status"] == "SUCCESS", rollback["Reason"]
    assert sagemaker.describe_pipeline(PipelineName=PIPELINE)["RoleArn"] == OTHER_ROLE


def test_a_create_adopts_the_pipeline_this_stack_retained_on_delete(
    deploy: Any, created: dict[str, Any], sagemaker: Any, built_artifact: Path
) -> None:
    # Given the stack was deleted with RetainPipelineOnDelete=true: its pipeline is still there
    arn = created["Data"]["PipelineArn"]
    retained = deploy.invoke(deploy.event("cfn-delete.json", Properties={"RetainOnDelete": "true"}))
    assert retained["Status"] == "SUCCESS", retained["Reason"]

    # When a new stack of the same name is deployed (a new stack ID, a new request), with a change
    create = deploy.load_event("cfn-create.json")
    new_stack = create["StackId"].rsplit("/", 1)[0] + "/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    event = deploy.event(
        "cfn-create.json",
        StackId=new_stack,
        RequestId="1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809",
        Properties={"ProcessingInstanceType": "ml.c5.xlarge"},
    )
    answer = deploy.invoke(event)

    # Then it takes over that same pipeline (review finding 4: CreatePipeline refused the name), with the
    # new definition and its tags
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert answer["Data"]["PipelineArn"] == arn
    assert _default(_definition(sagemaker), "ProcessingInstanceType") == "ml.c5.xlarge"
    assert _definition(sagemaker) == _expected_definition(built_artifact, event["ResourceProperties"])
    assert _tags(sagemaker, arn) == {
        **{t["Key"]: t["Value"] for t in event["ResourceProperties"]["Tags"]},
        **OWNED,
    }


def test_a_create_refuses_a_pipeline_of_that_name_that_another_stack_owns(
    deploy: Any, bucket: str, sagemaker: Any
) -> None:
    # Given a pipeline of that name, tagged as another stack's
    _someone_elses_pipeline(sagemaker, tags={OWNER_TAG: "another-stack"})

    # When this stack sends its Create
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it fails, naming whose pipeline it is and what to do, and leaves that pipeline as it was
    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"].startswith(NOT_CREATED)
    assert f"does not belong to stack {STACK} (its {OWNER_TAG} tag is 'another-stack')" in answer["Reason"]
    assert "Choose another PipelineName or delete that pipeline" in answer["Reason"]
    assert _definition(sagemaker)["Steps"] == []
    assert sagemaker.describe_pipeline(PipelineName=PIPELINE)["RoleArn"] == OTHER_ROLE


# -- Update -----------------------------------------------------------------------------------------


def test_update_changes_the_definition_and_reconciles_the_tags(
    deploy: Any, created: dict[str, Any], sagemaker: Any, built_artifact: Path
) -> None:
    # Given the pipeline was created with instance type ml.m5.xlarge and tags project + stack
    event = deploy.event("cfn-update.json")
    assert _default(_definition(sagemaker), "ProcessingInstanceType") == "ml.m5.xlarge"

    # When CloudFormation sends the Update (ml.m5.2xlarge; tags: project kept, stack gone, owner new)
    answer = deploy.invoke(event)

    # Then the same pipeline now has the new definition and exactly the new tags
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    definition = _definition(sagemaker)
    assert _default(definition, "ProcessingInstanceType") == "ml.m5.2xlarge"
    assert definition == _expected_definition(built_artifact, event["ResourceProperties"])
    assert _tags(sagemaker, answer["Data"]["PipelineArn"]) == {
        "project": "s3-sagemaker-trigger",
        "owner": "data-team",
        **OWNED,
    }


def test_update_with_a_changed_tag_value_keeps_one_value_per_key(
    deploy: Any, created: dict[str, Any], sagemaker: Any
) -> None:
    # Given the pipeline is tagged project=s3-sagemaker-trigger
    tags = [{"Key": "project", "Value": "renamed-project"}, {"Key": "stack", "Value": "s3-sagemaker-trigger"}]

    # When an Update changes that tag's value
    answer = deploy.invoke(deploy.event("cfn-update.json", Properties={"Tags": tags}))

    # Then the tag has the new value, once
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert _tags(sagemaker, answer["Data"]["PipelineArn"]) == {
        **{t["Key"]: t["Value"] for t in tags},
        **OWNED,
    }


def test_a_changed_etl_module_is_uploaded_to_a_new_key_and_the_pipeline_points_at_it(
    deploy: Any, created: dict[str, Any], s3: Any, sagemaker: Any, built_artifact: Path, tmp_path: Path
) -> None:
    # Given a rebuilt artifact whose ETL rules changed
    old_key = _code_key(bundle(built_artifact / "etl"))
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(built_artifact, rebuilt)
    with (rebuilt / "etl" / "rules.py").open("a", encoding="utf-8") as rules:
        rules.write("\n# changed\n")
    new_script = bundle(rebuilt / "etl")
    (rebuilt / "pipeline.json").write_text(render_template(rebuilt / "etl"), encoding="utf-8")
    deploy.use_artifact(rebuilt)

    # When CloudFormation sends the Update that the new function version causes
    answer = deploy.invoke(deploy.event("cfn-update.json"))

    # Then the new bundle is at its own key, the old one stays, and the pipeline runs the new one
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    new_key = _code_key(new_script)
    assert new_key != old_key
    assert s3.get_object(Bucket=BUCKET, Key=new_key)["Body"].read() == new_script
    assert s3.head_object(Bucket=BUCKET, Key=old_key)["ContentLength"] > 0
    code_input = _definition(sagemaker)["Steps"][0]["Arguments"]["ProcessingInputs"][1]["S3Input"]["S3Uri"]
    assert code_input == f"s3://{BUCKET}/{new_key}"


def test_a_no_change_update_is_harmless(
    deploy: Any, created: dict[str, Any], s3: Any, sagemaker: Any, built_artifact: Path
) -> None:
    # Given the pipeline and the script as the Create left them
    key = _code_key(bundle(built_artifact / "etl"))
    version_before = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    definition_before = _definition(sagemaker)
    create = deploy.load_event("cfn-create.json")

    # When an Update arrives with the very same properties
    answer = deploy.invoke(
        deploy.event(
            "cfn-update.json", ResourceProperties=create["ResourceProperties"], OldResourceProperties={}
        )
    )

    # Then it succeeds, rewrites nothing in S3 and leaves the pipeline as it was
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert s3.head_object(Bucket=BUCKET, Key=key)["VersionId"] == version_before
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]
    assert len(versions) == 1
    assert _definition(sagemaker) == definition_before
    assert _tags(sagemaker, answer["Data"]["PipelineArn"]) == {
        **{t["Key"]: t["Value"] for t in create["ResourceProperties"]["Tags"]},
        **OWNED,
    }


def test_a_renamed_pipeline_is_created_new_and_the_old_one_deleted_by_the_cleanup(
    deploy: Any, created: dict[str, Any], sagemaker: Any
) -> None:
    # Given the pipeline s3-sagemaker-trigger exists
    # When an Update renames it
    answer = deploy.invoke(deploy.event("cfn-update.json", Properties={"PipelineName": "renamed-pipeline"}))

    # Then a new pipeline answers as the new physical resource, and the old one still exists...
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "renamed-pipeline"
    assert (
        sagemaker.describe_pipeline(PipelineName="renamed-pipeline")["PipelineArn"]
        == answer["Data"]["PipelineArn"]
    )
    sagemaker.describe_pipeline(PipelineName=PIPELINE)

    # ...until CloudFormation's cleanup sends Delete for the old physical ID
    cleanup = deploy.invoke(
        deploy.event(
            "cfn-delete.json", ResourceProperties=deploy.load_event("cfn-create.json")["ResourceProperties"]
        )
    )
    assert cleanup["Status"] == "SUCCESS", cleanup["Reason"]
    names = {p["PipelineName"] for p in sagemaker.list_pipelines()["PipelineSummaries"]}
    assert names == {"renamed-pipeline"}


# -- Delete -----------------------------------------------------------------------------------------


def test_delete_removes_the_pipeline(deploy: Any, created: dict[str, Any], sagemaker: Any) -> None:
    # Given the pipeline exists
    # When CloudFormation sends the Delete request
    answer = deploy.invoke(deploy.event("cfn-delete.json"))

    # Then it answers SUCCESS and the pipeline is gone
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


@pytest.fixture
def stops(deploy: Any, aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The executions the function asks SageMaker to stop; a stop takes 0.3 s, a poll 0.05 s."""
    monkeypatch.setattr(resource, "STOP_POLL_SECONDS", 0.05)
    aws.set_stop_seconds(0.3)
    stopped: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        stopped.append(params["PipelineExecutionArn"])

    handler.pipeline_resource().sagemaker.meta.events.register(
        "provide-client-params.sagemaker.StopPipelineExecution", record
    )
    try:
        yield stopped
    finally:
        aws.set_stop_seconds(0.0)


def _start(sagemaker: Any) -> str:
    arn: str = sagemaker.start_pipeline_execution(PipelineName=PIPELINE)["PipelineExecutionArn"]
    return arn


def test_delete_stops_the_running_executions_and_waits_for_them_before_deleting(
    deploy: Any, created: dict[str, Any], sagemaker: Any, aws: Any, stops: list[str]
) -> None:
    # Given two executions running (a quota retry can keep one running for days) and one that ended
    running = sorted([_start(sagemaker), _start(sagemaker)])
    ended = _start(sagemaker)
    aws.record_execution(ended, "Succeeded")

    # When CloudFormation sends the Delete request (review finding 3: DeletePipeline refuses a pipeline
    # with running executions)
    answer = deploy.invoke(deploy.event("cfn-delete.json"))

    # Then it stopped exactly the running ones, waited until they had stopped, and deleted the pipeline
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert sorted(stops) == running
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_a_delete_whose_executions_do_not_stop_in_time_fails_naming_them_and_a_later_delete_finishes(
    deploy: Any, created: dict[str, Any], sagemaker: Any, aws: Any, stops: list[str]
) -> None:
    # Given an execution whose stop takes longer than the function has left
    execution = _start(sagemaker)
    aws.set_stop_seconds(3600)
    remaining_ms = int((handler.TIMEOUT_MARGIN_SECONDS + handler.WORK_MARGIN_SECONDS + 0.3) * 1000)

    # When CloudFormation sends the Delete request
    answer = deploy.invoke(deploy.event("cfn-delete.json"), remaining_ms=remaining_ms)

    # Then it answers FAILED itself (not the watchdog), naming the execution still stopping and what to do
    assert answer["Status"] == "FAILED"
    assert (
        f"DeletePipeline {PIPELINE}: 1 execution(s) still running after StopPipelineExecution"
        in answer["Reason"]
    )
    assert execution in answer["Reason"]
    assert "Delete again once they have stopped" in answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert stops == [execution]
    assert sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution)[
        "PipelineExecutionStatus"
    ] == ("Stopping")

    # When the execution has stopped and the stack is deleted again
    aws.record_execution(execution, "Stopped")
    retried = deploy.invoke(deploy.event("cfn-delete.json"))

    # Then the pipeline is deleted
    assert retried["Status"] == "SUCCESS", retried["Reason"]
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_delete_keeps_the_pipeline_when_told_to_retain_it(
    deploy: Any, created: dict[str, Any], sagemaker: Any
) -> None:
    # Given the template says RetainPipelineOnDelete=true
    event = deploy.event("cfn-delete.json", Properties={"RetainOnDelete": "true"})

    # When CloudFormation sends the Delete request
    answer = deploy.invoke(event)

    # Then it answers SUCCESS and the pipeline is still there
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert sagemaker.describe_pipeline(PipelineName=PIPELINE)["PipelineName"] == PIPELINE


def test_delete_of_a_pipeline_already_gone_succeeds(deploy: Any, bucket: str, sagemaker: Any) -> None:
    # Given no pipeline of that name exists (deleted by hand, or never created)
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []

    # When CloudFormation sends the Delete request
    answer = deploy.invoke(deploy.event("cfn-delete.json"))

    # Then it answers SUCCESS: there is nothing left to delete
    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_delete_succeeds_even_with_properties_a_create_would_reject(deploy: Any, bucket: str) -> None:
    # Given a resource whose properties are invalid (its Create failed with them)
    event = deploy.event(
        "cfn-delete.json", PhysicalResourceId=f"{NOT_CREATED}x", Properties={"CleanPrefix": "/"}
    )

    # When CloudFormation sends the Delete request
    answer = deploy.invoke(event)

    # Then nothing blocks the delete
    assert answer["Status"] == "SUCCESS", answer["Reason"]


# -- failures: always answered, with a reason ------------------------------------------------------


def test_a_missing_bucket_fails_the_create_with_the_s3_error(deploy: Any, sagemaker: Any, aws: Any) -> None:
    # Given the data bucket does not exist
    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it answers FAILED naming the upload and S3's error, and creates no pipeline
    assert answer["Status"] == "FAILED"
    assert f"uploading the ETL bundle to s3://{BUCKET}/code/" in answer["Reason"]
    assert "NoSuchBucket" in answer["Reason"]
    assert "log stream" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith(NOT_CREATED)
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_an_unknown_placeholder_in_the_definition_fails_with_its_name(
    deploy: Any, bucket: str, built_artifact: Path, tmp_path: Path, sagemaker: Any
) -> None:
    # Given an artifact whose definition has a placeholder the function cannot fill
    broken = tmp_path / "broken"
    shutil.copytree(built_artifact, broken)
    text = (broken / "pipeline.json").read_text(encoding="utf-8")
    (broken / "pipeline.json").write_text(text.replace("${ImageUri}", "${ImageURI}"), encoding="utf-8")
    deploy.use_artifact(broken)

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it answers FAILED naming the placeholder, and creates nothing
    assert answer["Status"] == "FAILED"
    assert "unknown placeholders: ImageURI" in answer["Reason"]
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_a_stale_artifact_fails_instead_of_running_other_code_than_it_uploads(
    deploy: Any, bucket: str, built_artifact: Path, tmp_path: Path
) -> None:
    # Given an artifact whose ETL package changed after pipeline.json was rendered
    stale = tmp_path / "stale"
    shutil.copytree(built_artifact, stale)
    with (stale / "etl" / "read.py").open("a", encoding="utf-8") as script:
        script.write("\n# edited after the build\n")
    deploy.use_artifact(stale)

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it answers FAILED telling to rebuild
    assert answer["Status"] == "FAILED"
    assert "stale, rebuild it with `sam build`" in answer["Reason"]


def test_a_missing_artifact_fails_with_a_hint_to_build(deploy: Any, bucket: str, tmp_path: Path) -> None:
    # Given a function deployed without its build products
    deploy.use_artifact(tmp_path)

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then it answers FAILED naming the missing file
    assert answer["Status"] == "FAILED"
    assert "build artifact is incomplete" in answer["Reason"]
    assert "pipeline.json" in answer["Reason"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # (the routed prefixes, from routes.yaml, against these: the Routes resource, test_deploy_routes.py)
        ({"RawPrefix": "raw/"}, "unknown properties: RawPrefix"),
        ({"CleanPrefix": "code/c/"}, "CleanPrefix 'code/c/' and the code folder 'code/' overlap"),
        ({"CleanPrefix": "clean"}, "CleanPrefix 'clean' must be a folder"),
        ({"CleanPrefix": "snapshot/c/"}, "CleanPrefix 'snapshot/c/' and SnapshotPrefix 'snapshot/' overlap"),
        ({"SnapshotPrefix": "code/s/"}, "SnapshotPrefix 'code/s/' and the code folder 'code/' overlap"),
        ({"SnapshotPrefix": None}, "missing properties: SnapshotPrefix"),
        ({"CleanPrefix": "cl*an/"}, "CleanPrefix 'cl*an/' must not contain '*'"),
        ({"PipelineName": "bad_name"}, "PipelineName 'bad_name' is not a valid pipeline name"),
        ({"RetainOnDelete": "maybe"}, "RetainOnDelete must be 'true' or 'false'"),
        ({"Tags": [{"Key": "aws:x", "Value": "y"}]}, "the 'aws:' prefix is reserved"),
        ({"Tags": [{"Key": OWNER_TAG, "Value": "y"}]}, f"{OWNER_TAG!r} is set by the deploy function"),
        ({"Colour": "blue"}, "unknown properties: Colour"),
    ],
)
def test_invalid_properties_fail_with_every_problem_named(
    deploy: Any, bucket: str, sagemaker: Any, changes: dict[str, Any], expected: str
) -> None:
    # Given a Create request with a bad property
    event = deploy.event("cfn-create.json", Properties=changes)

    # When it is replayed
    answer = deploy.invoke(event)

    # Then it answers FAILED naming the problem, and creates nothing
    assert answer["Status"] == "FAILED"
    assert expected in answer["Reason"]
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []


def test_an_unexpected_error_is_logged_and_answered(
    deploy: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a bug deep in the function
    def broken(self: PipelineResource, request: Any) -> Any:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(PipelineResource, "create", broken)

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then the stack still gets a FAILED answer naming the error...
    assert answer["Status"] == "FAILED"
    assert "unexpected error: RuntimeError: something nobody expected" in answer["Reason"]
    # ...and the log has it with its traceback
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == ["unexpected error"]
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is RuntimeError


def test_a_request_about_to_time_out_is_answered_failed_once(
    deploy: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, sagemaker: Any
) -> None:
    # Given an AWS call that outlasts the function's remaining time
    def slow(self: PipelineResource, request: Any) -> Any:
        time.sleep(1.5)
        raise AssertionError("CloudFormation was answered long ago")

    monkeypatch.setattr(PipelineResource, "create", slow)
    remaining_ms = int((handler.TIMEOUT_MARGIN_SECONDS + 0.3) * 1000)

    # When CloudFormation sends the Create request
    answer = deploy.invoke(deploy.event("cfn-create.json"), remaining_ms=remaining_ms)

    # Then the watchdog answered FAILED before the timeout, and the late outcome sent nothing more
    assert answer["Status"] == "FAILED"
    assert "did not finish within 0 s" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith(NOT_CREATED)


def test_an_unknown_request_type_is_answered_failed(deploy: Any, bucket: str) -> None:
    # Given a request of a type CloudFormation does not send
    event = deploy.event("cfn-create.json", RequestType="Refresh")

    # When it is replayed
    answer = deploy.invoke(event)

    # Then it is answered FAILED, naming the type
    assert answer["Status"] == "FAILED"
    assert "unknown RequestType 'Refresh'" in answer["Reason"]


def test_a_response_refused_with_a_server_error_is_retried(deploy: Any, bucket: str) -> None:
    # Given CloudFormation's response endpoint fails twice with 503
    deploy.cloudformation.statuses.extend([503, 503])

    # When the function answers a Create
    answer = deploy.invoke(deploy.event("cfn-create.json"))

    # Then the third attempt delivers it
    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_an_undeliverable_response_is_raised_not_swallowed(deploy: Any, bucket: str) -> None:
    # Given a response URL nothing listens on
    event = deploy.event("cfn-create.json")
    event["ResponseURL"] = "http://127.0.0.1:9/response"

    # When the function tries to answer
    # Then it raises (so Lambda retries the idempotent request) instead of pretending it answered
    with pytest.raises(ResponseNotSent, match="could not be sent"):
        deploy.call(event)


def test_an_event_without_a_response_url_is_rejected(deploy: Any) -> None:
    # Given an event that is not a CloudFormation request
    # When it is passed to the function
    # Then it says so (there is nobody to answer)
    with pytest.raises(DeployError, match="no ResponseURL"):
        deploy.call({"RequestType": "Create"})
