"""Clean the COIL 2000 data by etl/rules.py (docs/etl.md). Exit 0, 1 (bad input) or 2 (bad arguments)."""

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl import clean, layout, outputs
from etl.layout import EVAL, LABELLED, EtlError
from etl.read import blocks


def run(opts: argparse.Namespace, report: dict[str, Any]) -> None:
    """The whole job; raises EtlError on failure. The report is filled in as it goes."""
    path = Path(opts.resource_config)  # this host and all hosts, when the job has a resource config
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        host = str(config["current_host"]) if config else None
        hosts = [str(h) for h in config["hosts"]] if config else []
    except (ValueError, KeyError, TypeError) as exc:
        raise EtlError(f"{path}: unreadable resource config ({exc}); expected its hosts") from exc
    report.update(host=host, hosts=hosts, outputs=(names := outputs.output_names(host, hosts)))
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    (opts.output_dir / names["full_data"]).unlink(missing_ok=True)  # a failed run leaves no clean data
    infos, report["ignored"], wanted = layout.discover(opts.input_dir, opts.input_url, sharded=len(hosts) > 1)
    work, files = layout.make_plan([layout.sniff(i) for i in infos], len(hosts)), report["files"]
    for info in work.dictionaries:
        layout.check_dictionary(info)
        files.append(outputs.file_stats(info, layout.DICTIONARY))
    if not (work.labelled or work.pairs):  # an empty input is an error, unless one of several instances
        ignored = ", ignored: " + ", ".join(i["path"] for i in report["ignored"]) if report["ignored"] else ""
        what = "only the data dictionary" if work.dictionaries else "no data files"
        if len(hosts) <= 1:
            raise EtlError(f"{opts.input_dir}: empty input ({what}{ignored}); {layout.EXPECTED}")
        some = f"of the {len(hosts)} instances"
        gone = f"no object: the input object {wanted} went to another {some}" if wanted and not infos else ""
        report["note"] = f"this instance received {gone or f'no data files (one {some})'}"
    out, keep = outputs.Outputs(opts.output_dir, names, opts.progress_seconds), tuple[str, ...]()
    try:
        for info, tg in [*((f, None) for f in work.labelled), *work.pairs]:
            stats = outputs.file_stats(info, EVAL if tg else LABELLED, tg.name if tg else None)
            files += [stats, outputs.file_stats(tg, layout.TARGETS, info.name)] if tg else [stats]
            targets, started = (clean.Targets(tg, info) if tg else None), time.monotonic()
            for block in blocks(info):
                codes, rejects = clean.check(block, info, targets)
                out.write(stats, clean.render(codes), rejects)
            if targets and (left := len(targets.codes) - targets.at):
                more = f"{left} more rows than its eval file {info.name} ({stats['rows_read']} rows)"
                raise EtlError(f"{targets.info.name} has {more}; expected one target per eval row")
            if targets:
                files[-1].update(rows_read=len(targets.codes), rows_written=stats["rows_written"])
            stats["seconds"] = round(time.monotonic() - started, 3)
            counts = [stats[k] for k in outputs.COUNTS]
            outputs.LOG.info("%s: %d rows read, %d written, %d rejected", info.name, *counts)
        keep = ("rejects",)
        outputs.totals(report, opts.max_reject_fraction)
        keep = ("rejects", "full_data")
    finally:
        out.close(keep)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m etl", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--input-dir", type=Path, default=Path("/opt/ml/processing/input/data"))
    parser.add_argument("--output-dir", type=Path, default=Path("/opt/ml/processing/output"))
    parser.add_argument("--input-url", help="the S3 URL of the run; an object URL selects that one file")
    parser.add_argument("--max-reject-fraction", type=float, default=0.01, help="fail above this share")
    parser.add_argument("--progress-seconds", type=float, default=10.0, help="progress log interval")
    config = os.environ.get("LOCAL_RESOURCE_CONFIG", "/opt/ml/config/resourceconfig.json")  # local runner's
    parser.add_argument("--resource-config", default=config, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if not 0.0 <= opts.max_reject_fraction <= 1.0:
        parser.error("--max-reject-fraction must be between 0 and 1")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts, started, code = parse_args(argv), time.monotonic(), 0
    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)  # freed pages go back at once: the peak stays flat over a long run
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s")
    stamp: Callable[[], str] = lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())  # noqa: E731
    report: dict[str, Any] = {"status": "failed", "input_dir": str(opts.input_dir), "files": []}
    report |= {"input_url": opts.input_url, "output_dir": str(opts.output_dir), "started_at": stamp()}
    report["max_reject_fraction"] = opts.max_reject_fraction
    try:
        run(opts, report)
        report["status"] = "succeeded"
    except (EtlError, OSError) as exc:
        report["error"], code = str(exc), 1
        outputs.LOG.error("failed: %s", exc)
        print(f"etl: error: {exc}", file=sys.stderr)
    report |= {"finished_at": stamp(), "seconds": round(time.monotonic() - started, 3)}
    if "outputs" in report:
        outputs.write_json(opts.output_dir / report["outputs"]["report"], report)
    return code
