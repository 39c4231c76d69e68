"""``python -m redrive``: replay the trigger's dead-letter queue. Exit 0 when every message was replayed
and deleted, 1 when any message failed (it stays in the queue, named in the report), 2 when the redrive
could not run (queue missing, bad trigger settings with --local, no AWS region or endpoint).

Every client uses the standard AWS settings (``AWS_ENDPOINT_URL`` and the rest) and botocore's
standard retry mode with bounded attempts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from trigger import handler
from trigger.config import settings
from trigger.errors import ConfigError

from redrive.replay import Replay, in_process, via_lambda
from redrive.run import RedriveError, Report, redrive

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _config(read_timeout: int, attempts: int = 5) -> Config:
    retries = {"mode": "standard", "total_max_attempts": attempts}
    return Config(retries=retries, connect_timeout=5, read_timeout=read_timeout)


SQS_CONFIG = _config(read_timeout=30)  # above the 20 s maximum long poll
SAGEMAKER_CONFIG = _config(read_timeout=30)
# A synchronous Invoke waits for the function (up to Lambda's 900 s limit); a retry of it is harmless
# (the trigger is idempotent), but three attempts are plenty.
LAMBDA_CONFIG = _config(read_timeout=905, attempts=3)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m redrive",
        description="Replay the trigger's dead-letter queue through the trigger; delete what succeeded.",
    )
    parser.add_argument("--queue-url", required=True, help="the dead-letter queue (stack output)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--function-name", help="replay by lambda:Invoke of this deployed trigger function")
    target.add_argument(
        "--local",
        action="store_true",
        help="replay through the trigger handler in this process (settings from this environment)",
    )
    parser.add_argument("--max", type=int, metavar="N", help="handle at most N messages (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    parser.add_argument(
        "--wait-seconds", type=int, default=1, choices=range(21), metavar="S",
        help="long-poll wait of each receive, 0-20 (default 1); the run ends at the first empty receive",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not (args.dry_run or args.local or args.function_name):
        parser.error("one of --function-name or --local is required (or --dry-run)")
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = sys.stdout
    try:
        session = boto3.session.Session()
        sqs = session.client("sqs", config=SQS_CONFIG)
        sagemaker = session.client("sagemaker", config=SAGEMAKER_CONFIG)
        replay, target = _target(args, session)
        # With --local the trigger's JSON logs and metrics go to stderr, so stdout holds the report only.
        with contextlib.redirect_stdout(sys.stderr):
            report = redrive(
                args.queue_url,
                replay,
                sqs=sqs,
                sagemaker=sagemaker,
                max_messages=args.max,
                dry_run=args.dry_run,
                wait_seconds=args.wait_seconds,
                target=target,
            )
    except (RedriveError, ConfigError, BotoCoreError) as err:
        print(f"redrive: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    _print(report, out, as_json=args.json)
    return EXIT_OK if report.ok else EXIT_FAILED


def _target(args: argparse.Namespace, session: Any) -> tuple[Replay, str]:
    if args.local:
        config = settings()  # a bad environment is one clear error now, not one per message
        handler.logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
        return in_process(), f"the trigger handler in-process, pipeline {config.pipeline_name}"
    if args.function_name:
        client = session.client("lambda", config=LAMBDA_CONFIG)
        return via_lambda(client, args.function_name), f"Lambda function {args.function_name}"
    return in_process(), "nothing (dry run)"  # never called: a dry run replays nothing


def _print(report: Report, out: Any, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str), file=out)
    else:
        print(report.render(), file=out)


if __name__ == "__main__":
    sys.exit(main())
