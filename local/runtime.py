"""The local runtime: emulator + local stack(s) + SQS event source mappings + pipeline runner, started
and stopped as one, in an account with SageMaker's quotas (:class:`local.emulator.Quotas`).

::

    with Runtime(stacks=[StackRequest("demo")]) as runtime:
        bucket = runtime.stacks[0].ref("DataBucket")
        ...  # every upload under the raw prefix runs the pipeline

``stop()`` (also on an exception, Ctrl-C included) stops delivery first, then the runner (killing any
running job), the function processes, the response server and the emulator; every thread is joined
and every child process reaped.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from trigger import backoff

from contract.routes import FILE_VARIABLE, loads
from local import artifacts
from local.artifacts import BuildError
from local.cfn_response import ResponseServer
from local.delivery import Delivery
from local.emulator import ACCOUNT_ID, Emulator, Quotas, environment
from local.functions import FunctionProcess, LogSink
from local.notifications import Notifications
from local.process import ROOT
from local.runner import TIME_SCALE, Runner
from local.sqs_metrics import QueueAgeMetric
from local.stack import DeployedStack, StackDeployer, StackError
from local.template import Template, TemplateError

Notify = Callable[[str, dict[str, Any]], None]
DEFAULT_STACK = "s3-sagemaker-trigger-local"


class RuntimeStartError(Exception):
    """The runtime could not start: the template, the local deploy or a component failed."""


@dataclass(frozen=True)
class StackRequest:
    """One stack to deploy locally: its name and parameter overrides (like ``sam deploy``'s)."""

    name: str = DEFAULT_STACK
    parameters: Mapping[str, str] = field(default_factory=dict)


def _ignore(kind: str, details: dict[str, Any]) -> None:
    return


def _quiet(logical_id: str, line: str) -> None:
    return


class Runtime:
    """Everything of the local runtime, owned by one object with a clean start and stop."""

    def __init__(
        self,
        *,
        template: Path = ROOT / "template.yaml",
        stacks: Sequence[StackRequest] = (StackRequest(),),
        emulator: Emulator | None = None,
        port: int = 0,
        quotas: Quotas | None = None,
        time_scale: float = TIME_SCALE,
        poll_interval: float = 0.5,
        scratch_dir: Path | None = None,
        log_dir: Path | None = None,
        notify: Notify | None = None,
        on_log: LogSink | None = None,
        routes: Path = ROOT / "routes.yaml",
        stand_ins: Sequence[str] = (),
    ) -> None:
        self.template_path = template
        self.routes = routes  # compiled for both functions, as the build does (artifacts.routes_environment)
        self.stand_ins = list(stand_ins)  # pipelines of others the routes start: recorded, never run
        self.requests = list(stacks)
        self._own_emulator = emulator is None
        self.emulator = emulator or Emulator(port=port)
        self.quotas = quotas or Quotas()
        self.time_scale = time_scale
        self.poll_interval = poll_interval
        self.scratch_dir = scratch_dir
        self.log_dir = log_dir
        self.notify = notify or _ignore
        self.on_log = on_log or _quiet
        self.stacks: list[DeployedStack] = []
        self.functions: list[FunctionProcess] = []
        self.deliveries: list[Delivery] = []
        self.runner: Runner | None = None
        self.notifications: Notifications | None = None
        self._responses: ResponseServer | None = None
        self._exit = contextlib.ExitStack()
        self._started = False
        self._sqs: Any = None
        self._replayed: set[str] = set()  # executions a start was answered with again (a duplicate)
        self._replayed_lock = threading.Lock()
        self._sagemaker: Any = None

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Runtime:
        if self._started:
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        try:
            template = Template(self.template_path)
        except TemplateError as exc:
            raise RuntimeStartError(str(exc)) from exc
        if self._own_emulator:
            self.emulator.start()
            self._exit.callback(self.emulator.stop)
            self.emulator.reset()  # moto keeps its state per process: a new runtime starts from nothing
        aws_env = self.emulator.environ()
        self._exit.enter_context(environment(aws_env))
        self.emulator.set_quotas(self.quotas)
        self._exit.callback(self.emulator.set_quotas, None)
        self._exit.callback(self.emulator.on_start(self._on_start))
        self.notify("emulator", {"endpoint": self.emulator.endpoint_url})
        self.notify("quotas", {"quotas": self.quotas, "time_scale": self.time_scale})

        try:
            function_env = artifacts.routes_environment(self.routes)
        except BuildError as exc:
            raise RuntimeStartError(str(exc)) from exc
        self._responses = ResponseServer().start()
        self._exit.callback(self._responses.stop)
        deployer = StackDeployer(
            template,
            aws_env=aws_env,
            responses=self._responses,
            on_log=self.on_log,
            function_env=function_env,
        )
        s3, sqs, sagemaker = boto3.client("s3"), boto3.client("sqs"), boto3.client("sagemaker")
        self._sqs, self._sagemaker = sqs, sagemaker
        self._create_stand_ins(sagemaker, Path(function_env[FILE_VARIABLE]))

        # SageMaker's status-change events and the template's notification rule (local/notifications.py).
        notifications = Notifications(
            events=boto3.client("events"), sqs=sqs, sagemaker=sagemaker, notify=self.notify
        )
        self.notifications = notifications

        # Runner first: an upload made as soon as a stack exists must not wait for it.
        self.runner = Runner(
            self.emulator,
            sagemaker=sagemaker,
            s3=s3,
            quotas=self.quotas,
            time_scale=self.time_scale,
            scratch_dir=self.scratch_dir,
            log_dir=self.log_dir,
            notify=self._on_runner,
            stand_ins=self.stand_ins,
        ).start()
        self._exit.callback(self.runner.stop)
        self._exit.callback(notifications.stop)

        for request in self.requests:
            started = time.monotonic()
            try:
                stack = deployer.deploy(request.name, request.parameters)
            except (StackError, BuildError, TemplateError) as exc:
                raise RuntimeStartError(f"local deploy of stack {request.name} failed: {exc}") from exc
            try:
                notifications.install(template, stack)
            except TemplateError as exc:
                raise RuntimeStartError(f"local deploy of stack {request.name} failed: {exc}") from exc
            self.stacks.append(stack)
            self.notify("stack", {"stack": stack, "seconds": time.monotonic() - started})
            for mapping in stack.event_sources:
                spec = stack.functions[mapping.function_id]
                overrides = {**function_env, **scaled_environment(spec.environment, self.time_scale)}
                functions = [
                    FunctionProcess(spec, aws_env=aws_env, env_overrides=overrides, on_log=self.on_log)
                    for _ in range(mapping.source.maximum_concurrency)
                ]
                for function in functions:
                    self._exit.callback(function.close)
                self.functions += functions
                delivery = Delivery(
                    mapping=mapping,
                    functions=functions,
                    sqs=sqs,
                    region=self.emulator.region,
                    notify=self._on_delivery,
                ).start()
                self._exit.callback(delivery.stop)
                self.deliveries.append(delivery)
        notifications.start()
        # The queues' oldest-message age, which s3sm status reads from CloudWatch (local/sqs_metrics.py).
        metric = QueueAgeMetric(
            cloudwatch=boto3.client("cloudwatch"), region=self.emulator.region, notify=self.notify
        )
        self._exit.callback(metric.start().stop)
        self.notify("ready", {"endpoint": self.emulator.endpoint_url, "stacks": self.stacks})

    def _create_stand_ins(self, sagemaker: Any, routes_json: Path) -> None:
        """Each ``stand_ins`` pipeline, declaring the parameters its routes set (all strings), before the
        stacks deploy (their RoutesCheck describes every routed pipeline)."""
        routes = loads(routes_json.read_text(encoding="utf-8"))
        for name in self.stand_ins:
            declared = sorted({p for r in routes.routes if r.pipeline == name for p in r.parameters})
            if not declared:
                raise RuntimeStartError(f"--pipeline {name}: no route of {self.routes} starts it")
            definition = {
                "Version": "2020-12-01",
                "Parameters": [{"Name": p, "Type": "String"} for p in declared],
                "Steps": [],
            }
            sagemaker.create_pipeline(
                PipelineName=name,
                PipelineDefinition=json.dumps(definition),
                RoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{name}-stand-in",
            )
            self.notify("stand-in", {"pipeline": name, "declares": declared})

    def _on_runner(self, kind: str, details: dict[str, Any]) -> None:
        self.notify(kind, details)
        if self.notifications is not None:  # the status-change event SageMaker would send
            self.notifications.on_runner(kind, details)

    def _on_start(self, execution_arn: str, replayed: bool) -> None:
        # A replayed ClientRequestToken: SageMaker answered with the execution the token started.
        if replayed:
            with self._replayed_lock:
                self._replayed.add(execution_arn)
            self.notify("execution-replayed", {"arn": execution_arn})

    def _on_delivery(self, kind: str, details: dict[str, Any]) -> None:
        if kind == "invoked":
            with self._replayed_lock:
                details = {**details, "replayed": sorted(self._replayed)}
        self.notify(kind, details)

    def warm_up(self) -> None:
        """Start every function's execution environment now (cold starts off the first event's path)."""
        threads = [threading.Thread(target=_warm, args=(f,)) for f in self.functions]
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
            self._started = False
            self.stacks, self.functions, self.deliveries, self.runner = [], [], [], None
            self.notifications = None

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observation --------------------------------------------------------------------------------

    def idle(self) -> bool:
        """Nothing queued, retried or running (a snapshot; new uploads may arrive right after)."""
        if self.runner is None or self.runner.busy():
            return False
        for delivery in self.deliveries:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=delivery.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if any(int(v) for v in attributes.values()) or not delivery.idle():
                return False
        return not self._executing()

    def _executing(self) -> bool:
        for stack in self.stacks:
            for name in (n for n in stack.pipeline_names() if n not in self.stand_ins):
                summaries = self._sagemaker.list_pipeline_executions(PipelineName=name)[
                    "PipelineExecutionSummaries"
                ]
                if any(s["PipelineExecutionStatus"] == "Executing" for s in summaries):
                    return True
        return False

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.3) -> bool:
        """Wait until :meth:`idle` holds for ``settle`` seconds; False on timeout."""
        deadline = time.monotonic() + timeout
        calm_since: float | None = None
        while time.monotonic() < deadline:
            if self.idle():
                calm_since = calm_since or time.monotonic()
                if time.monotonic() - calm_since >= settle:
                    return True
            else:
                calm_since = None
            time.sleep(0.05)
        return False


