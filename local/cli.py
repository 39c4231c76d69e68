"""``python -m local {up,demo,invoke,prepare}``: the local runtime's commands.

- ``up [--port N] [--param NAME=VALUE ...] [--pipeline NAME ...] [quota flags] [--logs]``: the runtime in
  the foreground on a fixed port (default :data:`DEFAULT_PORT`); every upload under a routed prefix runs,
  every other one is reported with why; Ctrl-C stops it. ``.venv/bin/s3sm status`` reports on it.
- ``demo``: the whole flow on generated data, checked; exit 0 only if it all checks out.
- ``invoke EVENT [--function LogicalId] [--env-vars FILE] [--source] [--running]``: a Docker-free
  ``sam local invoke`` (:mod:`local.invoke`).
- ``prepare``: build the deploy function's artifact ahead of the first run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from contract.artifact import bundle
from local import ROOT, STATE_DIR, STATE_FILE
from local.emulator import CREDENTIALS, Quotas
from local.runner import TIME_SCALE
from local.runtime import DEFAULT_STACK, Runtime, RuntimeStartError, StackRequest
from ops.target import running_runtime

DEFAULT_PORT = 4599  # `make up`'s emulator, so that the commands it prints stay valid across restarts


class CommandError(Exception):
    """A command cannot do what was asked; the message says why and what to do."""


def short_id(execution_arn: str) -> str:
    """The execution ID, the last part of an execution ARN."""
    return execution_arn.rsplit("/", 1)[-1]


class Progress:
    """Prints one line per event, prefixed with the seconds since the command started; thread-safe."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream, self.started, self._lock = stream or sys.stdout, time.monotonic(), threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, stage: str, text: str) -> None:
        with self._lock:
            print(f"[{self.elapsed():6.1f}s] {stage:<11} {text}", file=self.stream, flush=True)

    def event(self, kind: str, details: dict[str, Any]) -> None:
        """The runtime's notifications, as progress lines (the chatty ones are left out)."""
        text = describe(kind, details)
        if text is not None:
            self.line(*text)


def _key(url: str) -> str:
    """An s3:// URL without its bucket (the progress lines name the bucket once, at deploy)."""
    return url[5:].partition("/")[2] if url.startswith("s3://") else url


