"""The custom resource's properties, validated into a frozen model.

CloudFormation hands every scalar over as a string (``true``, ``5``); lists and objects keep their
shape. Every problem is reported at once, in one :class:`~deploy.errors.DeployError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from contract.folders import CODE_PREFIX, overlaps
from contract.names import BUCKET_NAME, PIPELINE_NAME
from deploy.errors import DeployError

_ROLE_ARN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")
# Properties CloudFormation sends that carry no setting: the function's ARN, and the value that changes
# whenever the function's code (and so the rendered definition or the ETL script) changes.
_PASSIVE = frozenset({"ServiceToken", "ArtifactVersion"})
_KNOWN = frozenset(
    {
        "PipelineName",
        "DataBucket",
        "RoleArn",
        "CleanPrefix",
        "SnapshotPrefix",
        "ProcessingInstanceType",
        "Tags",
        "RetainOnDelete",
    }
)
_TRUE, _FALSE = "true", "false"
# The deploy function's own tag on the pipeline: the name of the stack it belongs to. A Create that
# finds the pipeline's name taken adopts that pipeline only when this tag names its stack.
OWNER_TAG = "s3-sagemaker-trigger:stack"


@dataclass(frozen=True, slots=True)
class PipelineProperties:
    pipeline_name: str
    data_bucket: str
    role_arn: str
    clean_prefix: str
    snapshot_prefix: str  # what each run reads (the default InputDataUrl lies under it)
    processing_instance_type: str
    tags: tuple[tuple[str, str], ...]
    retain_on_delete: bool

    @classmethod
    def parse(cls, properties: Mapping[str, Any]) -> PipelineProperties:
        """Validate the ResourceProperties of a Create or Update request."""
        problems: list[str] = []
        unknown = sorted(set(properties) - _KNOWN - _PASSIVE)
        if unknown:
            problems.append(f"unknown properties: {', '.join(unknown)}")
        missing = sorted(k for k in _KNOWN - {"Tags", "RetainOnDelete"} if not _text(properties.get(k)))
        if missing:
            problems.append(f"missing properties: {', '.join(missing)}")

        name = _text(properties.get("PipelineName"))
        if name and not PIPELINE_NAME.fullmatch(name):
            problems.append(
                f"PipelineName {name!r} is not a valid pipeline name (letters, digits, '-'; 1-256)"
            )
        bucket = _text(properties.get("DataBucket"))
        if bucket and not BUCKET_NAME.fullmatch(bucket):
            problems.append(f"DataBucket {bucket!r} is not a bucket name")
        role = _text(properties.get("RoleArn"))
        if role and not _ROLE_ARN.fullmatch(role):
            problems.append(f"RoleArn {role!r} is not an IAM role ARN")
        instance_type = _text(properties.get("ProcessingInstanceType"))
        if instance_type and not _INSTANCE_TYPE.fullmatch(instance_type):
            problems.append(
                f"ProcessingInstanceType {instance_type!r} is not an instance type like ml.m5.xlarge"
            )
        # The routed prefixes (routes.yaml) are checked against these by the Routes resource.
        clean = _text(properties.get("CleanPrefix"))
        snapshot = _text(properties.get("SnapshotPrefix"))
        problems += _prefix_problems({"CleanPrefix": clean, "SnapshotPrefix": snapshot})
        tags = _tags(properties.get("Tags", []), problems)
        retain = _text(properties.get("RetainOnDelete", _FALSE)).lower()
        if retain not in (_TRUE, _FALSE):
            problems.append(f"RetainOnDelete must be 'true' or 'false' (got {retain!r})")

        if problems:
            raise DeployError("invalid Pipeline properties: " + "; ".join(problems))
        return cls(name, bucket, role, clean, snapshot, instance_type, tags, retain == _TRUE)

    @staticmethod
    def retains(properties: Mapping[str, Any]) -> bool:
        """Whether a Delete request keeps the pipeline. Lenient on purpose: nothing may block a delete."""
        return _text(properties.get("RetainOnDelete")).lower() == _TRUE


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    return str(value).strip()


def _prefix_problems(prefixes: Mapping[str, str]) -> list[str]:
    problems: list[str] = []
    for name, prefix in prefixes.items():
        if not prefix:
            continue
        if not prefix.endswith("/") or prefix.startswith("/") or "//" in prefix:
            problems.append(f"{name} {prefix!r} must be a folder like 'out/' (ends with '/', no leading '/')")
        if any(c in prefix for c in "*?$"):
            problems.append(f"{name} {prefix!r} must not contain '*', '?' or '$' (IAM wildcards)")
    return problems + overlaps([*prefixes.items(), ("the code folder", CODE_PREFIX)])


def _tags(value: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    if value in (None, ""):
        return ()
    if not isinstance(value, list):
        problems.append("Tags must be a list of {Key, Value}")
        return ()
    tags: dict[str, str] = {}
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not _text(item.get("Key")):
            problems.append(f"Tags[{index}] must be an object with a non-empty Key and a Value")
            continue
        raw_value = item.get("Value")
        key, tag_value = _text(item["Key"]), "" if raw_value is None else str(raw_value)
        if key.lower().startswith("aws:"):
            problems.append(f"Tags[{index}]: the 'aws:' prefix is reserved ({key!r})")
        elif key == OWNER_TAG:
            problems.append(f"Tags[{index}]: {OWNER_TAG!r} is set by the deploy function (the owning stack)")
        elif key in tags:
            problems.append(f"Tags[{index}]: duplicate Key {key!r}")
        tags[key] = tag_value
    return tuple(tags.items())