# The trigger's queue backoff (trigger/config.py's variables; defaults in trigger/backoff.py), in
# seconds: run ``time_scale`` times as long locally, like the step's retry waits. SQS counts visibility
# in whole seconds, so a scaled value is rounded and at least 1.
SCALED_VARIABLES = {
    "BACKOFF_BASE_SECONDS": backoff.DEFAULT_BASE_SECONDS,
    "BACKOFF_CAP_SECONDS": backoff.DEFAULT_CAP_SECONDS,
}


def scaled_environment(environment: Mapping[str, str], time_scale: float) -> dict[str, str]:
    """The trigger's backoff variables (the template's value, else the default) scaled by ``time_scale``."""
    scaled = {}
    for name, default in SCALED_VARIABLES.items():
        try:
            seconds = float(environment.get(name) or default)
        except ValueError:
            continue  # not a number: the function's own config check reports it
        scaled[name] = str(max(1, round(seconds * time_scale)))
    return scaled


def _warm(function: FunctionProcess) -> None:
    function.warm()


def print_log(logical_id: str, line: str) -> None:
    """A log sink that prints function log lines to stderr, prefixed with the function."""
    print(f"  [{logical_id}] {line}", file=sys.stderr)


__all__ = ["DEFAULT_STACK", "Runtime", "RuntimeStartError", "StackRequest", "print_log"]
