"""``python -m local {up,demo,invoke,prepare}``: the local runtime's commands (docs/local-runtime.md)."""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
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
        if (text := describe(kind, details)) is not None:
            self.line(*text)


def _key(url: str) -> str:
    """An s3:// URL without its bucket (the progress lines name the bucket once, at deploy)."""
    return url[5:].partition("/")[2] if url.startswith("s3://") else url


def describe(kind: str, d: dict[str, Any]) -> tuple[str, str] | None:
    """(stage, text) for a runtime notification, or None for those not worth a line."""
    params, arn = d.get("parameters") or {}, short_id(str(d.get("arn", "")))
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
            stack, seconds = d["stack"], d["seconds"]
            bucket, mode = stack.outputs.get("DataBucketName", "?"), stack.parameters.get("TriggerMode", "?")
            pipelines = ", ".join(stack.pipeline_names()) or "?"
            return (
                "deploy",
                f"stack {stack.name}: bucket {bucket}, pipeline {pipelines} ({mode} mode), {seconds:.1f} s",
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
                f"duplicate delivery: same execution {arn} (same ClientRequestToken: nothing runs twice)",
            )
        case "invoked" if d.get("failed"):
            failed, batch, ms = d["failed"], d["batch"], d["duration_ms"]
            return "trigger", f"{failed} of {batch} back to the queue for a later try [{ms:.0f} ms]"
        case "invoke-error":
            error = f"{d['error'].get('errorType')}: {d['error'].get('errorMessage')}"
            then = "back in the queue after its visibility timeout"
            return "trigger", f"batch of {d['batch']} failed as a whole: {error} ({then})"
        case "execution-started":
            return "execution", f"{arn} running on {_key(params.get('InputDataUrl', '(default input)'))}"
        case "step-retrying" if d["attempt"] == 2:  # the first retry says it all; more would flood a burst
            reason, limit = (
                str(d["reason"]).split(":", 1)[0],
                str(d["policy"]).partition("(")[2].partition(")")[0],
            )
            return "retrying", (
                f"{arn} {d['step']}: {reason}; retried every {d['wait']:.0f} s or so "
                f"({d['local_wait']:.2f} s here), {limit}"
            )
        case "execution-recorded":
            values = ", ".join(f"{k}={v}" for k, v in params.items())
            return "recorded", f"{arn} of {d['pipeline']} started with {values}"
        case "execution-succeeded":
            return (
                "succeeded",
                f"{arn} -> {_key(params.get('OutputDataUrl', '(default output)'))} ({d['seconds']:.1f} s)",
            )
        case "execution-failed":
            return "FAILED", f"{arn}: {d['reason']}"
        case "topic-notification":  # what the notification topic would send (local/notifications.py)
            # the sentence names `s3sm` as a deployed stack's operator runs it; here it runs from .venv
            message = re.sub(r"(?<![\w/.])s3sm ", ".venv/bin/s3sm ", " ".join(d["message"].split()))
            return "notify", f"{d['topic']}: {message}"
        case "poll-error" | "notification-error":
            return "warning", f"{kind}: {d}"
    return None


def runtime_state(runtime: Runtime) -> dict[str, Any]:
    """What runtime.json says about a running runtime (``s3sm`` finds it there)."""
    stacks = [  # `s3sm` reads a stack's outputs, as it reads a deployed stack's
        {"name": stack.name, "bucket": stack.outputs.get("DataBucketName", ""), "outputs": stack.outputs}
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
    under = [u.removeprefix(f"s3://{bucket}/") for u in routed]
    raw, prefixes = under[0].removesuffix("*") or "raw/", ", ".join(under)
    variables = {
        "AWS_ENDPOINT_URL": runtime.endpoint_url,
        **CREDENTIALS,
        "AWS_DEFAULT_REGION": runtime.emulator.region,
    }
    return f"""
Local runtime up: endpoint {runtime.endpoint_url}, bucket {bucket}, uploads under {prefixes} run \
(TriggerMode={stack.parameters.get("TriggerMode")}).
Drop a file, from another terminal in this folder:
  export {" ".join(f"{k}={v}" for k, v in variables.items())}
  .venv/bin/python -c "import boto3, sys; boto3.client('s3').upload_file(*sys.argv[1:])" \
data.csv {bucket} {raw}data.csv
Replay a sample event into it: make invoke EVENT=events/s3-put.json RUNNING=1
Watch the executions: .venv/bin/s3sm status (make status); skips, runs and notifications print here.
Objects live in memory only: stopping (Ctrl-C) forgets them.
"""


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
            if now == self.deployed:
                return self.progress.line("etl", "etl/ is back to the deployed ETL")
            self.progress.line(
                "etl", "etl/ changed since `make up` started, and this run uses the ETL deployed then"
            )
            self.progress.line("etl", "restart `make up` (Ctrl-C, then make up) to deploy the change")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


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
    # SIGTERM stops `up` as Ctrl-C does, even from a shell that ignores SIGINT in background jobs
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
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
    except OSError as exc:
        taken = f"cannot serve on port {args.port}: {exc.strerror} (another `make up`? --port N)"
        raise CommandError(taken if exc.errno == errno.EADDRINUSE else str(exc)) from exc
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        runtime.stop()
        STATE_FILE.unlink(missing_ok=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
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
    beyond, defaults = "beyond: ResourceLimitExceeded", Quotas()
    for flag, kind, value, meta, text in (
        ("--max-concurrent-executions", int, defaults.max_concurrent_executions, "N",
         f"pipeline executions Executing at once ({beyond}; default %(default)s, SageMaker's; 0: no quota)"),
        ("--max-processing-instances", int, defaults.max_processing_instances, "M",
         f"processing instances of all jobs ({beyond}, then retried; default %(default)s; 0: no quota)"),
        ("--time-scale", _fraction, TIME_SCALE, "F",
         "SageMaker's retry waits and the trigger's backoff run F times as long (default 1/120)"),
    ):  # fmt: skip
        parser.add_argument(flag, type=kind, default=value, metavar=meta, help=text)


def cmd_invoke(args: argparse.Namespace) -> int:
    from local.invoke import InvokeError, invoke

    env_file = Path(args.env_vars) if args.env_vars else None
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
    seconds = time.monotonic() - started
    print(f"the deploy function's artifact is ready in {built.relative_to(ROOT)} ({seconds:.1f} s)")
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
    commands.add_parser("prepare", help="build the deploy function's artifact now (renders the pipeline)")
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
        help="another team's pipeline that a route starts: made here declaring what its route sets; "
        "its executions are recorded as started, not run (repeatable)",
    )
    up.add_argument("--logs", action="store_true", help="also print the functions' own log lines")
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
    running = "into the running `make up`: put the event's objects into its bucket, as uploads"
    invoke.add_argument("--running", action="store_true", help=running)
    args = parser.parse_args(argv)
    if bad := [p for p in getattr(args, "param", []) if "=" not in p]:
        parser.error(f"--param {bad[0]!r}: expected NAME=VALUE")
    run = {"demo": cmd_demo, "prepare": cmd_prepare, "up": cmd_up, "invoke": cmd_invoke}[args.command]
    try:
        return run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


__all__ = ["DEFAULT_PORT", "CommandError", "Progress", "describe", "main", "runtime_state", "short_id"]