def describe(kind: str, d: dict[str, Any]) -> tuple[str, str] | None:
    """(stage, text) for a runtime notification, or None for those not worth a line."""
    params = d.get("parameters") or {}
    match kind:
        case "emulator":
            return "emulator", f"moto server on {d['endpoint']}"
        case "quotas":
            quotas, scale = d["quotas"], Fraction(d["time_scale"]).limit_denominator(10000)
            executions, instances = quotas.max_concurrent_executions, quotas.max_processing_instances
            return "quotas", (
                f"{executions or 'unlimited'} concurrent executions, {instances or 'unlimited'} processing "
                f"instances (beyond: ResourceLimitExceeded); waits x{scale}"
            )
        case "stack":
            stack = d["stack"]
            pipelines = ", ".join(stack.pipeline_names()) or "?"
            bucket, mode = stack.outputs.get("DataBucketName", "?"), stack.parameters.get("TriggerMode", "?")
            return (
                "deploy",
                f"stack {stack.name}: bucket {bucket}, pipeline {pipelines} ({mode} mode), "
                f"{d['seconds']:.1f} s",
            )
        case "stand-in":
            declared = ", ".join(d["declares"])
            return "pipeline", f"{d['pipeline']}: a stand-in declaring {declared} (runs recorded, not run)"
        case "skipped":
            return "skipped", f"{d.get('key') or '(no object)'}: {d.get('reason')}"
        case "unrouted":
            return "skipped", f"{d['key']}: outside every route (routes: {', '.join(d['prefixes'])})"
        case "started":
            return "trigger", f"{d.get('key')}: started {short_id(str(d.get('execution_arn', '')))}"
        case "execution-replayed":
            return (
                "trigger",
                f"duplicate delivery: same execution {short_id(d['arn'])} "
                "(same ClientRequestToken: nothing runs twice)",
            )
        case "invoked" if d.get("failed"):
            return (
                "trigger",
                f"{d['failed']} of {d['batch']} back to the queue for a later try "
                f"[{d['duration_ms']:.0f} ms]",
            )
        case "invoke-error":
            error = d["error"]
            return "trigger", (
                f"batch of {d['batch']} failed as a whole: {error.get('errorType')}: "
                f"{error.get('errorMessage')} "
                "(back in the queue after its visibility timeout)"
            )
        case "execution-started":
            return (
                "execution",
                f"{short_id(d['arn'])} running on {_key(params.get('InputDataUrl', '(default input)'))}",
            )
        case "step-retrying" if d["attempt"] == 2:  # the first retry says it all; more would flood a burst
            reason, limit = (
                str(d["reason"]).split(":", 1)[0],
                str(d["policy"]).partition("(")[2].partition(")")[0],
            )
            return "retrying", (
                f"{short_id(d['arn'])} {d['step']}: {reason}; retried every {d['wait']:.0f} s or so "
                f"({d['local_wait']:.2f} s here), {limit}"
            )
        case "execution-recorded":
            values = ", ".join(f"{k}={v}" for k, v in params.items())
            return "recorded", f"{short_id(d['arn'])} of {d['pipeline']} started with {values}"
        case "execution-succeeded":
            out = _key(params.get("OutputDataUrl", "(default output)"))
            return "succeeded", f"{short_id(d['arn'])} -> {out} ({d['seconds']:.1f} s)"
        case "execution-failed":
            return "FAILED", f"{short_id(d['arn'])}: {d['reason']}"
        case "topic-notification":  # what the notification topic would send (local/notifications.py)
            # the sentence names `s3sm` as a deployed stack's operator runs it; here it runs from .venv
            message = re.sub(r"(?<![\w/.])s3sm ", ".venv/bin/s3sm ", " ".join(d["message"].split()))
            return "notify", f"{d['topic']}: {message}"
        case "poll-error" | "record-error" | "notification-error":
            return "warning", f"{kind}: {d}"
    return None


