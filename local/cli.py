"""``python -m local {demo,up,invoke,status,prepare}``: the local runtime's commands.

- ``demo``: the whole flow on generated data, checked; exit 0 only if it all checks out.
- ``up [--port N] [--param NAME=VALUE ...] [--max-concurrent-executions N] [--max-processing-instances M]
  [--time-scale F] [--logs]``: the runtime in the foreground, with the account's quotas (defaults 20 and
  4); every file dropped under raw/ runs; Ctrl-C stops it.
- ``invoke EVENT [--function LogicalId] [--env-vars FILE] [--source]``: a Docker-free `sam local invoke`.
- ``status [--json]``: the executions of the runtime ``up`` started.
- ``prepare``: build the local function artifacts ahead of the first run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import Any

from contract.artifact import bundle
from local.console import Progress, short_id, table
from local.emulator import CREDENTIALS, Quotas, environment
from local.process import ROOT, STATE_DIR, STATE_FILE
from local.runner import TIME_SCALE
from local.runtime import DEFAULT_STACK, Runtime, RuntimeStartError, StackRequest, print_log

ENDPOINT_FILE = STATE_DIR / "endpoint"


class CommandError(Exception):
    """A command cannot do what was asked; the message says why and what to do."""


# -- up ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops ``up`` the way Ctrl-C does (cleanly)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    # Ctrl-C too, even when started from a shell that ignores SIGINT in background jobs.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def runtime_state(runtime: Runtime) -> dict[str, Any]:
    """What runtime.json says about a running runtime (``s3sm`` finds it there)."""
    stacks = []
    for stack in runtime.stacks:
        pipelines = stack.pipeline_names()
        stacks.append(
            {
                "name": stack.name,
                "bucket": stack.ref("DataBucket"),
                "pipelines": pipelines,
                "parameters": stack.parameters,
                "dead_letter_queue": stack.outputs.get("TriggerDeadLetterQueueUrl", ""),
                "outputs": stack.outputs,  # what `s3sm` reads, as it reads a deployed stack's outputs
            }
        )
    return {
        "endpoint": runtime.endpoint_url,
        "region": runtime.emulator.region,
        "pid": os.getpid(),
        "stacks": stacks,
    }


def _write_state(runtime: Runtime) -> None:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps(runtime_state(runtime), indent=2), encoding="utf-8")
    ENDPOINT_FILE.write_text(runtime.endpoint_url + "\n", encoding="utf-8")


def _clear_state() -> None:
    for path in (STATE_FILE, ENDPOINT_FILE):
        path.unlink(missing_ok=True)


def _instructions(runtime: Runtime) -> str:
    stack = runtime.stacks[0]
    bucket = stack.ref("DataBucket")
    raw = stack.attribute("Routes", "UploadPrefixes").split(",")[0].removesuffix("*")  # the first routed
    endpoint = runtime.endpoint_url
    region = runtime.emulator.region
    creds = " ".join(f"{k}={v}" for k, v in CREDENTIALS.items())
    boto = (
        f"python -c \"import boto3; boto3.client('s3', endpoint_url='{endpoint}', region_name='{region}', "
        f"aws_access_key_id='testing', aws_secret_access_key='testing')"
        f".upload_file('data.csv', '{bucket}', '{raw}data.csv')\""
    )
    return "\n".join(
        [
            "",
            f"Local runtime up: endpoint {endpoint}, bucket {bucket}, uploads under {raw} run the pipeline "
            f"(TriggerMode={stack.parameters.get('TriggerMode')}).",
            "Drop a file (from another terminal):",
            f"  export {creds} AWS_DEFAULT_REGION={region}",
            f"  aws s3 cp data.csv s3://{bucket}/{raw}data.csv --endpoint-url {endpoint}",
            "or with boto3:",
            f"  {boto}",
            "Watch the executions: .venv/bin/s3sm status (make status); notifications print here.",
            "Ctrl-C stops everything.",
            "",
        ]
    )


class EtlWatch:
    """Progress lines, and one more when an execution starts after the ETL (its code or its schema) changed:
    the stack runs the bundle deployed at start, so the change needs a restart to be deployed."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.deployed = progress, self.digest()
        self.told = self.deployed

    @staticmethod
    def digest() -> str:
        return hashlib.sha256(bundle(ROOT / "etl")).hexdigest()

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        self.progress.event(kind, details)
        if kind == "execution-started" and (now := self.digest()) != self.told:
            self.told = now
            self.progress.line(
                "etl",
                "etl/ changed since `make up` started, and this run uses the ETL deployed then"
                if now != self.deployed
                else "etl/ is back to the deployed ETL",
            )
            if now != self.deployed:
                self.progress.line("etl", "restart `make up` (Ctrl-C, then make up) to deploy the change")


