"""The local pipeline runner: runs each execution the emulator's start listener reports, as SageMaker would
run what the project's rendered definition uses, and fails it with a message saying so on anything else,
before anything runs. docs/local-runtime.md ("Pipeline runner", "Retry policies") has the detail.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from local.emulator import ACCOUNT_ID, Emulator, Quotas
from local.lambdas import child_environment, kill_tree

Notify = Callable[[str, dict[str, Any]], None]
# SageMaker's retry waits are minutes; locally they run 120 times faster (60 s -> 0.5 s), which keeps
# them in proportion to a local job (seconds) as they are to a processing job on AWS (minutes).
TIME_SCALE = 1 / 120
RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"
INSTANCE_LIMIT_MESSAGE = (
    "ResourceLimitExceeded: The account-level service limit '{type} for processing job usage' is "
    "{limit} Instances, with current utilization of {used} Instances and a request delta of {delta} "
    "Instances. Please use AWS Service Quotas to request an increase for this quota."
)
RESOURCE_CONFIG_ENV = "LOCAL_RESOURCE_CONFIG"
STOPPED = "the local runtime stopped during the execution"
_OPT_ML_PATH = re.compile(r"(?<![\w./-])/opt/ml(?=/|$)")
_PYTHON = re.compile(r"python(3(\.\d+)?)?")
_TYPES: dict[str, Callable[[Any], Any]] = {"String": str, "Integer": int, "Float": float}
_INPUTS = {  # what runs locally of a ProcessingS3Input (the first value is SageMaker's default)
    "S3DataType": ("S3Prefix",),
    "S3InputMode": ("File",),
    "S3CompressionType": ("None",),
    "S3DataDistributionType": ("FullyReplicated", "ShardedByS3Key"),
}
_UPLOAD_MODES = ("EndOfJob", "Continuous")
_MALFORMED = (AttributeError, KeyError, TypeError, ValueError)  # a shape no definition has (json's too)
_TRANSFER = TransferConfig(use_threads=False)


class StepFailed(Exception):
    """A step could not run or its job failed; the message is the step's failure reason.
    ``exception_type``: the retry-policy exception type it matches, None if no policy retries it."""

    def __init__(self, message: str, exception_type: str | None = None) -> None:
        super().__init__(message)
        self.exception_type = exception_type


def retry_wait(
    policies: list[Mapping[str, Any]], retries: list[int], failure: StepFailed, elapsed: float
) -> tuple[float | None, str]:
    """SageMaker's answer to a failed attempt: (seconds to wait before the next, or None; why).
    ``retries[i]``: the retries policy ``i`` made so far (updated here); ``elapsed``: seconds (SageMaker's
    clock) since the step started."""
    for index, policy in enumerate(policies):
        if failure.exception_type is None or failure.exception_type not in policy["ExceptionType"]:
            continue
        made, attempts, expire = retries[index], policy.get("MaxAttempts"), policy.get("ExpireAfterMin")
        limit = f"MaxAttempts {attempts}" if attempts is not None else f"ExpireAfterMin {expire:g}"
        name = f"{'/'.join(policy['ExceptionType'])} retry policy ({limit})"
        if attempts is not None and made >= int(attempts):
            return None, f"{name} exhausted after {made} retries"
        wait = float(policy.get("IntervalSeconds", 1)) * float(policy.get("BackoffRate", 2.0)) ** made
        if expire is not None and elapsed + wait > float(expire) * 60:
            return None, f"{name} expired after {made} retries"
        retries[index] = made + 1
        return wait, f"{name}, retry {made + 1}"
    return None, "no retry policy matches" if failure.exception_type else "not retryable"


def parameter_values(definition: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """The execution's parameters: given values merged over the declared defaults, typed as declared."""
    declared = {str(p["Name"]): p for p in definition.get("Parameters") or []}
    if undeclared := sorted(set(given) - set(declared)):
        raise StepFailed(
            f"Pipeline parameter(s) {', '.join(undeclared)} not declared in the pipeline definition "
            f"(declared: {', '.join(sorted(declared)) or 'none'})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        raw, kind = given.get(name, spec.get("DefaultValue")), str(spec.get("Type", "String"))
        if raw is None or kind not in _TYPES:
            raise StepFailed(f"Pipeline parameter {name}: no value, or a type ({kind}) not evaluated locally")
        try:
            values[name] = _TYPES[kind](raw)
        except ValueError as exc:
            raise StepFailed(f"Pipeline parameter {name}: {raw!r} is not a valid {kind}") from exc
    return values


def resolve(node: Any, parameters: Mapping[str, Any], where: str = "definition") -> Any:
    """``node`` with ``Get`` (``Parameters.*``) and ``Std:Join`` evaluated."""
    if isinstance(node, list):
        return [resolve(v, parameters, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Get"}:
        scope, _, name = str(node["Get"]).partition(".")
        if scope != "Parameters" or name not in parameters:
            raise StepFailed(f"{where}: {node} cannot be evaluated locally (only declared Parameters.*)")
        return parameters[name]
    if set(node) == {"Std:Join"}:
        values = resolve(node["Std:Join"].get("Values", []), parameters, where)
        return str(node["Std:Join"].get("On", "")).join(str(v) for v in values)
    if len(node) == 1 and str(next(iter(node))).startswith("Std:"):
        raise StepFailed(f"{where}: the function {next(iter(node))} is not evaluated by the local runner")
    return {k: resolve(v, parameters, f"{where}.{k}") for k, v in node.items()}


def split_s3_uri(uri: Any) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].partition("/")[0]:
        raise StepFailed(f"not an s3://bucket/ URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def _opt_ml(root: Path, path: Any) -> Path:
    """Where the instance whose scratch folder is ``root`` has the ``/opt/ml/...`` path ``path``."""
    pure = PurePosixPath(str(path))
    if not str(pure).startswith("/opt/ml/") or ".." in pure.parts:
        raise StepFailed(f"LocalPath {path!r} must be an absolute path under /opt/ml/")
    return root / pure.relative_to("/")


@dataclass(frozen=True)
class Job:
    """A processing step's arguments (CreateProcessingJob's shape, resolved), checked."""

    instance_type: str
    count: int
    command: list[str]
    environment: dict[str, str]
    inputs: list[dict[str, Any]]  # S3Input, with its InputName
    outputs: list[dict[str, Any]]  # S3Output, with its OutputName

    @classmethod
    def parse(cls, args: Mapping[str, Any]) -> Job:
        cluster, app = args["ProcessingResources"]["ClusterConfig"], args["AppSpecification"]
        if not app.get("ContainerEntrypoint"):
            raise StepFailed("no ContainerEntrypoint: the image's own entrypoint cannot run locally")
        outputs = (args.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        job = cls(
            str(cluster["InstanceType"]),
            int(cluster["InstanceCount"]),
            [str(a) for a in [*app["ContainerEntrypoint"], *(app.get("ContainerArguments") or [])]],
            {str(k): str(v) for k, v in (args.get("Environment") or {}).items()},
            [{"InputName": i["InputName"], **i["S3Input"]} for i in args.get("ProcessingInputs") or []],
            [{"OutputName": o["OutputName"], **o["S3Output"]} for o in outputs],
        )
        problems = [f"InstanceCount must be at least 1 (got {job.count})"] if job.count < 1 else []
        for item in job.inputs:
            for key, allowed in _INPUTS.items():
                if (value := item.get(key, allowed[0])) not in allowed:
                    name, only = item["InputName"], ", ".join(allowed)
                    problems.append(f"input {name}: {key} {value} is not supported locally (only {only})")
        for item in job.outputs:
            if item.get("S3UploadMode") not in _UPLOAD_MODES:
                problems.append(f"output {item['OutputName']}: S3UploadMode must be one of {_UPLOAD_MODES}")
        if problems:
            raise StepFailed("; ".join(problems))
        for item in job.inputs + job.outputs:
            split_s3_uri(item.get("S3Uri"))
            _opt_ml(Path("/"), item.get("LocalPath"))
        return job


@dataclass
class RunnerStats:
    succeeded: int = 0
    job_durations: list[float] = field(default_factory=list)  # processing jobs (instances held), seconds
    refused_jobs: int = 0  # jobs refused for the instance quota
    retries: int = 0  # step retries made under a retry policy
    most_instances: int = 0  # the most instances in use at once


class Runner:
    """Runs the executions the emulator starts, a worker thread each within the execution quota.
    ``stand_ins``: pipelines whose executions are only recorded as started (``up --pipeline NAME``)."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        sagemaker: Any,
        s3: Any,
        quotas: Quotas | None = None,
        time_scale: float = TIME_SCALE,
        scratch_dir: Path | None = None,
        log_dir: Path | None = None,
        notify: Notify | None = None,
        stand_ins: Collection[str] = (),
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive (got {time_scale})")
        self.emulator, self.sagemaker, self.s3 = emulator, sagemaker, s3
        self.quotas, self.time_scale = quotas or Quotas(None, None), time_scale
        self.scratch_dir, self.log_dir = scratch_dir, log_dir
        self.notify: Notify = notify or (lambda kind, details: None)
        self.stand_ins, self.stats = frozenset(stand_ins), RunnerStats()
        threads = self.quotas.max_concurrent_executions or 64
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="runner")
        self._futures: dict[str, Future[None]] = {}
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._instances_used = 0
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._unsubscribe: Callable[[], None] = lambda: None

    def start(self) -> Runner:
        self._unsubscribe = self.emulator.on_start(self._started)
        return self

    def stop(self) -> None:
        """Stop taking executions, kill running jobs, mark unfinished executions Stopped; all joined."""
        with self._lock:
            self._stop.set()
            procs = list(self._procs)
        self._unsubscribe()
        self._unsubscribe = lambda: None
        for proc in procs:
            kill_tree(proc)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for arn, future in self._futures.items():
            if future.cancelled():
                reason = "the local runtime stopped before the execution ran"
                self.emulator.record_execution(arn, "Stopped", reason)

    def busy(self) -> int:
        """Executions taken and not finished yet."""
        return sum(1 for f in list(self._futures.values()) if not f.done())

    def _started(self, arn: str, replayed: bool) -> None:
        """The emulator's start listener: a new (or retried) execution is run; a replay runs nothing."""
        with self._lock:
            if replayed or self._stop.is_set():
                return
            self._futures[arn] = self._pool.submit(self.run_execution, arn)
        self.notify("execution-queued", {"arn": arn})

    def run_execution(self, arn: str) -> None:
        started, pipeline, given = time.monotonic(), arn.split("/")[1], {}
        try:
            pages = self.sagemaker.get_paginator("list_pipeline_parameters_for_execution")
            listed = pages.paginate(PipelineExecutionArn=arn)
            given = {p["Name"]: p["Value"] for page in listed for p in page.get("PipelineParameters", [])}
            details = {"arn": arn, "pipeline": pipeline, "parameters": given}
            if pipeline in self.stand_ins:
                return self.notify("execution-recorded", details)
            self.notify("execution-started", details)
            raw = self.sagemaker.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)
            definition = json.loads(raw["PipelineDefinition"])
            parameters, steps = parameter_values(definition, given), definition["Steps"]
            if other := next((s for s in steps if s["Type"] != "Processing"), None):
                raise StepFailed(
                    f"Step {other['Name']} has type {other['Type']!r}, which the local runner cannot run "
                    "(it runs Processing steps only)"
                )
            for step in steps:
                self._run_step(arn, step, parameters)
        except StepFailed as exc:
            reason = str(exc)
        except _MALFORMED as exc:
            reason = f"the pipeline definition is malformed: {type(exc).__name__}: {exc}"
        except (ClientError, BotoCoreError, OSError) as exc:  # the emulator or the disk failed under it
            reason = f"local runner error: {exc}"
        else:
            self.emulator.record_execution(arn, "Succeeded", None)
            self.stats.succeeded += 1
            seconds = time.monotonic() - started
            return self.notify("execution-succeeded", {"arn": arn, "seconds": seconds, "parameters": given})
        self.emulator.record_execution(arn, "Stopped" if self._stop.is_set() else "Failed", reason)
        self.notify("execution-failed", {"arn": arn, "reason": reason, "parameters": given})

    def _run_step(self, arn: str, step: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        name, started, execution_id = str(step["Name"]), time.monotonic(), arn.rsplit("/", 1)[1]
        job_name = f"pipelines-{execution_id}-{name}-{hashlib.sha256(arn.encode()).hexdigest()[:10]}"
        job_arn = f"arn:aws:sagemaker:{self.emulator.region}:{ACCOUNT_ID}:processing-job/{job_name.lower()}"
        record: dict[str, Any] = {"StepName": name, "StepDisplayName": name, "StepStatus": "Executing"}
        record.update(StartTime=datetime.now(UTC).isoformat(), AttemptCount=1)
        record["Metadata"] = {"ProcessingJob": {"Arn": job_arn}}
        self.emulator.record_step(arn, record)
        policies = list(step.get("RetryPolicies") or [])
        retries = [0] * len(policies)
        try:
            try:
                job = Job.parse(resolve(step.get("Arguments") or {}, parameters, f"Steps.{name}.Arguments"))
            except _MALFORMED as exc:
                raise StepFailed(f"malformed processing step arguments: {type(exc).__name__}: {exc}") from exc
            while True:
                try:
                    return self._processing_job(arn, name, job, record)
                except StepFailed as exc:
                    elapsed = (time.monotonic() - started) / self.time_scale
                    wait, why = retry_wait(policies, retries, exc, elapsed)
                    if wait is None and exc.exception_type is None:
                        raise
                    if wait is None:
                        raise StepFailed(f"{exc} ({why})") from exc
                    self.stats.retries += 1
                    record["AttemptCount"] += 1
                    self.emulator.record_step(arn, record)
                    local = wait * self.time_scale
                    self.notify("step-retrying", {
                        "arn": arn, "step": name, "attempt": record["AttemptCount"], "reason": str(exc),
                        "policy": why, "wait": wait, "local_wait": local,
                    })  # fmt: skip
                    if self._stop.wait(local):
                        raise StepFailed(STOPPED) from exc
        except StepFailed as exc:
            record.update(StepStatus="Failed", EndTime=datetime.now(UTC).isoformat(), FailureReason=str(exc))
            self.emulator.record_step(arn, record)
            raise StepFailed(f"Step {name} failed: {exc}") from exc

    def _processing_job(self, arn: str, step: str, job: Job, record: dict[str, Any]) -> None:
        """Run ``job`` within the instance quota; upload its outputs as their upload modes say."""
        self._acquire_instances(job)
        began, hosts = time.monotonic(), [f"algo-{n + 1}" for n in range(job.count)]
        try:
            prefix = f"{arn.rsplit('/', 1)[1]}-{step}-"
            with tempfile.TemporaryDirectory(prefix=prefix, dir=self.scratch_dir) as tmp:
                roots = [Path(tmp) / host for host in hosts]
                for index, root in enumerate(roots):
                    self._prepare(root, index, hosts, job)
                try:
                    self._run_instances(arn, step, roots, job)
                except StepFailed:
                    if not self._stop.is_set():
                        self._upload(roots, job, "Continuous")
                    raise
                self._upload(roots, job, *_UPLOAD_MODES)
                record.update(StepStatus="Succeeded", EndTime=datetime.now(UTC).isoformat())
                self.emulator.record_step(arn, record)
        finally:
            with self._lock:
                self._instances_used -= job.count
                self.stats.job_durations.append(time.monotonic() - began)

    def _acquire_instances(self, job: Job) -> None:
        """Take the job's instances from the account's quota, or refuse it as CreateProcessingJob does."""
        limit = self.quotas.max_processing_instances
        with self._lock:
            used = self._instances_used
            if limit is not None and used + job.count > limit:
                self.stats.refused_jobs += 1
                kind = job.instance_type
                message = INSTANCE_LIMIT_MESSAGE.format(type=kind, limit=limit, used=used, delta=job.count)
                if job.count > limit:
                    raise StepFailed(
                        f"{message} (the job asks for more instances than the quota allows: it can never "
                        "run here, so the local runner fails it instead of retrying it)"
                    )
                raise StepFailed(message, RESOURCE_LIMIT)
            self._instances_used = used + job.count
            self.stats.most_instances = max(self.stats.most_instances, self._instances_used)

    def _prepare(self, root: Path, index: int, hosts: list[str], job: Job) -> None:
        """Download this instance's inputs, create its output folders, write its resource config."""
        for item in job.inputs:
            bucket, prefix = split_s3_uri(item["S3Uri"])
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = sorted(
                o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"][-1:] != "/"
            )
            if not keys:
                where = f'S3 URL "{item["S3Uri"]}" given in input {item["InputName"]}'
                raise StepFailed(f"ClientError: No S3 objects found under {where}")
            if item.get("S3DataDistributionType") == "ShardedByS3Key":
                keys = keys[index :: len(hosts)]
            target = _opt_ml(root, item["LocalPath"]).resolve()
            for key in keys:  # S3Prefix: the key minus the prefix's part up to its last "/"
                destination = (target / key[prefix.rfind("/") + 1 :]).resolve()
                if not destination.is_relative_to(target):
                    raise StepFailed(f"input {item['InputName']}: key {key!r} would land outside {target}")
                destination.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, key, str(destination), Config=_TRANSFER)
        for item in job.outputs:
            _opt_ml(root, item["LocalPath"]).mkdir(parents=True, exist_ok=True)
        config = _opt_ml(root, "/opt/ml/config/resourceconfig.json")
        config.parent.mkdir(parents=True)
        group = {
            "instance_group_name": "homogeneousCluster",
            "instance_type": job.instance_type,
            "hosts": hosts,
        }
        config.write_text(json.dumps({
            "current_host": hosts[index], "current_instance_type": job.instance_type,
            "current_group_name": "homogeneousCluster", "hosts": hosts, "instance_groups": [group],
            "network_interface_name": "eth0",
        }), encoding="utf-8")  # fmt: skip

    def _run_instances(self, arn: str, step: str, roots: list[Path], job: Job) -> None:
        """One subprocess per instance; the job fails with the first instance that fails."""
        logs = self.log_dir / arn.split("/")[1] / arn.rsplit("/", 1)[1] if self.log_dir else None
        procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        try:
            for root in roots:
                command = [
                    _OPT_ML_PATH.sub(str(root).replace("\\", "\\\\") + r"\g<0>", a) for a in job.command
                ]
                command[0] = sys.executable if _PYTHON.fullmatch(command[0]) else command[0]
                folder = logs or root
                folder.mkdir(parents=True, exist_ok=True)
                stdout, stderr = (folder / f"{step}-{root.name}.{name}.log" for name in ("stdout", "stderr"))
                config = _opt_ml(root, "/opt/ml/config/resourceconfig.json")
                env = child_environment({**job.environment, RESOURCE_CONFIG_ENV: str(config)})
                with stdout.open("wb") as out, stderr.open("wb") as err, self._lock:
                    if self._stop.is_set():
                        raise StepFailed(STOPPED)
                    try:
                        proc = subprocess.Popen(
                            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                            start_new_session=True,
                        )  # fmt: skip
                    except OSError as exc:
                        raise StepFailed(f"AlgorithmError: cannot start {command[0]}: {exc}") from exc
                    self._procs.add(proc)
                procs.append((root.name, proc, stderr))
            while not all(proc.poll() == 0 for _, proc, _ in procs):
                if self._stop.is_set():
                    raise StepFailed(STOPPED)
                for host, proc, stderr in procs:
                    if code := proc.poll():
                        raise StepFailed(_failure(stderr, code, f" on {host}" if len(procs) > 1 else ""))
                time.sleep(0.02)
        finally:
            with self._lock:
                for _, proc, _ in procs:
                    self._procs.discard(proc)
                    kill_tree(proc)

    def _upload(self, roots: list[Path], job: Job, *modes: str) -> None:
        for item in (o for o in job.outputs if o["S3UploadMode"] in modes):
            bucket, prefix = split_s3_uri(item["S3Uri"])
            prefix = prefix.rstrip("/") + "/" if prefix else ""
            for root in roots:
                folder = _opt_ml(root, item["LocalPath"])
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    key = prefix + path.relative_to(folder).as_posix()
                    self.s3.upload_file(str(path), bucket, key, Config=_TRANSFER)


def _failure(stderr: Path, code: int, where: str) -> str:
    """SageMaker's AlgorithmError for a script that exited ``code``: its last non-empty stderr line."""
    lines = stderr.read_text(encoding="utf-8", errors="replace").split("\n")
    message = next(
        (s for line in reversed(lines) if (s := line.strip())), "the script wrote nothing to stderr"
    )
    detail = f"killed by signal {-code}" if code < 0 else f"exit code: {code}"
    return f"AlgorithmError: {message}, {detail}{where}"


__all__ = [
    "RESOURCE_LIMIT",
    "TIME_SCALE",
    "Job",
    "Runner",
    "RunnerStats",
    "StepFailed",
    "parameter_values",
    "resolve",
    "retry_wait",
]
