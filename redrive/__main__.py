"""``python -m redrive --queue-url URL [--max N] [--json]``: print what waits in the dead-letter queue.

Exit 0 when the queue is empty, 1 when something waits (listed), 2 when the report could not run
(queue missing, AWS unreachable). Every client uses the standard AWS settings (``AWS_ENDPOINT_URL``
and the rest) and botocore's standard retry mode with bounded attempts. To send what waits back to
the upload queue, use SQS's own redrive: ``aws sqs start-message-move-task --source-arn ARN``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from redrive.report import ReportError, as_json, render, waiting

EXIT_EMPTY, EXIT_WAITING, EXIT_ERROR = 0, 1, 2
SQS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 5}, connect_timeout=5, read_timeout=30)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m redrive",
        description="Report what waits in the trigger's dead-letter queue, and why (moves nothing).",
    )
    parser.add_argument("--queue-url", required=True, help="the stack output TriggerDeadLetterQueueUrl")
    parser.add_argument("--max", type=int, default=None, help="read at most this many messages")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sqs = boto3.session.Session().client("sqs", config=SQS_CONFIG)
        rows = waiting(args.queue_url, sqs=sqs, max_messages=args.max)
    except (ReportError, BotoCoreError) as err:
        print(f"redrive: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    print(as_json(rows) if args.json else render(rows))
    return EXIT_WAITING if rows else EXIT_EMPTY


if __name__ == "__main__":
    sys.exit(main())