def cmd_up(args: argparse.Namespace) -> int:
    params = dict(p.split("=", 1) for p in args.param)
    if STATE_FILE.exists() and _running(json.loads(STATE_FILE.read_text(encoding="utf-8"))):
        raise CommandError(
            f"a local runtime is already running ({STATE_FILE}); stop it first (Ctrl-C in its terminal)"
        )
    progress = Progress()
    runtime = Runtime(
        stacks=[StackRequest(args.stack, params)],
        port=args.port,
        quotas=quotas(args),
        time_scale=args.time_scale,
        log_dir=STATE_DIR / "logs",
        notify=EtlWatch(progress),
        on_log=print_log if args.logs else None,
        stand_ins=args.pipeline,
    )
    stopping = threading.Event()
    with _terminate_as_interrupt():
        try:
            runtime.start()
            runtime.warm_up()
            _write_state(runtime)
            print(_instructions(runtime), flush=True)
            while not stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            progress.line("stop", "stopping (delivery, runner, functions, emulator)...")
        except RuntimeStartError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            previous = signal.signal(
                signal.SIGINT, signal.SIG_IGN
            )  # a second Ctrl-C must not cut the stop short
            try:
                runtime.stop()
                _clear_state()
            finally:
                signal.signal(signal.SIGINT, previous)
    progress.line("stopped", "nothing left running")
    return 0


def quotas(args: argparse.Namespace) -> Quotas:
    """The account quotas asked for on the command line (0: no quota)."""
    try:
        return Quotas(args.max_concurrent_executions or None, args.max_processing_instances or None)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc


def add_quota_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that make the local runtime an account with SageMaker's quotas (``up`` and ``demo``)."""
    defaults = Quotas()
    parser.add_argument(
        "--max-concurrent-executions",
        type=int,
        default=defaults.max_concurrent_executions,
        metavar="N",
        help="pipeline executions Executing at once; a start beyond is refused with ResourceLimitExceeded "
        "(default %(default)s, SageMaker's; 0: no quota)",
    )
    parser.add_argument(
        "--max-processing-instances",
        type=int,
        default=defaults.max_processing_instances,
        metavar="M",
        help="processing instances of all jobs at once; a job beyond is refused with ResourceLimitExceeded "
        "and retried by the step's retry policies (default %(default)s; 0: no quota)",
    )
    parser.add_argument(
        "--time-scale",
        type=_fraction,
        default=TIME_SCALE,
        metavar="F",
        help="SageMaker's retry waits and the trigger's backoff run F times as long locally "
        "(default 1/120: a minute takes half a second)",
    )


def _fraction(text: str) -> float:
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


# -- status ----------------------------------------------------------------------------------------


def _running(state: dict[str, Any]) -> bool:
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    return True


def _state() -> dict[str, Any]:
    if not STATE_FILE.is_file():
        raise CommandError("no local runtime is running: start one with `make up` (python -m local up)")
    state: dict[str, Any] = json.loads(STATE_FILE.read_text(encoding="utf-8"))
    if not _running(state):
        _clear_state()
        raise CommandError(f"the local runtime (pid {state.get('pid')}) is gone: start one with `make up`")
    return state


def executions(pipelines: list[str]) -> list[dict[str, Any]]:
    """Each execution of the pipelines with its input, output, status, step status and failure reason."""
    import boto3  # only now: the state file told us where the emulator is

    sagemaker = boto3.client("sagemaker")
    found: list[dict[str, Any]] = []
    for pipeline in pipelines:
        summaries = sagemaker.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
        for summary in summaries:
            arn = summary["PipelineExecutionArn"]
            params = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)[
                "PipelineParameters"
            ]
            values = {p["Name"]: p["Value"] for p in params}
            steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn)[
                "PipelineExecutionSteps"
            ]
            reason = summary.get("PipelineExecutionFailureReason") or ""
            found.append(
                {
                    "pipeline": pipeline,
                    "execution": short_id(arn),
                    "arn": arn,
                    "started": summary["StartTime"].isoformat(timespec="seconds"),
                    "status": summary["PipelineExecutionStatus"],
                    "steps": ", ".join(f"{s['StepName']} {s['StepStatus']}" for s in steps) or "-",
                    "input": values.get("InputDataUrl", "(default)"),
                    "output": values.get("OutputDataUrl", "(default)"),
                    "reason": reason,
                }
            )
    found.sort(key=lambda e: str(e["started"]))
    return found


