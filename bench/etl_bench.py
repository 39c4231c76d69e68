"""ETL benchmark: the ETL bundle against the seed-style pandas ETL and the pyarrow read+write floor.

    .venv/bin/python bench/etl_bench.py [--rows 100000,1000000,5000000] [--baseline-max-rows 1000000]

Every run is a subprocess on the same generated seed-layout files (cached under build/etl-bench-data/);
its wall time is measured around it and its peak RSS is the kernel's (os.wait4 rusage of that child;
this process imports nothing heavy, so the pages a child shares with it before exec stay negligible).
The ETL runs as the pipeline runs it, ``python3 etl.pyz`` (contract.artifact.bundle), twice a size: in
the dev environment and under the processing image's versions (build/etl-compat-venv, which
tests/etl/test_container_compat.py builds: Python 3.12, pandas 2.3.2, pyarrow 17.0.0, numpy 2.1.0). The
seed baseline runs in both too; each ETL run is compared with the baseline of its own environment. Each
case runs --repeat times (3): the table shows the medians of wall time and peak RSS.
Prints one table and the issue's targets, and writes bench/results/etl.json (with the "report" key).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "bench" / "etl_baseline.py"
FLOOR = ROOT / "bench" / "etl_floor.py"
DATA = ROOT / "build" / "etl-bench-data"
IMAGE_PYTHON = ROOT / "build" / "etl-compat-venv" / "bin" / "python"
RESULTS = ROOT / "bench" / "results" / "etl.json"
COMMAND = ".venv/bin/python bench/etl_bench.py"
INPUTS = ("train.csv", "test.csv", "gt.csv")
SPEED, RSS_LIMIT, RSS_SPREAD = 0.33, 300.0, 0.20  # the targets: x baseline at 1M rows, MB, +/- share


@dataclass
class Run:
    rows: int
    name: str
    env: str  # dev | image
    seconds: float
    peak_rss_mb: float
    input_mb: float


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
        stamp.write_text("ok\n")  # hidden: the ETL ignores it
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


def bench_size(
    rows: int, baseline_max_rows: int, bundle: Path, pythons: dict[str, str], repeat: int
) -> list[Run]:
    data = dataset(rows)
    input_mb = sum((data / n).stat().st_size for n in INPUTS) / 1e6
    runs = []
    # The baseline imports etl.rules for the names and labels: from the checkout, in either environment.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        cases: list[tuple[str, str, list[str]]] = []
        for name, py in pythons.items():
            if rows <= baseline_max_rows:
                cases.append(("seed baseline", name, [py, str(BASELINE), str(data), f"{tmp}/baseline.csv"]))
            cases.append(
                ("etl.pyz", name, [py, str(bundle), "--input-dir", str(data), "--output-dir", f"{tmp}/o"])
            )
        cases.append(
            (
                "pyarrow floor",
                "dev",
                [pythons["dev"], str(FLOOR), f"{tmp}/floor", *(str(data / n) for n in INPUTS)],
            )
        )
        for name, env_name, cmd in cases:
            print(f"  {rows:>9,} rows: {name} ({env_name}) ...", end="", flush=True)
            measured = []
            for _ in range(repeat):
                measured.append(measure(cmd, env))
                print(f" {measured[-1][0]:.1f} s {measured[-1][1]:.0f} MB;", end="", flush=True)
                for leftover in Path(tmp).iterdir():  # keep disk use to one output at a time
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            seconds, peak = (statistics.median(m[i] for m in measured) for i in (0, 1))
            print(f" median {seconds:.1f} s, {peak:.0f} MB", flush=True)
            runs.append(Run(rows, name, env_name, round(seconds, 3), round(peak, 1), round(input_mb, 1)))
    return runs


def table_rows(runs: list[Run]) -> list[list[str | float | int]]:
    by = {(r.rows, r.name, r.env): r for r in runs}
    rows: list[list[str | float | int]] = []
    for r in runs:
        base = by.get((r.rows, "seed baseline", r.env))
        vs = f"{r.seconds / base.seconds:.2f}x" if base and r.name != "seed baseline" else "-"
        rate = round(r.rows / r.seconds)
        rows.append(
            [r.rows, r.input_mb, f"{r.name} ({r.env})", round(r.seconds, 1), rate, round(r.peak_rss_mb), vs]
        )
    return rows


def verdicts(runs: list[Run], target_rows: int) -> list[str]:
    """The issue's targets, each with the measured figure, for each environment."""
    by = {(r.rows, r.name, r.env): r for r in runs}
    out = []
    for env in sorted({r.env for r in runs if r.name == "etl.pyz"}):
        etl, base = by.get((target_rows, "etl.pyz", env)), by.get((target_rows, "seed baseline", env))
        if etl and base:
            ratio = etl.seconds / base.seconds
            verdict = "PASS" if ratio <= SPEED else "FAIL"
            out.append(
                f"{verdict} {env}: wall time at {target_rows:,} rows is {ratio:.2f}x "
                f"the seed baseline (target <= {SPEED}x)"
            )
        peaks = [r.peak_rss_mb for r in runs if r.name == "etl.pyz" and r.env == env]
        spread = max(abs(p / peaks[0] - 1) for p in peaks)
        verdict = "PASS" if max(peaks) <= RSS_LIMIT else "FAIL"
        out.append(f"{verdict} {env}: peak RSS at most {max(peaks):.0f} MB (target <= {RSS_LIMIT:.0f} MB)")
        out.append(
            f"{'PASS' if spread <= RSS_SPREAD else 'FAIL'} {env}: peak RSS within {100 * spread:.0f}% of the "
            f"smallest size's across {len(peaks)} sizes (target +/-{100 * RSS_SPREAD:.0f}%)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000,5000000", help="comma-separated sizes (total rows)")
    parser.add_argument(
        "--baseline-max-rows",
        type=int,
        default=1_000_000,
        help="skip the seed baseline above this size (it holds everything in memory: ~1.7 GB per 1M rows)",
    )
    parser.add_argument("--target-rows", type=int, default=1_000_000, help="size the speed target applies to")
    parser.add_argument("--image-python", type=Path, default=IMAGE_PYTHON, help="the image versions' Python")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case; the table shows medians")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.rows.split(",")]
    from contract.artifact import bundle  # standard library only: keeps this process small

    pythons = {"dev": sys.executable}
    if args.image_python.exists():
        pythons["image"] = str(args.image_python)
    else:
        print(
            f"{args.image_python} missing: run tests/etl/test_container_compat.py once to build it",
            flush=True,
        )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="etl-bundle-") as tmp:
        (path := Path(tmp) / "etl.pyz").write_bytes(bundle(ROOT / "etl"))
        print(
            f"python {sys.version.split()[0]} on {os.cpu_count()} cores; environments: {pythons}", flush=True
        )
        for rows in sizes:
            runs.extend(bench_size(rows, args.baseline_max_rows, path, pythons, args.repeat))
    rows_table, lines = table_rows(runs), verdicts(runs, args.target_rows)
    columns = ["rows", "input MB", "run (environment)", "wall s", "rows/s", "peak RSS MB", "vs baseline"]
    print("\n" + " | ".join(columns))
    for row in rows_table:
        print(" | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    print("\n" + "\n".join(lines))
    skipped = [n for n in sizes if n > args.baseline_max_rows]
    notes = [
        *lines,
        "dev: this checkout's .venv (Python 3.13); image: build/etl-compat-venv, the scikit-learn "
        "1.4-2-py312 image's Python 3.12, pandas 2.3.2, pyarrow 17.0.0, numpy 2.1.0 (docs/etl.md)",
        f"{os.cpu_count()} cores shared with other work: single wall times vary by up to 2x, hence medians",
    ]
    if skipped:
        notes.append(
            f"seed baseline skipped above {args.baseline_max_rows:,} rows: it reads everything into memory"
        )
    report = {
        "title": "ETL: speed and memory (seed layout)",
        "command": COMMAND,
        "tables": [{"caption": f"Median of {args.repeat} runs", "columns": columns, "rows": rows_table}],
        "notes": notes,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": [asdict(r) for r in runs], "report": report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
