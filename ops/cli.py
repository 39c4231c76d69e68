"""``s3sm``: status, retry, redrive and backfill, the same against a deployed stack and the local runtime.

Exit status: 0 done; 1 done in part (an execution that was not failed, a retry SageMaker refused, dead
letters waiting, uploads a backfill could not enqueue); 2 could not run (no such stack, a permission
missing, no local runtime, bad input).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ops import dlq
from ops.backfill import Backfill, parse_time, summary
from ops.retry import DATA_ERROR, INPUT_EXPIRED, Retrier, parse_since
from ops.skips import recent as recent_skips
from ops.status import Collector, as_json, execution_arn, key_json, render, render_key, render_one
from ops.target import OpsError, Target, load_routes, resolve
from ops.text import COMMAND

PROG = "s3sm"
EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2


def cmd_status(target: Target, args: argparse.Namespace) -> int:
    if args.key:
        return cmd_status_key(target, args)
    collector = Collector(target)
    if args.execution:
        execution = collector.execution(execution_arn(target, args.execution))
        if args.json:
            print(as_json(target, [execution], None))
        else:
            print(render_one(execution))
        return EXIT_OK
    since = parse_time("--skips-since", args.skips_since) if args.skips else None
    executions = collector.recent(args.limit)
    queues = collector.queues()
    skips = recent_skips(target, since=since, limit=args.skips) if since else None
    if args.json:
        print(as_json(target, executions, queues, skips))
    else:
        print(render(target, executions, queues, args.width, skips))
    return EXIT_OK


def cmd_status_key(target: Target, args: argparse.Namespace) -> int:
    key = args.key.removeprefix(f"s3://{target.outputs.get('DataBucketName')}/")
    uploads = Collector(target).uploads(key)
    print(key_json(target, key, uploads) if args.json else render_key(target, key, uploads, args.width))
    return EXIT_OK


def cmd_backfill(target: Target, args: argparse.Namespace) -> int:
    routes = load_routes(args.routes)
    since = parse_time("--since", args.since) if args.since else None
    until = parse_time("--until", args.until) if args.until else None
    if since and until and since > until:
        raise OpsError(f"--since {args.since} is later than --until {args.until}")
    rerun = (
        datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if args.rerun else None
    )
    say = (lambda line: None) if args.json else (lambda line: print(line, flush=True))
    backfill = Backfill(target, routes, since=since, until=until, rerun=rerun, say=say)
    outcome = backfill.run(args.prefix, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(summary(outcome, since=since, until=until)))
    return EXIT_PARTIAL if outcome.failed else EXIT_OK


def cmd_retry(target: Target, args: argparse.Namespace) -> int:
    retrier = Retrier(target, include_data_errors=args.include_data_errors)
    if args.failed_since:
        since = parse_since(args.failed_since)
        arns = retrier.failed_since(since)
        if not arns:
            print(f"no failed executions since {since.isoformat(timespec='seconds')}: nothing retried")
    else:
        arns = [execution_arn(target, e) for e in args.executions]
    outcomes = [retrier.retry(arn) for arn in arns]
    if args.json:
        print(json.dumps([{**vars(o), "execution_id": o.execution_id} for o in outcomes], indent=2))
    else:
        for outcome in outcomes:
            print(outcome.line())
        if outcomes:
            done = sum(o.retried for o in outcomes)
            data, expired = (sum(o.skipped == kind for o in outcomes) for kind in (DATA_ERROR, INPUT_EXPIRED))
            left = [f"{data} failed on their data", f"{expired} without input"] if data or expired else []
            print("; ".join([f"{done} of {len(outcomes)} retried", *left]))
    return EXIT_OK if all(o.retried for o in outcomes) else EXIT_PARTIAL


def cmd_redrive(target: Target, args: argparse.Namespace) -> int:
    rows = dlq.report(target, load_routes(args.routes), max_messages=args.max)
    moved = dlq.move(target, rate=args.rate) if args.move else None
    if args.json:
        shown: dict[str, object] = {"waiting": [row.as_dict() for row in rows], "move": moved}
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        print(dlq.render(rows))
        if moved:
            print(f"redrive started (StartMessageMoveTask), task {moved['task_handle']}")
        elif rows:
            move = f"{COMMAND} redrive --move"
            print(f"nothing changed; `{move}` sends them back to the upload queue (SQS redrive)")
    return EXIT_PARTIAL if rows and not moved else EXIT_OK


def add_routes(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--routes",
        type=Path,
        metavar="PATH",
        help="the routes the stack was deployed with (default: routes.yaml at the repository root, the file "
        "`make build` compiles into the trigger)",
    )


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where")
    where.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed stack, found through its CloudFormation outputs (or a stack of the local runtime)",
    )
    where.add_argument(
        "--local",
        action="store_true",
        help="the local runtime (`make up`); the default when one is running and --stack is not given",
    )
    where.add_argument("--region", help="the stack's region (default: the AWS settings')")
    common.add_argument("--json", action="store_true", help="everything, in full, as JSON")

    top = argparse.ArgumentParser(
        prog=PROG,
        description="Operate the S3 -> SageMaker Pipelines trigger: see runs and queues, retry, redrive, "
        "backfill.",
        epilog="Exit status: 0 done, 1 done in part, 2 could not run.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="{status,retry,redrive,backfill}")

    status = commands.add_parser(
        "status", parents=[common], help="recent executions, uploads waiting, dead letters, recent skips",
        description="Recent executions (upload, status, failed step and reason, output, rows written and "
        "rejected, duration), uploads waiting in the queue, the dead-letter depth, and the uploads the "
        "trigger skipped lately with why (its log group's `record skipped` lines).",
    )  # fmt: skip
    status.add_argument(
        "--limit", type=int, default=20, metavar="N", help="the N most recent executions, 1-100 (default 20)"
    )
    status.add_argument("--execution", metavar="ID|ARN", help="one execution, every field in full")
    status.add_argument(
        "--skips",
        type=int,
        default=10,
        metavar="N",
        help="the N newest uploads the trigger skipped, with why, from its log (default 10; 0: none)",
    )
    status.add_argument(
        "--skips-since",
        default="24h",
        metavar="WHEN",
        help="the skips logged since WHEN: 30m, 6h, 2d or ISO 8601 (default 24h)",
    )
    status.add_argument(
        "--width",
        type=int,
        metavar="COLS",
        help="table width (default: the terminal's; 100 when not on a terminal)",
    )
    status.add_argument(
        "--key",
        metavar="KEY",
        help="every upload of KEY (in the stack's bucket) across the routed pipelines: when it landed, its "
        "execution, status, output folder and rows; the newest marked",
    )
    status.set_defaults(func=cmd_status)

    retry = commands.add_parser(
        "retry", parents=[common], help="retry failed executions (RetryPipelineExecution)",
        description="Retry failed executions where they failed, idempotently: the same failure is retried "
        "once however often this runs. An execution that is not Failed is left alone, and so is one whose "
        "input (its snapshot) has expired or that failed on its data; each is named with why.",
    )  # fmt: skip
    retry.add_argument("executions", nargs="*", metavar="ID|ARN", help="the executions to retry")
    retry.add_argument(
        "--failed-since",
        metavar="WHEN",
        help="every failed execution started since WHEN: 30m, 6h, 2d or ISO 8601",
    )
    retry.add_argument(
        "--include-data-errors",
        action="store_true",
        help="also retry executions that failed on their data (the ETL's exit status 1), which are "
        "otherwise named and skipped: the same bytes fail the same way, upload corrected data instead",
    )
    retry.set_defaults(func=cmd_retry)

    redrive = commands.add_parser(
        "redrive", parents=[common], help="what waits in the dead-letter queue and why; --move to redrive",
        description="Report what waits in the dead-letter queue and why, changing nothing. With --move, "
        "start SQS's own redrive (StartMessageMoveTask) of every message back to the queue it came from.",
    )  # fmt: skip
    redrive.add_argument("--max", type=int, metavar="N", help="report at most N messages (default: all)")
    redrive.add_argument(
        "--move", action="store_true", help="then start the native redrive of the whole queue"
    )
    redrive.add_argument("--rate", type=int, metavar="N", help="with --move: at most N messages per second")
    add_routes(redrive)
    redrive.set_defaults(func=cmd_redrive)

    backfill = commands.add_parser(
        "backfill", parents=[common], help="run objects already in the bucket, through the upload queue",
        description="Start runs for the objects already under PREFIX in the stack's bucket, through the "
        "same queue, routes and idempotency token as a live upload: each object's latest version "
        "(ListObjectVersions on a versioned bucket, ListObjectsV2 otherwise) is sent to the upload queue "
        "as S3's 'Object Created' event (SendMessageBatch, 10 at a time), unless it matches no route, "
        "the trigger would skip it, or it already ran (the executions' ledger says so): an object "
        "version that ran starts nothing again.",
    )  # fmt: skip
    backfill.add_argument("prefix", metavar="PREFIX", help="the folder to backfill, e.g. raw/ or raw/claims/")
    backfill.add_argument(
        "--since", metavar="WHEN", help="objects last modified since WHEN: 30m, 6h, 2d ago or ISO 8601"
    )
    backfill.add_argument(
        "--until", metavar="WHEN", help="objects last modified until WHEN: 30m, 6h, 2d ago or ISO 8601"
    )
    backfill.add_argument(
        "--dry-run",
        action="store_true",
        help="list each object, its route, and whether it would start, already ran or matches no route; "
        "send nothing",
    )
    backfill.add_argument(
        "--rerun",
        action="store_true",
        help="start a new run even for an object version that already ran (a new token and output folder)",
    )
    add_routes(backfill)
    backfill.set_defaults(func=cmd_backfill)
    return top


def help_text() -> str:
    """``s3sm --help`` and each subcommand's, as docs/operations.md shows them (test_ops_docs checks it)."""
    top = parser()
    parts = [top.format_help()]
    for action in top._subparsers._group_actions if top._subparsers else []:  # argparse has no public API
        for name, sub in getattr(action, "choices", {}).items():
            parts.append(f"$ {COMMAND} {name} --help\n{sub.format_help()}")
    return f"$ {COMMAND} --help\n" + "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    top = parser()
    args = top.parse_args(argv)
    if args.command == "retry" and bool(args.executions) == bool(args.failed_since):
        top.error("retry: name executions or give --failed-since WHEN (one of the two)")
    if args.command == "status" and args.key and args.execution:
        top.error("status: --key or --execution (one of the two)")
    for name in ("limit", "max", "rate", "width"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            top.error(f"--{name} must be at least 1")
    if getattr(args, "skips", 0) < 0:
        top.error("--skips must be at least 0")
    if getattr(args, "limit", None) is not None and args.limit > 100:
        top.error("--limit must be at most 100 (ListPipelineExecutions' page size)")
    try:
        target = resolve(stack=args.stack, local=args.local, region=args.region)
        code: int = args.func(target, args)
    except OpsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


__all__ = ["help_text", "main", "parser"]
