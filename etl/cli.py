"""Clean CSV data by a Table Schema (docs/etl.md). Exit 0, 1 (bad input) or 2 (bad arguments or schema).
`python -m etl infer FILE [--rows N]` prints a draft schema for a CSV file."""

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl import MAX_REJECT_FRACTION, clean, outputs, read
from etl.read import EtlError
from etl.schema import Schema, SchemaError, load


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run(opts: argparse.Namespace, schema: Schema, report: dict[str, Any], staged: Path) -> None:
    """The whole job (its files written in `staged`); raises EtlError on failure. The report is filled in
    as it goes."""
    path = Path(opts.resource_config)  # this host and all hosts, when the job has a resource config
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        host, hosts = (str(config["current_host"]), list(map(str, config["hosts"]))) if config else (None, [])
    except (ValueError, KeyError, TypeError) as exc:
        raise EtlError(f"{path}: unreadable resource config ({exc}); expected its hosts") from exc
    report.update(host=host, hosts=hosts, outputs=(names := outputs.output_names(host, hosts)))
    (opts.output_dir / names["full_data"]).unlink(missing_ok=True)  # a failed run leaves no clean data
    lay = schema.layout or read  # the example's layout rules, or a CSV file with a header
    infos, report["ignored"], wanted = read.discover(opts.input_dir, opts.input_url, sharded=len(hosts) > 1)
    jobs: list[read.Job] = lay.plan([lay.sniff(i, schema) for i in infos], schema, len(hosts))
    if not any(j.role in lay.DATA_ROLES for j in jobs):  # an empty input is an error, unless one of several
        ignored = ", ignored: " + ", ".join(i["path"] for i in report["ignored"]) if report["ignored"] else ""
        what = f"only {jobs[0].role} files" if jobs else "no data files"
        if len(hosts) <= 1:
            raise EtlError(f"{opts.input_dir}: empty input ({what}{ignored}); {lay.expected(schema)}")
        some = f"of the {len(hosts)} instances"
        gone = f"no object: the input object {wanted} went to another {some}" if wanted and not infos else ""
        report["note"] = f"this instance received {gone or f'no data files (one {some})'}"
    keep: tuple[str, ...] = ()
    keys: clean.Keys = {}
    out, data = outputs.Outputs(staged, opts.output_dir, names, opts.progress_seconds, schema), []
    try:
        for job in jobs:
            report["files"].append(stats := outputs.file_stats(job.info, job.role))
            started = time.monotonic()
            for block in lay.job_blocks(job, schema, report["files"]):  # a layout may add a file's stats
                out.write(stats, *clean.check(schema, block, job.info, keys))
            stats["seconds"] = round(time.monotonic() - started, 3)
            if job.role in lay.DATA_ROLES:
                data.append(stats)
                counts = (stats[k] for k in outputs.COUNTS)
                outputs.LOG.info("%s: %d rows read, %d written, %d rejected", job.info.name, *counts)
        keep = ("rejects",)
        outputs.totals(report, data, opts.max_reject_fraction)
        keep = ("rejects", "full_data")
    finally:
        out.close(keep)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m etl", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--input-url", help="the S3 URL of the run; an object URL selects that one file")
    parser.add_argument("--schema", type=Path, help="the Table Schema (default: the shipped etl/schema.json)")
    parser.add_argument("--max-reject-fraction", type=float, default=MAX_REJECT_FRACTION, help="fail above")
    parser.add_argument("--progress-seconds", type=float, default=10.0, help="progress log interval")
    config = os.environ.get("LOCAL_RESOURCE_CONFIG", "/opt/ml/config/resourceconfig.json")  # local runner's
    parser.add_argument("--resource-config", default=config, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if not 0.0 <= opts.max_reject_fraction <= 1.0:
        parser.error("--max-reject-fraction must be between 0 and 1")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    args, code = list(sys.argv[1:] if argv is None else argv), 0
    try:
        if args[:1] == ["infer"]:
            from etl import infer  # only for this command: a run starts sooner

            infer.main(args[1:])
            return 0
        schema = load((opts := parse_args(args)).schema)
    except (SchemaError, EtlError, OSError, pa.ArrowInvalid) as exc:  # a schema's, before any output; infer's
        print(f"etl: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, SchemaError) else 1
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)  # freed pages go back at once: the peak stays flat over a long run
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    started = time.monotonic()
    report: dict[str, Any] = dict(status="failed", input_dir=str(opts.input_dir), files=[])
    report |= dict(input_url=opts.input_url, output_dir=str(out := opts.output_dir), started_at=stamp())
    report |= dict(schema=schema.source, title=schema.title, max_reject_fraction=opts.max_reject_fraction)
    with contextlib.ExitStack() as stack:
        try:  # the staging folder beside the output folder (a move is a rename), removed with what is left
            out.mkdir(parents=True, exist_ok=True)
            folder = tempfile.TemporaryDirectory(prefix=f".{out.name}-staging-", dir=out.parent)
            staged = Path(stack.enter_context(folder))
            run(opts, schema, report, staged)
            report["status"] = "succeeded"
        except (EtlError, OSError) as exc:
            report["error"], code = str(exc), 1
            outputs.LOG.error("failed: %s", exc)
            print(f"etl: error: {exc}", file=sys.stderr)
        report |= dict(finished_at=stamp(), seconds=round(time.monotonic() - started, 3))
        if "outputs" in report:  # once the staging folder is there
            try:
                (staged / (name := report["outputs"]["report"])).write_text(
                    json.dumps(report, indent=2) + "\n"
                )
                shutil.move(staged / name, out / name)
            except OSError as exc:  # e.g. a full disk: said in one line, and the run fails
                print(f"etl: error: writing the report: {exc}", file=sys.stderr)
                code = 1
    return code