# -- up ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops ``up`` the way Ctrl-C does (cleanly), even when started from a shell that ignores
    SIGINT in background jobs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = (
        signal.signal(signal.SIGTERM, handler),
        signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def runtime_state(runtime: Runtime) -> dict[str, Any]:
    """What runtime.json says about a running runtime (``s3sm`` finds it there)."""
    stacks = [
        {
            "name": stack.name,
            "bucket": stack.outputs.get("DataBucketName", ""),
            "pipelines": stack.pipeline_names(),
            "parameters": stack.parameters,
            "dead_letter_queue": stack.outputs.get("TriggerDeadLetterQueueUrl", ""),
            "outputs": stack.outputs,  # what `s3sm` reads, as it reads a deployed stack's outputs
        }
        for stack in runtime.stacks
    ]
    return {
        "endpoint": runtime.endpoint_url,
        "region": runtime.emulator.region,
        "pid": os.getpid(),
        "stacks": stacks,
    }


def instructions(runtime: Runtime) -> str:
    """What ``up`` prints once ready: every command runs as printed, from the project's folder."""
    stack = runtime.stacks[0]
    bucket, routed = stack.outputs["DataBucketName"], stack.outputs.get("UploadUrls", "").split(",")
    raw = routed[0].removeprefix(f"s3://{bucket}/").removesuffix("*") or "raw/"
    variables = {
        "AWS_ENDPOINT_URL": runtime.endpoint_url,
        **CREDENTIALS,
        "AWS_DEFAULT_REGION": runtime.emulator.region,
    }
    return "\n".join(
        [
            "",
            f"Local runtime up: endpoint {runtime.endpoint_url}, bucket {bucket}, uploads under "
            f"{', '.join(u.removeprefix(f's3://{bucket}/') for u in routed)} run "
            f"(TriggerMode={stack.parameters.get('TriggerMode')}).",
            "Drop a file, from another terminal in this folder:",
            f"  export {' '.join(f'{k}={v}' for k, v in variables.items())}",
            "  .venv/bin/python -c \"import boto3, sys; boto3.client('s3').upload_file(*sys.argv[1:])\" "
            f"data.csv {bucket} {raw}data.csv",
            "Replay a sample event into it: make invoke EVENT=events/s3-put.json RUNNING=1",
            "Watch the executions: .venv/bin/s3sm status (make status); "
            "skips, runs and notifications print here.",
            "Objects live in memory only: stopping (Ctrl-C) forgets them.",
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
            changed = now != self.deployed
            self.progress.line(
                "etl",
                "etl/ changed since `make up` started, and this run uses the ETL deployed then"
                if changed
                else "etl/ is back to the deployed ETL",
            )
            if changed:
                self.progress.line("etl", "restart `make up` (Ctrl-C, then make up) to deploy the change")


def cmd_up(args: argparse.Namespace) -> int:
    if (state := running_runtime()) is not None:
        raise CommandError(
            f"a local runtime is already running (pid {state['pid']}, {STATE_FILE}); stop it first"
        )
    progress = Progress()
    runtime = Runtime(
        stacks=[StackRequest(args.stack, dict(p.split("=", 1) for p in args.param))],
        port=args.port,
        quotas=quotas(args),
        time_scale=args.time_scale,
        log_dir=STATE_DIR / "logs",
        notify=EtlWatch(progress),
        on_log=(lambda fid, line: print(f"  [{fid}] {line}", file=sys.stderr)) if args.logs else None,
        stand_ins=args.pipeline,
    )
    with _terminate_as_interrupt():
        try:
            runtime.start()
            runtime.warm_up()
            STATE_DIR.mkdir(parents=True, exist_ok=True)
            STATE_FILE.write_text(json.dumps(runtime_state(runtime), indent=2), encoding="utf-8")
            print(instructions(runtime), flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            progress.line("stop", "stopping (delivery, runner, functions, emulator)...")
        except RuntimeStartError as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:  # the port is taken
            raise CommandError(
                f"cannot serve on port {args.port}: {exc.strerror} (another `make up`? --port N)"
            ) from exc
        finally:
            previous = signal.signal(
                signal.SIGINT, signal.SIG_IGN
            )  # a second Ctrl-C must not cut the stop short
            try:
                runtime.stop()
                STATE_FILE.unlink(missing_ok=True)
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


def _fraction(text: str) -> float:
    try:
        value = float(Fraction(text))
    except (ValueError, ZeroDivisionError) as exc:
        raise argparse.ArgumentTypeError(f"not a number or fraction: {text!r}") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _quota_flags(parser: argparse.ArgumentParser) -> None:
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


# -- invoke / demo / prepare ------------------------------------------------------------------------


def cmd_invoke(args: argparse.Namespace) -> int:
    from local.invoke import InvokeError, invoke

    env_file = None if args.env_vars == "" else Path(args.env_vars)
    try:
        return invoke(
            Path(args.event),
            function=args.function,
            env_file=env_file,
            prefer_build=not args.source,
            running=args.running,
        )
    except (InvokeError, RuntimeStartError) as exc:
        raise CommandError(str(exc)) from exc


def cmd_prepare(args: argparse.Namespace) -> int:
    from local.runtime import deploy_artifact

    started = time.monotonic()
    try:
        built = deploy_artifact()
    except RuntimeStartError as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"the deploy function's artifact is ready in {built.relative_to(ROOT)} "
        f"({time.monotonic() - started:.1f} s)"
    )
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
    _quota_flags(demo)
    demo.set_defaults(func=cmd_demo)

    prepare = commands.add_parser(
        "prepare", help="build the deploy function's artifact now (renders the pipeline)"
    )
    prepare.set_defaults(func=cmd_prepare)

    up = commands.add_parser("up", help="run the local runtime in the foreground until Ctrl-C")
    up.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="the emulator's port (default %(default)s; 0: a free one)",
    )
    up.add_argument("--stack", default=DEFAULT_STACK, help="local stack name (default %(default)s)")
    up.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, repeatable",
    )
    _quota_flags(up)
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
    invoke.add_argument(
        "--running",
        action="store_true",
        help="into the running `make up`: put the event's objects into its bucket, "
        "as uploads (their runs show there)",
    )
    invoke.set_defaults(func=cmd_invoke)

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


__all__ = ["DEFAULT_PORT", "CommandError", "Progress", "describe", "main", "runtime_state", "short_id"]
