"""The outputs (docs/etl.md), each written to a temporary file renamed into place at the end."""

import csv
import io
import json
import logging
import os
import tempfile
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


def file_stats(info: FileInfo, role: str, paired_with: str | None = None) -> dict[str, Any]:
    gz = "gzip" if info.gzip else None
    stats: dict[str, Any] = {"path": info.name, "role": role, "layout": info.layout, "compression": gz}
    stats |= {**dict.fromkeys(COUNTS, 0), "rejected_by_reason": {}, "seconds": 0}
    return {**stats, "paired_with": paired_with} if paired_with else stats


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


def temp_file(path: Path, folder: Path) -> Path:  # in `folder` (the output's), renamed onto `path` at the end
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def write_json(path: Path, payload: dict[str, Any], folder: Path) -> None:
    (tmp := temp_file(path, folder)).write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


class Outputs:
    """The two CSV files being written (the clean rows by pyarrow's writer, in a thread), the progress log."""

    def __init__(
        self, folders: tuple[Path, Path], names: dict[str, str], progress_seconds: float, schema: Schema
    ) -> None:
        """`folders`: the clean data's (where every temporary file is) and the rejects' and report's."""
        self.paths = {"full_data": folders[0] / names["full_data"], "rejects": folders[1] / names["rejects"]}
        self.tmp = {k: temp_file(p, folders[0]) for k, p in self.paths.items()}
        self.progress_seconds = progress_seconds
        csv.writer(header := io.StringIO(), lineterminator="\n").writerow(schema.names)  # as pandas writes it
        (data := pa.OSFile(str(self.tmp["full_data"]), "wb")).write(header.getvalue().encode())
        self.writer = pv.CSVWriter(data, schema.arrow, write_options=pv.WriteOptions(include_header=False))
        self.rejects_file = open(self.tmp["rejects"], "w", encoding="utf-8", newline="")  # noqa: SIM115
        self.rejects = csv.writer(self.rejects_file, lineterminator="\n")
        self.rejects.writerow(["source_file", "line", "reason", "row"])
        self.data, self.rows, self.started = data, 0, time.monotonic()
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
        if (now := time.monotonic()) - self.last >= self.progress_seconds:
            self.last, rate = now, self.rows / max(now - self.started, 1e-9)
            LOG.info("progress: %d rows done (%.0f rows/s), file %s", self.rows, rate, stats["path"])

    def close(self, keep: tuple[str, ...]) -> None:
        """Close both files; rename the `keep` ones into place, remove the others."""
        self.pending.result()
        self.thread.shutdown()
        for file in (self.writer, self.data, self.rejects_file):
            file.close()
        for key, tmp in self.tmp.items():
            os.replace(tmp, self.paths[key]) if key in keep else tmp.unlink(missing_ok=True)