def cmd_status(args: argparse.Namespace) -> int:
    state = _state()
    env = {"AWS_ENDPOINT_URL": state["endpoint"], "AWS_DEFAULT_REGION": state["region"], **CREDENTIALS}
    env["AWS_REGION"] = state["region"]
    pipelines = [p for s in state["stacks"] for p in s["pipelines"]]
    with environment(env):
        found = executions(pipelines)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"local runtime at {state['endpoint']} (pid {state['pid']}); pipelines: {', '.join(pipelines)}")
    if not found:
        print("no executions yet: drop a file under the raw prefix")
        return 0
    headers = ["execution", "status", "step", "input", "output", "failure reason"]
    keys = ["execution", "status", "steps", "input", "output", "reason"]
    print(table(headers, [[e[k] for k in keys] for e in found], max_width=args.width))
    return 0


# -- invoke / demo ----------------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    from local.invoke import InvokeError, invoke

    env_file = None if args.env_vars == "" else Path(args.env_vars)
    try:
        return invoke(
            Path(args.event), function=args.function, env_file=env_file, prefer_build=not args.source
        )
    except InvokeError as exc:
        raise CommandError(str(exc)) from exc


def cmd_prepare(args: argparse.Namespace) -> int:
    from local.artifacts import BuildError, prepare
    from local.template import Template, TemplateError

    started = time.monotonic()
    try:
        built = prepare(Template(ROOT / "template.yaml"))
    except (BuildError, TemplateError) as exc:
        raise CommandError(str(exc)) from exc
    for path in built:
        print(f"built {path.relative_to(ROOT)}")
    print(f"local function artifacts ready in {time.monotonic() - started:.1f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from local.demo import run_demo

    started = time.monotonic()
    status = run_demo(rows=args.rows, quotas=quotas(args), time_scale=args.time_scale)
    print(f"(wall time {time.monotonic() - started:.1f} s)")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local", description="The whole system on one machine, without AWS or Docker."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="the whole flow on generated data, checked end to end")
    demo.add_argument("--rows", type=int, default=5000, help="rows of the object-mode file (default 5000)")
    add_quota_flags(demo)
    demo.set_defaults(func=cmd_demo)

    prepare = commands.add_parser(
        "prepare", help="build the local function artifacts now (the deploy function's rendered pipeline)"
    )
    prepare.set_defaults(func=cmd_prepare)

    up = commands.add_parser("up", help="run the local runtime in the foreground until Ctrl-C")
    up.add_argument("--port", type=int, default=0, help="the emulator's port (default: a free one)")
    up.add_argument("--stack", default=DEFAULT_STACK, help=f"local stack name (default {DEFAULT_STACK})")
    up.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, repeatable",
    )
    add_quota_flags(up)
    up.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="a pipeline of another team that a route starts: made here with the parameters its route sets; "
        "its executions are recorded as started and run no step (repeatable)",
    )
    up.add_argument("--logs", action="store_true", help="also print the functions' own log lines")
    up.set_defaults(func=cmd_up)

    invoke = commands.add_parser("invoke", help="invoke a function with an event file (no Docker)")
    invoke.add_argument("event", help="the event JSON file, e.g. events/s3-put.json")
    invoke.add_argument(
        "--function", help="the function's logical ID (default: the one that takes the event)"
    )
    invoke.add_argument(
        "--env-vars", default=str(ROOT / "events" / "env.json"), help="SAM --env-vars file ('' for none)"
    )
    invoke.add_argument(
        "--source", action="store_true", help="run from source even if `sam build` output exists"
    )
    invoke.set_defaults(func=cmd_invoke)

    status = commands.add_parser("status", help="executions of the running `up` runtime")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--width", type=int, default=70, help="cut cells longer than this (default 70)")
    status.set_defaults(func=cmd_status)

    args = parser.parse_args(argv)
    for param in getattr(args, "param", []):
        if "=" not in param:
            parser.error(f"--param {param!r}: expected NAME=VALUE")
    try:
        code: int = args.func(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


__all__ = ["CommandError", "executions", "main", "runtime_state"]
