"""Clean the COIL 2000 insurance data by the rules in etl/rules.py: the processing step (docs/etl.md).
Exit 0; 1 (bad input, too many rejects) or 2 (bad arguments), with one line on stderr saying why."""

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl import clean, layout, outputs
from etl.layout import EVAL, LABELLED, EtlError, FileInfo
from etl.read import blocks


def process(out: outputs.Outputs, info: FileInfo, stats: dict[str, Any], tg: clean.Targets | None) -> None:
    """Every block of one data file (with its targets, for eval rows) through the rules into the outputs."""
    started = time.monotonic()
    for block in blocks(info):
        codes, rejects = clean.check(block, info, tg)
        out.write(stats, clean.render(codes), rejects)
    if tg is not None and len(tg.codes) > tg.at:
        more = f"has {len(tg.codes) - tg.at} more rows than its eval file {info.name} ({stats['rows_read']}"
        raise EtlError(f"{tg.info.name} {more} rows); expected one target per eval row")
    stats["seconds"] = round(time.monotonic() - started, 3)
    outputs.LOG.info("%s: %d rows read, %d written, %d rejected", info.name, *map(stats.get, outputs.COUNTS))


def plan(opts: argparse.Namespace, hosts: list[str], report: dict[str, Any]) -> layout.Plan:
    """The files to read; an empty input is an error, unless this is one of several instances."""
    infos, report["ignored"] = layout.discover(opts.input_dir, opts.input_url, sharded=len(hosts) > 1)
    work = layout.make_plan([layout.sniff(i) for i in infos], len(hosts))
    for info in work.dictionaries:
        layout.check_dictionary(info)
        report["files"].append(outputs.file_stats(info, layout.DICTIONARY))
    if work.labelled or work.pairs:
        return work
    ignored = ", ignored: " + ", ".join(i["path"] for i in report["ignored"]) if report["ignored"] else ""
    what = "only the data dictionary" if work.dictionaries else "no data files"
    if len(hosts) <= 1:
        raise EtlError(f"{opts.input_dir}: empty input ({what}{ignored}); {layout.EXPECTED}")
    wanted, some = layout.object_name(opts.input_url), f"of the {len(hosts)} instances"
    report["note"] = f"this instance received no data files (one {some})"
    if wanted is not None and not infos:
        report["note"] = f"this instance received no object: the input object {wanted} went to another {some}"
    return work


def run(opts: argparse.Namespace, report: dict[str, Any]) -> None:
    """The whole job; raises EtlError on failure. The report is filled in as it goes."""
    host, hosts = outputs.resource_config(opts.resource_config)
    report.update(host=host, hosts=hosts, outputs=(names := outputs.output_names(host, hosts)))
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    (opts.output_dir / names["full_data"]).unlink(missing_ok=True)  # a failed run leaves no clean data
    work, files = plan(opts, hosts, report), report["files"]
    out, keep = outputs.Outputs(opts.output_dir, names, opts.progress_seconds), tuple[str, ...]()
    try:
        for info in work.labelled:
            files.append(outputs.file_stats(info, LABELLED))
            process(out, info, files[-1], None)
        for ev, tg in work.pairs:
            files += [outputs.file_stats(ev, EVAL, tg.name), outputs.file_stats(tg, layout.TARGETS, ev.name)]
            process(out, ev, files[-2], targets := clean.Targets(tg, ev))
            files[-1].update(rows_read=len(targets.codes), rows_written=files[-2]["rows_written"])
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
    # The local runner maps /opt/ml paths into a scratch folder and says where it put this file.
    config = os.environ.get("LOCAL_RESOURCE_CONFIG", "/opt/ml/config/resourceconfig.json")
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
