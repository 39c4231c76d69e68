"""ETL benchmark: our etl.py against the seed-style pandas ETL and the pyarrow read+write floor.

    .venv/bin/python bench/etl_bench.py [--rows 100000,1000000,5000000] [--baseline-max-rows 1000000]

Every run is a subprocess on the same generated seed-layout files (cached under build/etl-bench-data/);
its wall time is measured around it and its peak RSS is the kernel's (os.wait4 rusage of that child;
this process imports nothing heavy, so the pages a child shares with it before exec stay negligible).
Prints one table and the pass/fail of the targets in issue 3, and writes bench/results/etl.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ETL = ROOT / "etl" / "etl.py"
BASELINE = ROOT / "bench" / "etl_baseline.py"
FLOOR = ROOT / "bench" / "etl_floor.py"
DATA = ROOT / "build" / "etl-bench-data"
RESULTS = ROOT / "bench" / "results" / "etl.json"
INPUTS = ("train.csv", "test.csv", "gt.csv")


@dataclass
class Run:
    rows: int
    name: str
    seconds: float
    peak_rss_mb: float
    input_mb: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.input_mb / self.seconds


def dataset(rows: int) -> Path:
    """Seed-layout files with `rows` rows in total, generated once."""
    folder = DATA / f"seed-{rows}"
    stamp = folder / ".complete"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {rows:,} rows into {folder} ...", flush=True)
        # In a child: this process stays small, since a child's peak RSS (ru_maxrss) counts the pages it
        # shared with this process between fork and exec.
        generator = [
            sys.executable,
            "-m",
            "coilgen",
            "--layout",
            "seed",
            "--rows",
            str(rows),
            "--seed",
            "2000",
        ]
        subprocess.run([*generator, "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
        stamp.write_text("ok\n")  # hidden: etl.py ignores it
    return folder


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"benchmark run failed ({proc.returncode}): {' '.join(cmd)}\n{stderr}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def bench_size(rows: int, baseline_max_rows: int) -> list[Run]:
    data = dataset(rows)
    input_mb = sum((data / n).stat().st_size for n in INPUTS) / 1e6
    py = sys.executable
    runs = []
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        cases: list[tuple[str, list[str]]] = [
            (
                "etl.py arrow",
                [py, str(ETL), "--input-dir", str(data), "--output-dir", f"{tmp}/a", "--engine", "arrow"],
            ),
            (
                "etl.py python",
                [py, str(ETL), "--input-dir", str(data), "--output-dir", f"{tmp}/p", "--engine", "python"],
            ),
            ("pyarrow floor", [py, str(FLOOR), f"{tmp}/floor", *(str(data / n) for n in INPUTS)]),
        ]
        if rows <= baseline_max_rows:
            cases.insert(0, ("seed baseline", [py, str(BASELINE), str(data), f"{tmp}/baseline.csv"]))
        for name, cmd in cases:
            print(f"  {rows:>9,} rows: {name} ...", end="", flush=True)
            seconds, peak = measure(cmd)
            print(f" {seconds:.1f} s, {peak:.0f} MB", flush=True)
            runs.append(Run(rows, name, seconds, peak, input_mb))
            for leftover in Path(tmp).iterdir():  # keep disk use to one output at a time
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return runs


def table(runs: list[Run]) -> str:
    by = {(r.rows, r.name): r for r in runs}
    head = (
        f"{'rows':>10} {'input MB':>9} {'run':<14} {'wall s':>7} {'rows/s':>10} {'MB/s':>6} "
        f"{'peak RSS MB':>11} {'vs baseline':>11} {'vs floor':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        base = by.get((r.rows, "seed baseline"))
        floor = by.get((r.rows, "pyarrow floor"))
        vs_base = f"{r.seconds / base.seconds:.2f}x" if base else "-"
        vs_floor = f"{r.seconds / floor.seconds:.2f}x" if floor else "-"
        lines.append(
            f"{r.rows:>10,} {r.input_mb:>9.0f} {r.name:<14} {r.seconds:>7.1f} {r.rows_per_s:>10,.0f} "
            f"{r.mb_per_s:>6.1f} {r.peak_rss_mb:>11.0f} {vs_base:>11} {vs_floor:>8}"
        )
    return "\n".join(lines)


def verdicts(runs: list[Run], target_rows: int) -> list[str]:
    """The issue's targets, each with the measured figure."""
    by = {(r.rows, r.name): r for r in runs}
    out = []
    base = by.get((target_rows, "seed baseline"))
    if base:
        arrow, python = by[(target_rows, "etl.py arrow")], by[(target_rows, "etl.py python")]
        ratio_a, ratio_p = arrow.seconds / base.seconds, python.seconds / base.seconds
        out.append(
            f"{'PASS' if ratio_a <= 1 / 3 else 'FAIL'} arrow wall time at {target_rows:,} rows is "
            f"{ratio_a:.2f}x the baseline (target <= 0.33x)"
        )
        out.append(
            f"{'PASS' if ratio_p <= 1 else 'FAIL'} python-engine wall time at {target_rows:,} rows is "
            f"{ratio_p:.2f}x the baseline (target <= 1x)"
        )
    for engine in ("etl.py arrow", "etl.py python"):
        peaks = [r.peak_rss_mb for r in runs if r.name == engine]
        first = peaks[0]
        spread = max(abs(p / first - 1) for p in peaks)
        out.append(
            f"{'PASS' if max(peaks) <= 300 else 'FAIL'} {engine} peak RSS at most {max(peaks):.0f} MB "
            f"(target <= 300 MB)"
        )
        out.append(
            f"{'PASS' if spread <= 0.25 else 'FAIL'} {engine} peak RSS within {100 * spread:.0f}% of the "
            f"smallest size's across {len(peaks)} sizes (target +/-25%)"
        )
    base_peaks = [(r.rows, r.peak_rss_mb) for r in runs if r.name == "seed baseline"]
    if base_peaks:
        out.append(
            "     baseline peak RSS: "
            + ", ".join(f"{p:.0f} MB at {n:,}" for n, p in base_peaks)
            + " (grows with the input)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000,5000000", help="comma-separated sizes (total rows)")
    parser.add_argument(
        "--baseline-max-rows",
        type=int,
        default=1_000_000,
        help="skip the seed baseline above this size (it holds everything in memory: ~1.7 GB per 1M rows)",
    )
    parser.add_argument("--target-rows", type=int, default=1_000_000, help="size the speed targets apply to")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",")]
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores; etl.py = {ETL}", flush=True)
    runs: list[Run] = []
    for rows in sizes:
        runs.extend(bench_size(rows, args.baseline_max_rows))
    skipped = [n for n in sizes if n > args.baseline_max_rows]
    print()
    print(table(runs))
    if skipped:
        sizes_text = ", ".join(f"{n:,}" for n in skipped)
        print(
            f"(seed baseline skipped at {sizes_text} rows: it reads everything into memory, "
            "~1.7 GB and ~30 s per million rows here; raise --baseline-max-rows to run it)"
        )
    print()
    for line in verdicts(runs, args.target_rows):
        print(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps([asdict(r) for r in runs], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
