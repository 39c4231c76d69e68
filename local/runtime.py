"""The local runtime: emulator, local stack(s), SQS event source mappings and pipeline runner, started and
stopped as one in an account with SageMaker's quotas (docs/local-runtime.md, "Start/stop").

The functions run from source (:mod:`local.lambdas`) with ``ROUTES_FILE``, ``routes.yaml`` compiled as the
build compiles it; the deploy function serves the deploy build's artifact through ``DEPLOY_ARTIFACT_DIR``,
kept under ``.local-runtime/build/`` by a hash of its sources (rendering imports the SageMaker SDK: slow).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from trigger import backoff

from contract.artifact import package_files
from contract.routes import FILE_VARIABLE, RoutesError, loads
from local import ROOT, STATE_DIR
from local.delivery import Delivery
from local.emulator import ACCOUNT_ID, Emulator, Quotas, environment
from local.lambdas import FunctionProcess, FunctionSpec, LogSink, LogWriter, child_environment
from local.notifications import Notifications
from local.runner import TIME_SCALE, Runner
from local.stack import DeployedStack, StackDeployer, StackError, Template, TemplateError

Notify = Callable[[str, dict[str, Any]], None]
DEFAULT_STACK = "s3-sagemaker-trigger-local"
BUILD_DIR = STATE_DIR / "build"
ARTIFACT_VARIABLE = "DEPLOY_ARTIFACT_DIR"  # deploy/handler.py's
# What the trigger logs for each record (trigger/handler.py), told as progress lines.
LOGGED = {"record skipped": "skipped", "pipeline execution started": "started"}
_build_lock = threading.Lock()


class RuntimeStartError(Exception):
    """The runtime could not start: the template, the local deploy or a component failed."""


def _digest(parts: Sequence[tuple[str, bytes]]) -> str:
    named = b"".join(name.encode() + b"\0" + hashlib.sha256(body).digest() for name, body in parts)
    return hashlib.sha256(named).hexdigest()[:16]


def _artifact_dir(root: Path = ROOT) -> Path:
    """Where the deploy build for the current sources (and SDK versions) is kept."""
    files = [p for d in ("pipeline", "contract") for p in sorted((root / d).glob("*.py"))]
    files += [root / "routes.yaml", root / "functions" / "deploy" / "Makefile"]
    parts = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in files] + package_files(root / "etl")
    parts += [
        (d, importlib.metadata.version(d).encode())
        for d in ("sagemaker", "sagemaker-core", "sagemaker-mlops")
    ]
    return BUILD_DIR / f"deploy-{_digest(parts)}"


def render_cached(root: Path = ROOT) -> bool:
    """Whether the deploy artifact for the current sources is built already (a deploy is quick)."""
    return _artifact_dir(root).is_dir()


def deploy_artifact(root: Path = ROOT) -> Path:
    """The deploy build's artifact for the current sources (``make -C functions/deploy artifact``), cached."""
    with _build_lock:
        target = _artifact_dir(root)
        if target.is_dir():
            return target
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".deploy-", dir=BUILD_DIR))
        try:
            make = ["make", "-s", "-C", str(root / "functions" / "deploy"), "artifact"]
            command = [*make, f"ARTIFACTS_DIR={staging}", f"PYTHON={sys.executable}"]
            done = subprocess.run(
                command, env=child_environment({}), capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
                raise RuntimeStartError(f"the deploy build failed: {lines[-1] if lines else done.returncode}")
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for old in BUILD_DIR.glob("deploy-*"):  # the newest only
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        return target


def function_code(
    spec: FunctionSpec, *, prefer_build: bool = False, root: Path = ROOT
) -> tuple[Path, dict[str, str]]:
    """Where ``spec`` runs from, and the variables that needs: its ``sam build`` folder if wanted and there,
    else its source (the deploy function with ``DEPLOY_ARTIFACT_DIR`` naming the deploy build's artifact)."""
    built = root / ".aws-sam" / "build" / spec.logical_id
    if prefer_build and built.is_dir():
        return built, {}
    if spec.handler.split(".", 1)[0] == "deploy":
        return spec.code_uri, {ARTIFACT_VARIABLE: str(deploy_artifact(root))}
    return spec.code_uri, {}


def routes_environment(source: Path = ROOT / "routes.yaml") -> dict[str, str]:
    """``ROUTES_FILE`` naming ``source`` compiled to JSON as the build compiles it (cached by content)."""
    from pipeline.__main__ import compile_routes  # imports the YAML parser: the dev environment's

    try:
        text = compile_routes(source)
    except RoutesError as exc:
        raise RuntimeStartError(f"{source}: {exc}") from exc
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    target = BUILD_DIR / f"routes-{_digest([(source.name, text.encode())])}.json"
    if not target.is_file():
        staging = target.with_name(f".{target.name}.{threading.get_ident()}")
        staging.write_text(text, encoding="utf-8")
        staging.replace(target)  # atomic: a concurrent reader sees all of it or nothing
    return {FILE_VARIABLE: str(target)}


def scaled_environment(environment: Mapping[str, str], time_scale: float) -> dict[str, str]:
    """The trigger's queue backoff (trigger/config.py's variables: the template's value, else
    trigger/backoff.py's default) ``time_scale`` times as long, in whole seconds and at least 1, as SQS
    counts visibility; a value that is not a number is left to the function's own config check."""
    defaults = {
        "BACKOFF_BASE_SECONDS": backoff.DEFAULT_BASE_SECONDS,
        "BACKOFF_CAP_SECONDS": backoff.DEFAULT_CAP_SECONDS,
    }
    scaled = {}
    for name, default in defaults.items():
        with contextlib.suppress(ValueError):
            scaled[name] = str(max(1, round(float(environment.get(name) or default) * time_scale)))
    return scaled


@dataclass(frozen=True)
class StackRequest:
    """One stack to deploy locally: its name and parameter overrides (like ``sam deploy``'s)."""

    name: str = DEFAULT_STACK
    parameters: Mapping[str, str] = field(default_factory=dict)


class Runtime:
    """Everything of the local runtime, owned by one object with a clean start and stop: ``stop()`` (also
    on an exception, Ctrl-C included) undoes ``start()`` in reverse, joining every thread and child."""

    def __init__(
        self,
        *,
        template: Path = ROOT / "template.yaml",
        stacks: Sequence[StackRequest] = (StackRequest(),),
        emulator: Emulator | None = None,
        port: int = 0,
        quotas: Quotas | None = None,
        time_scale: float = TIME_SCALE,
        scratch_dir: Path | None = None,
        log_dir: Path | None = None,
        notify: Notify | None = None,
        on_log: LogSink | None = None,
        routes: Path = ROOT / "routes.yaml",
        stand_ins: Sequence[str] = (),
    ) -> None:
        self.template_path, self.routes, self.requests = template, routes, list(stacks)
        self.stand_ins = list(stand_ins)  # pipelines of others the routes start: recorded, never run
        self._own_emulator, self.emulator = emulator is None, emulator or Emulator(port=port)
        self.quotas, self.time_scale = quotas or Quotas(), time_scale
        self.scratch_dir, self.log_dir = scratch_dir, log_dir
        self.notify: Notify = notify or (lambda kind, details: None)
        self.on_log: LogSink = on_log or (lambda function, line: None)
        self._exit = contextlib.ExitStack()
        self._clear()

    def _clear(self) -> None:
        self.stacks: list[DeployedStack] = []
        self.functions: list[FunctionProcess] = []
        self.deliveries: list[Delivery] = []
        self.runner: Runner | None = None
        self.notifications: Notifications | None = None

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    def start(self) -> Runtime:
        if self.runner is None:
            try:
                self._start(self._exit)
            except BaseException:
                self.stop()
                raise
        return self

    def _start(self, exit_: contextlib.ExitStack) -> None:
        try:
            template = Template(self.template_path)
        except TemplateError as exc:
            raise RuntimeStartError(str(exc)) from exc
        if self._own_emulator:
            self.emulator.start()
            exit_.callback(self.emulator.stop)
            self.emulator.reset()  # moto keeps its state per process: a new runtime starts from nothing
        aws_env = self.emulator.environ()
        exit_.enter_context(environment(aws_env))
        self.emulator.set_quotas(self.quotas)
        exit_.callback(self.emulator.set_quotas, None)
        exit_.callback(self.emulator.on_start(self._on_start))
        self.notify("emulator", {"endpoint": self.emulator.endpoint_url})
        self.notify("quotas", {"quotas": self.quotas, "time_scale": self.time_scale})

        function_env = routes_environment(self.routes)
        routes = loads(Path(function_env[FILE_VARIABLE]).read_text(encoding="utf-8"))
        logs = LogWriter(boto3.client("logs")).start()  # each function's lines into its log group
        exit_.callback(logs.stop)
        s3, self._sqs, self._sagemaker = boto3.client("s3"), boto3.client("sqs"), boto3.client("sagemaker")
        self._create_stand_ins(routes)
        notifications = self.notifications = Notifications(
            events=boto3.client("events"),
            sqs=self._sqs,
            cloudwatch=boto3.client("cloudwatch"),
            region=self.emulator.region,
            notify=self.notify,
        )
        # Runner first: an upload made as soon as a stack exists must not wait for it.
        self.runner = Runner(
            self.emulator,
            sagemaker=self._sagemaker,
            s3=s3,
            quotas=self.quotas,
            time_scale=self.time_scale,
            scratch_dir=self.scratch_dir,
            log_dir=self.log_dir,
            notify=self.notify,
            stand_ins=self.stand_ins,
        ).start()
        exit_.callback(self.runner.stop)
        exit_.callback(notifications.stop)
        deployer = StackDeployer(
            template,
            aws_env=aws_env,
            on_log=self._on_function_log,
            code=function_code,
            function_env=function_env,
        )
        for request in self.requests:
            started = time.monotonic()
            try:
                stack = deployer.deploy(request.name, request.parameters)
            except StackError as exc:
                raise RuntimeStartError(f"local deploy of stack {request.name} failed: {exc}") from exc
            self.stacks.append(stack)
            notifications.watch_topics(stack)
            if "DataBucketName" in stack.outputs:
                notifications.watch_uploads(stack, routes, stack.outputs["DataBucketName"])
            self.notify("stack", {"stack": stack, "seconds": time.monotonic() - started})
            for mapping in stack.event_sources:
                spec = stack.functions[mapping.function_id]
                overrides = {**function_env, **scaled_environment(spec.environment, self.time_scale)}
                functions = [
                    exit_.enter_context(
                        FunctionProcess(
                            spec,
                            aws_env=aws_env,
                            env_overrides=overrides,
                            on_log=self._on_function_log,
                            logs=logs,
                        )
                    )
                    for _ in range(mapping.maximum_concurrency)
                ]
                self.functions += functions
                delivery = Delivery(
                    mapping=mapping,
                    functions=functions,
                    sqs=self._sqs,
                    region=self.emulator.region,
                    notify=self.notify,
                )
                self.deliveries.append(delivery.start())
                exit_.callback(delivery.stop)
        notifications.start()
        self.notify("ready", {"endpoint": self.emulator.endpoint_url, "stacks": self.stacks})

    def _create_stand_ins(self, routes: Any) -> None:
        """Each ``stand_ins`` pipeline, declaring the parameters its routes set (all strings), before the
        stacks deploy (their RoutesCheck describes every routed pipeline)."""
        for name in self.stand_ins:
            declared = sorted({p for r in routes.routes if r.pipeline == name for p in r.parameters})
            if not declared:
                raise RuntimeStartError(f"--pipeline {name}: no route of {self.routes} starts it")
            parameters = [{"Name": p, "Type": "String"} for p in declared]
            definition = {"Version": "2020-12-01", "Parameters": parameters, "Steps": []}
            role = f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-stand-in"
            self._sagemaker.create_pipeline(
                PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=role
            )
            self.notify("stand-in", {"pipeline": name, "declares": declared})

    def _on_function_log(self, logical_id: str, line: str) -> None:
        """A function's log line: to ``on_log``, and a record the trigger skipped or started as progress."""
        self.on_log(logical_id, line)
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if kind := LOGGED.get(str(entry.get("message"))) if isinstance(entry, dict) else None:
                    self.notify(kind, {"function": logical_id, **entry})

    def _on_start(self, execution_arn: str, replayed: bool) -> None:
        if replayed:  # a replayed ClientRequestToken: SageMaker answered with the execution it started
            self.notify("execution-replayed", {"arn": execution_arn})

    def warm_up(self) -> None:
        """Start every function's execution environment now (cold starts off the first event's path)."""
        threads = [threading.Thread(target=f.warm) for f in self.functions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def stop(self) -> None:
        """Stop everything started, in reverse order; safe to call twice."""
        try:
            self._exit.close()
        finally:
            self._exit = contextlib.ExitStack()
            self._clear()

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def idle(self) -> bool:
        """Nothing queued, retried or running (a snapshot; new uploads may arrive right after)."""
        if self.runner is None or self.runner.busy():
            return False
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        for delivery in self.deliveries:
            attributes = self._sqs.get_queue_attributes(QueueUrl=delivery.queue_url, AttributeNames=names)
            if any(int(v) for v in attributes["Attributes"].values()) or not delivery.idle():
                return False
        for name in (n for stack in self.stacks for n in stack.pipeline_names() if n not in self.stand_ins):
            summaries = self._sagemaker.list_pipeline_executions(PipelineName=name)[
                "PipelineExecutionSummaries"
            ]
            if any(s["PipelineExecutionStatus"] == "Executing" for s in summaries):
                return False
        return True

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> bool:
        """Wait until :meth:`idle` holds for ``settle`` seconds; False on timeout."""
        deadline, calm_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            calm_since = (calm_since or time.monotonic()) if self.idle() else None
            if calm_since is not None and time.monotonic() - calm_since >= settle:
                return True
            time.sleep(0.05)
        return False
