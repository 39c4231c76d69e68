"""``python -m redrive --queue-url URL [--function NAME] [--max N] [--json]``: print what waits in the
dead-letter queue.

The verdicts follow the trigger's settings: ``--function`` (the stack output ``TriggerFunctionName``)
reads them from the deployed function, with the routes of ``--routes`` (default ``routes.yaml``);
``--mode`` and ``--marker-name`` set (or override) them by hand. With neither, this environment's
settings or the trigger's defaults are used, and a note on stderr says so.

Exit 0 when the queue is empty, 1 when something waits (listed), 2 when the report could not run
(queue missing, AWS unreachable). Every client uses the standard AWS settings (``AWS_ENDPOINT_URL``
and the rest) and botocore's standard retry mode with bounded attempts. To send what waits back to
the upload queue, use SQS's own redrive: ``aws sqs start-message-move-task --source-arn ARN``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.exceptions import BotoCoreError
from trigger.config import Config, TriggerMode
from trigger.errors import ConfigError

from contract.routes import RoutesError, loads
from pipeline.__main__ import compile_routes
from redrive.report import ReportError, as_json, deployed_config, local_config, render, waiting

EXIT_EMPTY, EXIT_WAITING, EXIT_ERROR = 0, 1, 2
SQS_CONFIG = BotocoreConfig(
    retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m redrive",
        description="Report what waits in the trigger's dead-letter queue, and why (moves nothing).",
    )
    parser.add_argument("--queue-url", required=True, help="the stack output TriggerDeadLetterQueueUrl")
    parser.add_argument("--max", type=int, default=None, help="read at most this many messages")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--function", help="the stack output TriggerFunctionName: judge with the deployed trigger's settings"
    )
    parser.add_argument("--mode", choices=[m.value for m in TriggerMode], help="the trigger's TriggerMode")
    parser.add_argument(
        "--routes", type=Path, default=Path("routes.yaml"), help="the routes.yaml the stack was built from"
    )
    parser.add_argument("--marker-name", help="the trigger's MarkerName, e.g. _SUCCESS")
    args = parser.parse_args(argv)
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    return args


def settings(args: argparse.Namespace, session: Any) -> Config:
    """The trigger settings to judge with: the deployed function's, then the flags over them."""
    try:
        routes = loads(compile_routes(args.routes))
    except RoutesError as err:
        raise ReportError(f"{args.routes}: {err}") from err
    if args.function:
        config = deployed_config(session.client("lambda", config=SQS_CONFIG), args.function, routes)
    else:
        config = dataclasses.replace(local_config(), routes=routes)
    flags = {"mode": args.mode, "marker_name": args.marker_name}
    overrides: dict[str, Any] = {name: value for name, value in flags.items() if value}
    if "mode" in overrides:
        overrides["mode"] = TriggerMode(overrides["mode"])
    if not args.function and not overrides:
        print(
            "redrive: note: judging with this environment's trigger settings or the defaults "
            f"(mode {config.mode}, routes {args.routes}); pass --function <TriggerFunctionName> "
            "for the deployed ones",
            file=sys.stderr,
        )
    try:
        return dataclasses.replace(config, **overrides)
    except ConfigError as err:
        raise ReportError(str(err)) from err


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        session = boto3.session.Session()
        sqs = session.client("sqs", config=SQS_CONFIG)
        config = settings(args, session)
        rows = waiting(args.queue_url, sqs=sqs, max_messages=args.max, config=config)
    except (ReportError, BotoCoreError) as err:
        print(f"redrive: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(as_json(rows) if args.json else render(rows))
    return EXIT_WAITING if rows else EXIT_EMPTY


if __name__ == "__main__":
    sys.exit(main())
