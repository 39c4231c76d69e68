"""The local pipeline runner: runs each started execution's definition, as SageMaker would.

For every execution in status ``Executing`` (polled through the SageMaker API of the emulator), the
runner reads the definition stored *for that execution* and its parameters, then runs the steps:

- expressions: ``{"Get": "Parameters.X"}`` (the execution's values merged over the declared defaults,
  typed as declared; a value for an undeclared parameter fails the execution, as SageMaker rejects
  it), ``{"Get": "Execution.PipelineExecutionId"}`` and the other execution variables, and
  ``{"Std:Join": {"On": ..., "Values": [...]}}``. Step properties (``Steps.X...``) are not evaluated;
- ``Processing`` steps, one subprocess per instance (``ProcessingInstanceCount``), each in its own
  scratch folder: every ``/opt/ml/...`` path of the entrypoint and arguments is mapped into it; the
  S3 inputs are downloaded with S3Prefix semantics (``ShardedByS3Key``: the keys are dealt out to the
  instances); ``/opt/ml/config/resourceconfig.json`` names the instance (``algo-N``) and all hosts,
  and ``LOCAL_RESOURCE_CONFIG`` tells the script where it is; the outputs are uploaded at the end of
  the job, and only the ``Continuous`` ones when it fails (SageMaker uploads those while the job runs;
  it documents ``EndOfJob`` as an upload "after the job completes"). ``python3``/``python``
  entrypoints run with this interpreter;
- any other step type, or a processing feature with no local equivalent (Pipe mode, manifest files,
  compressed input), fails the execution with a message saying so, before anything runs.

Status goes through :meth:`local.emulator.Emulator.record_step` / ``record_execution``: the step and
the execution go ``Executing`` -> ``Succeeded`` / ``Failed``; a failed step carries the script's own
last stderr line.

Quotas and retries, as SageMaker applies them (what moto has no notion of):

- the account's processing-instance quota (``Quotas.max_processing_instances``, all jobs' instances
  together): a job that would go beyond it is refused when it is created, before anything is
  downloaded, with SageMaker's ``ResourceLimitExceeded`` message (exception type
  ``SageMaker.RESOURCE_LIMIT``); a job asking for more instances than the quota itself fails at once
  (SageMaker would retry it until the policy expires; locally that would only hang);
- the step's ``RetryPolicies`` from the definition: the first policy whose ``ExceptionType`` matches
  the refusal retries it after ``IntervalSeconds * BackoffRate ** n`` (n = retries that policy has made),
  until ``MaxAttempts`` retries or ``ExpireAfterMin`` minutes since the step started; then the step and
  the execution fail with the refusal and the policy that ran out. Meanwhile the step stays
  ``Executing`` and its ``AttemptCount`` grows;
- waits run ``time_scale`` times as long as SageMaker's (default :data:`TIME_SCALE`), and so does the
  clock ``ExpireAfterMin`` is measured on: elapsed local time divided by the scale.

The pool has a thread per execution the execution quota allows (an execution waiting for a retry holds
its thread, sleeping); the instance quota bounds how many jobs run.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from moto.sagemaker.exceptions import ValidationError

from local.emulator import ACCOUNT_ID, Emulator, Quotas, StepRecord
from local.process import child_environment, kill_tree

Notify = Callable[[str, dict[str, Any]], None]
OPT_ML = "/opt/ml"
RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
RESOURCE_CONFIG_ENV = "LOCAL_RESOURCE_CONFIG"
_OPT_ML_PATH = re.compile(r"(?<![\w./-])/opt/ml(?=/|$)")
_PYTHON = re.compile(r"python(3(\.\d+)?)?")
_STDERR_TAIL = 50
_TRANSFER = TransferConfig(use_threads=False)
# SageMaker's retry waits are minutes; locally they run 120 times faster (60 s -> 0.5 s), which keeps
# them in proportion to a local job (seconds) as they are to a processing job on AWS (minutes).
TIME_SCALE = 1 / 120
RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"
INSTANCE_LIMIT_MESSAGE = (
    "ResourceLimitExceeded: The account-level service limit '{type} for processing job usage' is "
    "{limit} Instances, with current utilization of {used} Instances and a request delta of {delta} "
    "Instances. Please use AWS Service Quotas to request an increase for this quota."
)
_UNBOUNDED_POOL = 64  # threads when there is no execution quota


class StepFailed(Exception):
    """A step could not run or its job failed; the message is the step's failure reason.

    ``exception_type`` is the retry-policy exception type it matches (``SageMaker.RESOURCE_LIMIT``...),
    or None for a failure no policy retries (the script's own error, a bad definition).
    """

    def __init__(self, message: str, exception_type: str | None = None) -> None:
        super().__init__(message)
        self.exception_type = exception_type


@dataclass(frozen=True)
class RetryPolicy:
    """One entry of a step's ``RetryPolicies``."""

    exception_types: tuple[str, ...]
    interval_seconds: float
    backoff_rate: float
    max_attempts: int | None
    expire_after_min: float | None

    def describe(self) -> str:
        limit = (
            f"MaxAttempts {self.max_attempts}"
            if self.max_attempts is not None
            else f"ExpireAfterMin {self.expire_after_min:g}"
        )
        return f"{'/'.join(self.exception_types)} retry policy ({limit})"


def retry_policies(step: Mapping[str, Any]) -> list[RetryPolicy]:
    """The step's retry policies, checked (SageMaker's defaults for what a policy leaves out)."""
    listed = step.get("RetryPolicies") or []
    where = f"Steps.{step.get('Name')}.RetryPolicies"
    if not isinstance(listed, list):
        raise StepFailed(f"{where} must be a list")
    policies = []
    for index, raw in enumerate(listed):
        try:
            types = raw["ExceptionType"]
            types = (types,) if isinstance(types, str) else tuple(str(t) for t in types)
            max_attempts = raw.get("MaxAttempts")
            expire = raw.get("ExpireAfterMin")
            policy = RetryPolicy(
                exception_types=types,
                interval_seconds=float(raw.get("IntervalSeconds", 1)),
                backoff_rate=float(raw.get("BackoffRate", 2.0)),
                max_attempts=None if max_attempts is None else int(max_attempts),
                expire_after_min=None if expire is None else float(expire),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise StepFailed(f"{where}[{index}] is malformed: {type(exc).__name__}: {exc}") from exc
        if (policy.max_attempts is None) == (policy.expire_after_min is None):
            raise StepFailed(f"{where}[{index}]: give exactly one of MaxAttempts and ExpireAfterMin")
        policies.append(policy)
    return policies


def retry_wait(
    policies: list[RetryPolicy], retries: list[int], failure: StepFailed, elapsed: float
) -> tuple[float | None, str]:
    """SageMaker's answer to a failed attempt: (seconds to wait before the next, or None; why).

    ``retries[i]`` counts the retries policy ``i`` made so far (updated here); ``elapsed`` is the
    seconds (SageMaker's clock) since the step started.
    """
    for index, policy in enumerate(policies):
        if failure.exception_type is None or failure.exception_type not in policy.exception_types:
            continue
        made = retries[index]
        if policy.max_attempts is not None and made >= policy.max_attempts:
            return None, f"{policy.describe()} exhausted after {made} retries"
        wait = policy.interval_seconds * policy.backoff_rate**made
        if policy.expire_after_min is not None and elapsed + wait > policy.expire_after_min * 60:
            return None, f"{policy.describe()} expired after {made} retries"
        retries[index] = made + 1
        return wait, f"{policy.describe()}, retry {made + 1}"
    return None, "no retry policy matches" if failure.exception_type else "not retryable"


@dataclass(frozen=True)
class ExecutionInfo:
    """What the ``Execution.*`` variables read."""

    arn: str
    pipeline_name: str
    pipeline_arn: str
    start_time: datetime

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[1]


def _ignore(kind: str, details: dict[str, Any]) -> None:
    return


# -- expressions ------------------------------------------------------------------------------------


def parameter_values(definition: Mapping[str, Any], given: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The execution's parameters: given values merged over the declared defaults, typed as declared."""
    listed = definition.get("Parameters") or []
    if not isinstance(listed, list) or not all(isinstance(p, Mapping) and p.get("Name") for p in listed):
        raise StepFailed("the pipeline definition's Parameters must be a list of objects with a Name")
    declared = {str(p["Name"]): p for p in listed}
    values = {str(p["Name"]): p.get("Value") for p in given}
    undeclared = sorted(set(values) - set(declared))
    if undeclared:
        raise StepFailed(
            f"Pipeline parameter(s) {', '.join(undeclared)} not declared in the pipeline definition "
            f"(declared: {', '.join(sorted(declared)) or 'none'})"
        )
    out: dict[str, Any] = {}
    for name, spec in declared.items():
        raw = values.get(name, spec.get("DefaultValue"))
        if raw is None:
            raise StepFailed(f"Pipeline parameter {name} has no value and no default value")
        kind = str(spec.get("Type", "String"))
        try:
            if kind == "Integer":
                out[name] = int(raw)
            elif kind == "Float":
                out[name] = float(raw)
            elif kind == "Boolean":
                text = str(raw).lower()
                if text not in ("true", "false"):
                    raise ValueError(raw)
                out[name] = text == "true"
            else:
                out[name] = str(raw)
        except ValueError as exc:
            raise StepFailed(f"Pipeline parameter {name}: {raw!r} is not a valid {kind}") from exc
    return out


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def resolve(
    node: Any, parameters: Mapping[str, Any], execution: ExecutionInfo, where: str = "definition"
) -> Any:
    """``node`` with ``Get`` (parameters, execution variables) and ``Std:Join`` evaluated."""
    if isinstance(node, list):
        return [resolve(v, parameters, execution, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Get"}:
        return _get(str(node["Get"]), parameters, execution, where)
    if set(node) == {"Std:Join"}:
        spec = node["Std:Join"]
        values = resolve(spec.get("Values", []), parameters, execution, where)
        return _text(spec.get("On", "")).join(_text(v) for v in values)
    functions = [k for k in node if k.startswith("Std:")]
    if len(node) == 1 and functions:
        raise StepFailed(f"{where}: the function {functions[0]} is not evaluated by the local runner")
    return {k: resolve(v, parameters, execution, f"{where}.{k}") for k, v in node.items()}


def _get(path: str, parameters: Mapping[str, Any], execution: ExecutionInfo, where: str) -> Any:
    scope, _, name = path.partition(".")
    if scope == "Parameters":
        if name not in parameters:
            raise StepFailed(f"{where}: {{'Get': '{path}'}} names an undeclared parameter {name}")
        return parameters[name]
    if scope == "Execution":
        variables = {
            "PipelineExecutionId": execution.execution_id,
            "PipelineExecutionArn": execution.arn,
            "PipelineName": execution.pipeline_name,
            "PipelineArn": execution.pipeline_arn,
            "StartDateTime": execution.start_time.isoformat(),
            "CurrentDateTime": datetime.now(UTC).isoformat(),
        }
        if name in variables:
            return variables[name]
        raise StepFailed(f"{where}: unknown execution variable {path}")
    raise StepFailed(
        f"{where}: {{'Get': '{path}'}} cannot be evaluated locally (only Parameters.* and Execution.*)"
    )


# -- S3 helpers --------------------------------------------------------------------------------------


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise StepFailed(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise StepFailed(f"no bucket in {uri!r}")
    return bucket, key


def prefix_destination(prefix: str, key: str) -> str:
    """Where an S3Prefix input puts ``key``: the key minus the prefix's part up to its last ``/``."""
    return key[prefix.rfind("/") + 1 :]


def shard(keys: list[str], instances: int, host: int) -> list[str]:
    """ShardedByS3Key: the sorted keys dealt out to the instances (host counts from 0)."""
    return sorted(keys)[host::instances]


# -- the runner ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """A processing step's arguments, checked."""

    cluster: dict[str, Any]
    count: int
    entrypoint: list[str]
    arguments: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    max_runtime: float
    environment: dict[str, str]


@dataclass
class _Instance:
    host: str
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    stdout: Path | None = None
    stderr: Path | None = None


@dataclass
class RunnerStats:
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    durations: list[float] = field(default_factory=list)  # whole executions, seconds
    job_durations: list[float] = field(default_factory=list)  # processing jobs (instances held), seconds
    refused_jobs: int = 0  # jobs refused for the instance quota
    retries: int = 0  # step retries made under a retry policy
    most_instances: int = 0  # the most instances in use at once


class Runner:
    """Polls for started executions and runs them on a small pool of worker threads."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        sagemaker: Any,
        s3: Any,
        quotas: Quotas | None = None,
        time_scale: float = TIME_SCALE,
        poll_interval: float = 0.5,
        scratch_dir: Path | None = None,
        log_dir: Path | None = None,
        notify: Notify | None = None,
        stand_ins: Collection[str] = (),
    ) -> None:
        """``stand_ins``: pipelines whose executions are only recorded as started, never run (the
        pipelines of other teams that routes point at: ``python -m local up --pipeline NAME``)."""
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive (got {time_scale})")
        self.quotas = quotas or Quotas(None, None)
        self.time_scale = time_scale
        self._instances_used = 0
        self.emulator = emulator
        self.sagemaker = sagemaker
        self.s3 = s3
        self.poll_interval = poll_interval
        self.scratch_dir = scratch_dir
        self.log_dir = log_dir
        self.notify = notify or _ignore
        self.stand_ins = frozenset(stand_ins)
        self.stats = RunnerStats()
        threads = self.quotas.max_concurrent_executions or _UNBOUNDED_POOL
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="runner")
        self._futures: dict[str, Future[None]] = {}
        self._seen: set[str] = set()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Runner:
        self._thread = threading.Thread(target=self._poll_loop, name="runner-poll", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling, kill running jobs, mark unfinished executions Stopped; returns when all is joined."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            kill_tree(proc)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for arn, future in self._futures.items():
            if future.cancelled():
                self._record_execution(arn, "Stopped", "the local runtime stopped before the execution ran")

    def busy(self) -> int:
        """Executions picked up and not finished yet."""
        return sum(1 for f in self._futures.values() if not f.done())

    # -- polling ------------------------------------------------------------------------------------

    def rerun(self, arn: str) -> None:
        """Run ``arn`` again at the next poll: RetryPipelineExecution put it back to Executing."""
        self._seen.discard(arn)
        self.wake()

    def wake(self) -> None:
        """Poll now: something (the local delivery, after an invocation) may have started an execution."""
        self._wake.set()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.poll_once()
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    break
                self.notify("poll-error", {"error": str(exc)})
            self._wake.wait(self.poll_interval)

    def poll_once(self) -> list[str]:
        """Pick up the executions that are Executing and not yet seen; returns their ARNs."""
        found: list[str] = []
        executions = self.sagemaker.get_paginator("list_pipeline_executions")
        for name in self._pipelines():
            for page in executions.paginate(PipelineName=name):
                for summary in page.get("PipelineExecutionSummaries", []):
                    arn = summary["PipelineExecutionArn"]
                    if summary.get("PipelineExecutionStatus") != "Executing" or arn in self._seen:
                        continue
                    self._seen.add(arn)
                    if name in self.stand_ins:
                        parameters = self._execution_parameters(arn)
                        self.notify(
                            "execution-recorded", {"arn": arn, "pipeline": name, "parameters": parameters}
                        )
                    else:
                        found.append(arn)
        # Oldest first: SageMaker lists newest first, and the arrival order is the fair order to run in.
        for arn in reversed(found):
            if self._stop.is_set():
                break
            self.stats.started += 1
            self.notify("execution-queued", {"arn": arn})
            self._futures[arn] = self._pool.submit(self._run_guarded, arn)
        return found

    def _pipelines(self) -> list[str]:
        pages = self.sagemaker.get_paginator("list_pipelines").paginate()
        return [p["PipelineName"] for page in pages for p in page.get("PipelineSummaries", [])]

    # -- one execution ------------------------------------------------------------------------------

    def _run_guarded(self, arn: str) -> None:
        try:
            self.run_execution(arn)
        except (ClientError, BotoCoreError, OSError) as exc:
            # The emulator or the disk failed under the runner: record it, never leave it Executing.
            self._record_execution(arn, "Failed", f"local runner error: {exc}")
            self.notify("execution-failed", {"arn": arn, "reason": f"local runner error: {exc}"})
        except Exception as exc:
            # A bug in the runner: the execution must not stay Executing forever; the error is reported
            # with its type and re-raised (kept by the worker's future), not swallowed.
            reason = f"local runner bug: {type(exc).__name__}: {exc}"
            self._record_execution(arn, "Failed", reason)
            self.notify("execution-failed", {"arn": arn, "reason": reason})
            raise

    def run_execution(self, arn: str) -> None:
        started = time.monotonic()
        described = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
        pipeline_arn = str(described.get("PipelineArn", ""))
        info = ExecutionInfo(
            arn=arn,
            pipeline_name=pipeline_arn.rsplit("/", 1)[-1] or arn.split("/")[1],
            pipeline_arn=pipeline_arn,
            start_time=described.get("CreationTime") or datetime.now(UTC),
        )
        given = self._execution_parameters(arn)
        self.notify(
            "execution-started", {"arn": arn, "pipeline": info.pipeline_name, "parameters": dict(given)}
        )
        try:
            raw = self.sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)
            try:
                definition = json.loads(raw["PipelineDefinition"])
            except json.JSONDecodeError as exc:
                raise StepFailed(f"the pipeline definition is not valid JSON: {exc}") from exc
            if not isinstance(definition, dict):
                raise StepFailed("the pipeline definition is not a JSON object")
            parameters = parameter_values(definition, [{"Name": k, "Value": v} for k, v in given.items()])
            steps = self._ordered_steps(definition, arn)
            for step in steps:
                if self._stop.is_set():
                    raise StepFailed("the local runtime stopped during the execution")
                self._run_step(step, parameters, info)
        except StepFailed as exc:
            reason = str(exc)
            self._record_execution(arn, "Stopped" if self._stop.is_set() else "Failed", reason)
            self.stats.failed += 1
            self.notify(
                "execution-failed",
                {
                    "arn": arn,
                    "reason": reason,
                    "seconds": time.monotonic() - started,
                    "parameters": dict(given),
                },
            )
            return
        self._record_execution(arn, "Succeeded", None)
        self.stats.succeeded += 1
        self.stats.durations.append(time.monotonic() - started)
        self.notify(
            "execution-succeeded",
            {"arn": arn, "seconds": time.monotonic() - started, "parameters": dict(given)},
        )

    def _execution_parameters(self, arn: str) -> dict[str, Any]:
        pages = self.sagemaker.get_paginator("list_pipeline_parameters_for_execution").paginate(
            PipelineExecutionArn=arn
        )
        return {p["Name"]: p["Value"] for page in pages for p in page.get("PipelineParameters", [])}

    def _ordered_steps(self, definition: Mapping[str, Any], arn: str) -> list[dict[str, Any]]:
        listed = definition.get("Steps")
        if not isinstance(listed, list) or not all(isinstance(s, dict) and s.get("Name") for s in listed):
            raise StepFailed("the pipeline definition's Steps must be a list of objects with a Name")
        steps = {str(s["Name"]): dict(s) for s in listed}
        for name, step in steps.items():
            if step.get("Type") != "Processing":
                reason = (
                    f"Step {name} has type {step.get('Type')!r}, which the local runner cannot run "
                    "(it runs Processing steps only)"
                )
                now = datetime.now(UTC)
                self.emulator.record_step(
                    arn, StepRecord(name, str(step.get("Type")), "Failed", now, now, reason)
                )
                raise StepFailed(reason)
        graph = {name: set(step.get("DependsOn") or []) & set(steps) for name, step in steps.items()}
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            raise StepFailed(f"the steps depend on each other in a cycle: {exc.args[1]}") from exc
        return [steps[name] for name in order]

    def _record_execution(self, arn: str, status: str, reason: str | None) -> None:
        try:
            self.emulator.record_execution(arn, status, reason)
        except ValidationError as exc:  # the execution vanished (emulator reset mid-run)
            self.notify("record-error", {"arn": arn, "error": str(exc)})

    # -- one processing step ------------------------------------------------------------------------

    def _run_step(self, step: Mapping[str, Any], parameters: Mapping[str, Any], info: ExecutionInfo) -> None:
        name = str(step["Name"])
        started_at = datetime.now(UTC)
        job_name = (
            f"pipelines-{info.execution_id}-{name}-{hashlib.sha256(info.arn.encode()).hexdigest()[:10]}"
        )
        job_arn = f"arn:aws:sagemaker:{self.emulator.region}:{ACCOUNT_ID}:processing-job/{job_name.lower()}"
        metadata = {"ProcessingJob": {"Arn": job_arn}}
        record = StepRecord(name, "Processing", "Executing", started_at, metadata=metadata)
        self.emulator.record_step(info.arn, record)
        self.notify("step-started", {"arn": info.arn, "step": name})
        started = time.monotonic()
        try:
            policies = retry_policies(step)
            args = resolve(step.get("Arguments") or {}, parameters, info, f"Steps.{name}.Arguments")
            retries = [0] * len(policies)
            while True:
                try:
                    outputs = self._processing_job(name, args, info)
                    break
                except StepFailed as exc:
                    elapsed = (time.monotonic() - started) / self.time_scale
                    wait, why = retry_wait(policies, retries, exc, elapsed)
                    if wait is None:
                        if exc.exception_type is None:
                            raise
                        raise StepFailed(f"{exc} ({why})", exc.exception_type) from exc
                    self.stats.retries += 1
                    record.attempts += 1
                    self.emulator.record_step(info.arn, record)
                    self.notify(
                        "step-retrying",
                        {
                            "arn": info.arn,
                            "step": name,
                            "attempt": record.attempts,
                            "reason": str(exc),
                            "policy": why,
                            "wait": wait,
                            "local_wait": wait * self.time_scale,
                        },
                    )
                    if self._stop.wait(wait * self.time_scale):
                        raise StepFailed("the local runtime stopped during the execution") from exc
        except StepFailed as exc:
            record.status, record.end_time, record.failure_reason = "Failed", datetime.now(UTC), str(exc)
            self.emulator.record_step(info.arn, record)
            self.notify("step-failed", {"arn": info.arn, "step": name, "reason": str(exc)})
            raise StepFailed(f"Step {name} failed: {exc}") from exc
        record.status, record.end_time = "Succeeded", datetime.now(UTC)
        self.emulator.record_step(info.arn, record)
        self.notify("step-succeeded", {"arn": info.arn, "step": name, "outputs": outputs})

    def _processing_job(self, step: str, args: Mapping[str, Any], info: ExecutionInfo) -> list[str]:
        """Run the job described by CreateProcessingJob-shaped ``args``; the output URIs."""
        try:
            job = self._parse_job(args)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # a shape no job request has
            raise StepFailed(f"malformed processing step arguments: {type(exc).__name__}: {exc}") from exc
        hosts = [f"algo-{n + 1}" for n in range(job.count)]
        self._acquire_instances(job)
        began = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(
                prefix=f"{info.execution_id}-{step}-", dir=self.scratch_dir
            ) as tmp:
                instances = [_Instance(host, Path(tmp) / host) for host in hosts]
                for index, instance in enumerate(instances):
                    self._prepare(instance, index, hosts, job.inputs, job.outputs, args, job.cluster)
                try:
                    self._run_instances(
                        instances, job.entrypoint, job.arguments, job.environment, job.max_runtime, info, step
                    )
                except StepFailed:  # SageMaker uploads a Continuous output while the job runs
                    continuous = [o for o in job.outputs if o["S3Output"].get("S3UploadMode") == "Continuous"]
                    self._upload_outputs(instances, continuous)
                    raise
                return self._upload_outputs(instances, job.outputs)
        finally:
            with self._lock:
                self._instances_used -= job.count
                self.stats.job_durations.append(time.monotonic() - began)

    def _acquire_instances(self, job: _Job) -> None:
        """Take the job's instances from the account's quota, or refuse it as CreateProcessingJob does."""
        limit = self.quotas.max_processing_instances
        instance_type = str(job.cluster.get("InstanceType", "ml.m5.xlarge"))
        with self._lock:
            used = self._instances_used
            if limit is not None and used + job.count > limit:
                self.stats.refused_jobs += 1
                message = INSTANCE_LIMIT_MESSAGE.format(
                    type=instance_type, limit=limit, used=used, delta=job.count
                )
                if job.count > limit:
                    raise StepFailed(
                        f"{message} (the job asks for more instances than the quota allows: it can never "
                        "run here, so the local runner fails it instead of retrying it)"
                    )
                raise StepFailed(message, RESOURCE_LIMIT)
            self._instances_used = used + job.count
            self.stats.most_instances = max(self.stats.most_instances, self._instances_used)

    def _parse_job(self, args: Mapping[str, Any]) -> _Job:
        cluster = (args.get("ProcessingResources") or {}).get("ClusterConfig") or {}
        try:
            count = int(cluster.get("InstanceCount", 1))
        except (TypeError, ValueError) as exc:
            raise StepFailed(f"InstanceCount {cluster.get('InstanceCount')!r} is not an integer") from exc
        if count < 1:
            raise StepFailed(f"InstanceCount must be at least 1 (got {count})")
        app = args.get("AppSpecification") or {}
        entrypoint = [str(a) for a in app.get("ContainerEntrypoint") or []]
        if not entrypoint:
            raise StepFailed("no ContainerEntrypoint: the image's own entrypoint cannot run locally")
        arguments = [_text(a) for a in app.get("ContainerArguments") or []]
        inputs = [self._check_input(i) for i in args.get("ProcessingInputs") or []]
        outputs = [
            self._check_output(o) for o in (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        ]
        max_runtime = float(((args.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")) or 86400)
        environment = {str(k): _text(v) for k, v in (args.get("Environment") or {}).items()}
        return _Job(dict(cluster), count, entrypoint, arguments, inputs, outputs, max_runtime, environment)

    @staticmethod
    def _check_input(item: Mapping[str, Any]) -> dict[str, Any]:
        name = item.get("InputName", "?")
        s3_input = item.get("S3Input")
        if not s3_input:
            raise StepFailed(f"input {name}: only S3Input is supported locally (not {', '.join(item)})")
        problems = {
            "S3DataType": ("S3Prefix",),
            "S3InputMode": ("File",),
            "S3CompressionType": ("None",),
            "S3DataDistributionType": ("FullyReplicated", "ShardedByS3Key"),
        }
        for key, allowed in problems.items():
            value = s3_input.get(key, allowed[0])
            if value not in allowed:
                raise StepFailed(
                    f"input {name}: {key} {value} is not supported locally (only {', '.join(allowed)})"
                )
        _local_path(str(s3_input.get("LocalPath", "")), f"input {name}")
        split_s3_uri(s3_input.get("S3Uri"))
        return dict(item)

    @staticmethod
    def _check_output(item: Mapping[str, Any]) -> dict[str, Any]:
        name = item.get("OutputName", "?")
        s3_output = item.get("S3Output")
        if not s3_output:
            raise StepFailed(f"output {name}: only S3Output is supported locally")
        _local_path(str(s3_output.get("LocalPath", "")), f"output {name}")
        split_s3_uri(s3_output.get("S3Uri"))
        return dict(item)

    def _prepare(
        self,
        instance: _Instance,
        index: int,
        hosts: list[str],
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        args: Mapping[str, Any],
        cluster: Mapping[str, Any],
    ) -> None:
        """Download this instance's inputs, create its output folders, write its resource config."""
        for item in inputs:
            s3_input = item["S3Input"]
            bucket, prefix = split_s3_uri(s3_input["S3Uri"])
            keys = [k for k in self._list_keys(bucket, prefix) if not k.endswith("/")]
            if not keys:
                uri, name = s3_input["S3Uri"], item.get("InputName")
                raise StepFailed(
                    f'ClientError: No S3 objects found under S3 URL "{uri}" given in input {name}'
                )
            if s3_input.get("S3DataDistributionType") == "ShardedByS3Key":
                keys = shard(keys, len(hosts), index)
            target = self.map_path(s3_input["LocalPath"], instance.root)
            target.mkdir(parents=True, exist_ok=True)
            for key in keys:
                relative = prefix_destination(prefix, key)
                destination = (target / relative).resolve()
                if not destination.is_relative_to(target.resolve()):
                    where = s3_input["LocalPath"]
                    raise StepFailed(f"input {item.get('InputName')}: key {key!r} would land outside {where}")
                destination.parent.mkdir(parents=True, exist_ok=True)
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
                with destination.open("wb") as fh:
                    shutil.copyfileobj(body, fh, 1024 * 1024)
        for item in outputs:
            self.map_path(item["S3Output"]["LocalPath"], instance.root).mkdir(parents=True, exist_ok=True)
        config_dir = self.map_path("/opt/ml/config", instance.root)
        config_dir.mkdir(parents=True, exist_ok=True)
        instance_type = str(cluster.get("InstanceType", "ml.m5.xlarge"))
        resource_config = {
            "current_host": instance.host,
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": hosts,
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}
            ],
            "network_interface_name": "eth0",
        }
        (config_dir / "resourceconfig.json").write_text(json.dumps(resource_config), encoding="utf-8")
        (config_dir / "processingjobconfig.json").write_text(json.dumps(args, default=str), encoding="utf-8")

    def _list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [obj["Key"] for obj in page.get("Contents", [])]
        return keys

    @staticmethod
    def map_path(path: str, root: Path) -> Path:
        """Where ``/opt/ml/...`` lives for an instance whose scratch folder is ``root``."""
        return root / _local_path(path, "path").relative_to("/")

    def _run_instances(
        self,
        instances: list[_Instance],
        entrypoint: list[str],
        arguments: list[str],
        environment: Mapping[str, str],
        max_runtime: float,
        info: ExecutionInfo,
        step: str,
    ) -> None:
        logs = self.log_dir / info.pipeline_name / info.execution_id if self.log_dir else None
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
        for instance in instances:
            command = [map_opt_ml(a, instance.root) for a in entrypoint + arguments]
            if _PYTHON.fullmatch(command[0]):
                command[0] = sys.executable
            folder = logs or instance.root
            instance.stdout = folder / f"{step}-{instance.host}.stdout.log"
            instance.stderr = folder / f"{step}-{instance.host}.stderr.log"
            env = child_environment(
                {**environment, RESOURCE_CONFIG_ENV: str(self.map_path(RESOURCE_CONFIG, instance.root))}
            )
            with instance.stdout.open("wb") as out, instance.stderr.open("wb") as err, self._lock:
                if self._stop.is_set():
                    raise StepFailed("the local runtime stopped during the execution")
                try:
                    instance.proc = subprocess.Popen(
                        command,
                        cwd=instance.root,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        start_new_session=True,
                    )
                except OSError as exc:
                    raise StepFailed(f"AlgorithmError: cannot start {command[0]}: {exc}") from exc
                self._procs.add(instance.proc)
        try:
            self._wait(instances, max_runtime)
        finally:
            with self._lock:
                for instance in instances:
                    if instance.proc is not None:
                        self._procs.discard(instance.proc)
                        kill_tree(instance.proc)

    def _wait(self, instances: list[_Instance], max_runtime: float) -> None:
        deadline = time.monotonic() + max_runtime
        pending = [i for i in instances if i.proc is not None]
        while pending:
            for instance in list(pending):
                assert instance.proc is not None
                code = instance.proc.poll()
                if code is None:
                    continue
                pending.remove(instance)
                if code != 0:
                    raise StepFailed(self._failure(instance, code, len(instances)))
            if self._stop.is_set():
                raise StepFailed("the local runtime stopped during the execution")
            if time.monotonic() > deadline:
                raise StepFailed(f"ClientError: the job exceeded MaxRuntimeInSeconds ({max_runtime:.0f} s)")
            if pending:
                time.sleep(0.02)

    @staticmethod
    def _failure(instance: _Instance, code: int, count: int) -> str:
        message = last_meaningful_line(instance.stderr) if instance.stderr else None
        detail = f"killed by signal {-code}" if code < 0 else f"exit code: {code}"
        host = f" on {instance.host}" if count > 1 else ""
        if message:
            return f"AlgorithmError: {message}, {detail}{host}"
        return f"AlgorithmError: the script wrote nothing to stderr, {detail}{host}"

    def _upload_outputs(self, instances: list[_Instance], outputs: list[dict[str, Any]]) -> list[str]:
        uris: list[str] = []
        for item in outputs:
            s3_output = item["S3Output"]
            bucket, prefix = split_s3_uri(s3_output["S3Uri"])
            prefix = prefix.rstrip("/") + "/" if prefix else ""
            for instance in instances:
                folder = self.map_path(s3_output["LocalPath"], instance.root)
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    key = prefix + path.relative_to(folder).as_posix()
                    self.s3.upload_file(str(path), bucket, key, Config=_TRANSFER)
            uris.append(f"s3://{bucket}/{prefix}")
        return uris


def map_opt_ml(text: str, root: Path) -> str:
    """``text`` with every ``/opt/ml/...`` path in it moved under ``root``."""
    return _OPT_ML_PATH.sub(lambda match: str(root) + match.group(0), text)


def _local_path(path: str, what: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts or not str(pure).startswith(OPT_ML + "/"):
        raise StepFailed(f"{what}: LocalPath {path!r} must be an absolute path under {OPT_ML}/")
    return pure


def last_meaningful_line(path: Path) -> str | None:
    """The last non-blank line of a log file (its last few KB), stripped."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 16384))
        tail = fh.read().decode("utf-8", errors="replace")
    lines: deque[str] = deque(
        (line.strip() for line in tail.splitlines() if line.strip()), maxlen=_STDERR_TAIL
    )
    return lines[-1] if lines else None


__all__ = [
    "RESOURCE_LIMIT",
    "TIME_SCALE",
    "ExecutionInfo",
    "RetryPolicy",
    "Runner",
    "RunnerStats",
    "StepFailed",
    "last_meaningful_line",
    "parameter_values",
    "prefix_destination",
    "resolve",
    "retry_policies",
    "retry_wait",
    "shard",
    "split_s3_uri",
]
