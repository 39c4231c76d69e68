"""The outputs (docs/etl.md), each written in a staging folder beside the output folder and moved into
it whole once complete: the pipeline uploads the output folder continuously (S3UploadMode Continuous),
so it only ever holds finished files, and a failed run's rejects and report reach S3 too (etl.cli)."""

import csv
import io
import logging
import shutil
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pv

from etl.clean import Reject
from etl.read import EtlError, FileInfo
from etl.schema import Schema

LOG = logging.getLogger("etl")
COUNTS = ("rows_read", "rows_written", "rows_rejected")


def output_names(host: str | None, hosts: list[str]) -> dict[str, str]:
    """With several instances, each names its files after its host."""
    tail = f"-{host}" if host and len(hosts) > 1 else ""
    return {k: f"{k}{tail}.{'json' if k == 'report' else 'csv'}" for k in ("full_data", "rejects", "report")}


def file_stats(info: FileInfo, role: str) -> dict[str, Any]:
    gz = "gzip" if info.gzip else None
    stats: dict[str, Any] = {"path": info.name, "role": role, "layout": info.layout, "compression": gz}
    return stats | {**dict.fromkeys(COUNTS, 0), "rejected_by_reason": {}, "seconds": 0}


def totals(report: dict[str, Any], data: list[dict[str, Any]], max_fraction: float) -> None:
    """The totals of the `data` files, into the report; too many rejected rows (or no valid one) fail."""
    sums, rejects = {k: sum(f[k] for f in data) for k in COUNTS}, report["outputs"]["rejects"]
    reasons = dict(sorted(sum((Counter(f["rejected_by_reason"]) for f in data), Counter()).items()))
    share = sums["rows_rejected"] / sums["rows_read"] if sums["rows_read"] else 0.0
    report["totals"] = {**sums, "reject_fraction": round(share, 6), "rejected_by_reason": reasons}
    if share > max_fraction:
        top = [f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
        why = ", ".join(top[:5] + [f"and {len(top) - 5} more reasons"] * (len(top) > 5))
        failed = f"{sums['rows_rejected']} of {sums['rows_read']} rows ({100 * share:.2f}%) failed validation"
        limit = f"above --max-reject-fraction {max_fraction:g} (the pipeline parameter MaxRejectFraction)"
        raise EtlError(f"{failed}, {limit}: {why}; see {rejects}")
    if sums["rows_read"] and not sums["rows_written"]:
        raise EtlError(f"no valid rows: all {sums['rows_read']} rows were rejected; see {rejects}")


class Outputs:
    """The two CSV files, written in `staged` (the clean rows by pyarrow's writer, in a thread) and moved
    into `output` by close(); the progress log."""

    def __init__(
        self, staged: Path, output: Path, names: dict[str, str], every: float, schema: Schema
    ) -> None:
        self.staged, self.paths = staged, {k: output / names[k] for k in ("full_data", "rejects")}
        csv.writer(header := io.StringIO(), lineterminator="\n").writerow(schema.names)  # as pandas writes it
        (data := pa.OSFile(str(staged / names["full_data"]), "wb")).write(header.getvalue().encode())
        self.writer = pv.CSVWriter(data, schema.arrow, write_options=pv.WriteOptions(include_header=False))
        self.rejects_file = open(staged / names["rejects"], "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.rejects = csv.writer(self.rejects_file, lineterminator="\n")
        self.rejects.writerow(["source_file", "line", "reason", "row"])
        self.data, self.rows, self.every, self.started = data, 0, every, time.monotonic()
        self.last, self.thread, self.pending = self.started, ThreadPoolExecutor(max_workers=1), Future[None]()
        self.pending.set_result(None)

    def write(self, stats: dict[str, Any], batch: pa.RecordBatch, rejects: list[Reject]) -> None:
        """Hand the batch to the writer's thread once the one before is written (flat memory)."""
        self.pending.result()
        self.pending = self.thread.submit(self.writer.write_batch, batch)
        for line, row, reason, category in rejects:
            self.rejects.writerow([stats["path"], line, reason, row.decode("utf-8", "backslashreplace")])
            stats["rejected_by_reason"][category] = stats["rejected_by_reason"].get(category, 0) + 1
        for key, n in zip(COUNTS, (batch.num_rows + len(rejects), batch.num_rows, len(rejects)), strict=True):
            stats[key] += n
        self.rows += batch.num_rows + len(rejects)
        if (now := time.monotonic()) - self.last >= self.every:
            self.last, rate = now, self.rows / max(now - self.started, 1e-9)
            LOG.info("progress: %d rows done (%.0f rows/s), file %s", self.rows, rate, stats["path"])

    def close(self, keep: tuple[str, ...]) -> None:
        """Close both files; move the `keep` ones into the output folder (the others go with `staged`)."""
        self.pending.result()
        self.thread.shutdown()
        for file in (self.writer, self.data, self.rejects_file):
            file.close()
        for key in keep:
            shutil.move(self.staged / self.paths[key].name, self.paths[key])
