"""ETL benchmark: the ETL bundle against a bare pyarrow read+write and the seed-style pandas ETL.

    .venv/bin/python bench/etl_bench.py [--rows 100000,1000000,5000000] [--data coil,mixed]

Two datasets, each at every size: ``coil``, the seed-layout COIL 2000 files (86 integer columns, two
decoded to labels; the ETL runs with the COIL example's schema), and ``mixed``, one CSV with text,
decimal, date, yes/no, category and integer columns (its schema: bench/mixed_schema.json), both
generated once and cached under build/etl-bench-data/. Every run is a subprocess on the same files;
its wall time is measured around it and its peak RSS is the kernel's (os.wait4 rusage of that child;
this process imports nothing heavy, so the pages a child shares with it before exec stay negligible).
The ETL runs as the pipeline runs it, ``python3 etl.pyz`` (contract.artifact.bundle), in the dev
environment and, when build/etl-compat-venv exists (tests/integration/test_etl_container_compat.py builds it),
under the processing image's versions. The floor is a plain streaming pyarrow read + write of the same
files (bench/etl_floor.py), run in the same session: the ETL's wall time is given as a multiple of it.
Each case runs --repeat times (3): the table shows the medians of wall time and peak RSS.
Prints one table and the targets, and writes bench/results/etl.json (with the "report" key).
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
MIXED = ROOT / "bench" / "etl_mixed.py"
DATA = ROOT / "build" / "etl-bench-data"
IMAGE_PYTHON = ROOT / "build" / "etl-compat-venv" / "bin" / "python"
RESULTS = ROOT / "bench" / "results" / "etl.json"
COMMAND = ".venv/bin/python bench/etl_bench.py"
COIL_SCHEMA = ROOT / "etl" / "examples" / "coil2000" / "schema.json"
MIXED_SCHEMA = ROOT / "bench" / "mixed_schema.json"
FLOOR_RATIO, RSS_LIMIT, RSS_SPREAD = 1.15, 300.0, 0.20  # the targets: x the floor, MB, +/- share


@dataclass
class Run:
    data: str  # coil | mixed
    rows: int
    name: str
    env: str  # dev | image
    seconds: float
    peak_rss_mb: float
    input_mb: float


def dataset(data: str, rows: int) -> Path:
    """The dataset's files with `rows` rows in total, generated once (in a child: this process stays
    small, since a child's peak RSS, ru_maxrss, counts the pages it shared with this process)."""
    folder = DATA / f"{data}-{rows}"
    stamp = folder / ".complete"
    if not stamp.exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {rows:,} {data} rows into {folder} ...", flush=True)
        coil = ["-m", "coilgen", "--layout", "seed", "--seed", "2000"]
        generator = [sys.executable, *(coil if data == "coil" else [str(MIXED)]), "--rows", str(rows)]
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
    data: str, rows: int, baseline_max_rows: int, bundle: Path, pythons: dict[str, str], repeat: int
) -> list[Run]:
    folder = dataset(data, rows)
    inputs = sorted(p for p in folder.iterdir() if p.suffix == ".csv" and p.name != "col_info.csv")
    input_mb = sum(p.stat().st_size for p in inputs) / 1e6
    schema = COIL_SCHEMA if data == "coil" else MIXED_SCHEMA
    runs = []
    # The baseline imports the COIL example's names and labels: from the checkout, in either environment.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="etl-bench-") as tmp:
        etl = [str(bundle), "--schema", str(schema), "--input-dir", str(folder), "--output-dir", f"{tmp}/o"]
        cases: list[tuple[str, str, list[str]]] = [
            ("pyarrow floor", "dev", [pythons["dev"], str(FLOOR), f"{tmp}/floor", *map(str, inputs)])
        ]
        for name, py in pythons.items():
            if data == "coil" and rows <= baseline_max_rows:
                cases.append(("seed baseline", name, [py, str(BASELINE), str(folder), f"{tmp}/baseline.csv"]))
            cases.append(("etl.pyz", name, [py, *etl]))
        for name, env_name, cmd in cases:
            print(f"  {data} {rows:>9,} rows: {name} ({env_name}) ...", end="", flush=True)
            measured = []
            for _ in range(repeat):
                measured.append(measure(cmd, env))
                print(f" {measured[-1][0]:.1f} s {measured[-1][1]:.0f} MB;", end="", flush=True)
                for leftover in Path(tmp).iterdir():  # keep disk use to one output at a time
                    shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
            seconds, peak = (statistics.median(m[i] for m in measured) for i in (0, 1))
            print(f" median {seconds:.1f} s, {peak:.0f} MB", flush=True)
            runs.append(
                Run(data, rows, name, env_name, round(seconds, 3), round(peak, 1), round(input_mb, 1))
            )
    return runs


def table_rows(runs: list[Run]) -> list[list[str | float | int]]:
    by = {(r.data, r.rows, r.name, r.env): r for r in runs}
    rows: list[list[str | float | int]] = []
    for r in runs:
        floor = by.get((r.data, r.rows, "pyarrow floor", "dev"))
        vs = f"{r.seconds / floor.seconds:.2f}x" if floor and r.name != "pyarrow floor" else "-"
        rate = round(r.rows / r.seconds)
        name = f"{r.name} ({r.env})"
        rows.append([r.data, r.rows, r.input_mb, name, round(r.seconds, 1), rate, round(r.peak_rss_mb), vs])
    return rows


def verdicts(runs: list[Run]) -> list[str]:
    """The targets, each with the measured figure, for each dataset and environment."""
    by = {(r.data, r.rows, r.name, r.env): r for r in runs}
    out = []
    for data, env in sorted({(r.data, r.env) for r in runs if r.name == "etl.pyz"}):
        mine = [r for r in runs if (r.data, r.name, r.env) == (data, "etl.pyz", env)]
        for r in mine:
            floor = by[(data, r.rows, "pyarrow floor", "dev")]
            ratio = r.seconds / floor.seconds
            out.append(
                f"{'PASS' if ratio <= FLOOR_RATIO else 'FAIL'} {data} {env}: wall time at {r.rows:,} rows is "
                f"{ratio:.2f}x the pyarrow floor's (target <= {FLOOR_RATIO}x)"
            )
        peaks = [r.peak_rss_mb for r in mine]
        spread = max(abs(p / peaks[0] - 1) for p in peaks)
        verdict = "PASS" if max(peaks) <= RSS_LIMIT else "FAIL"
        out.append(
            f"{verdict} {data} {env}: peak RSS at most {max(peaks):.0f} MB (target <= {RSS_LIMIT:.0f} MB)"
        )
        out.append(
            f"{'PASS' if spread <= RSS_SPREAD else 'FAIL'} {data} {env}: peak RSS within {100 * spread:.0f}% "
            f"of the smallest size's across {len(peaks)} sizes (target +/-{100 * RSS_SPREAD:.0f}%)"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000,5000000", help="comma-separated sizes (total rows)")
    parser.add_argument("--data", default="coil,mixed", help="comma-separated datasets: coil, mixed")
    parser.add_argument(
        "--baseline-max-rows",
        type=int,
        default=1_000_000,
        help="skip the seed baseline above this size (it holds everything in memory: ~1.7 GB per 1M rows)",
    )
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
            f"{args.image_python} missing: build it once with "
            ".venv/bin/pytest tests/integration/test_etl_container_compat.py",
            flush=True,
        )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="etl-bundle-") as tmp:
        (path := Path(tmp) / "etl.pyz").write_bytes(bundle(ROOT / "etl"))
        print(
            f"python {sys.version.split()[0]} on {os.cpu_count()} cores; environments: {pythons}", flush=True
        )
        for data in args.data.split(","):
            for rows in sizes:
                runs.extend(bench_size(data, rows, args.baseline_max_rows, path, pythons, args.repeat))
    rows_table, lines = table_rows(runs), verdicts(runs)
    columns = ["data", "rows", "input MB", "run (environment)", "wall s", "rows/s", "peak RSS MB", "vs floor"]
    print("\n" + " | ".join(columns))
    for row in rows_table:
        print(" | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    print("\n" + "\n".join(lines))
    notes = [
        *lines,
        "floor: a plain streaming pyarrow read + write of the same files (bench/etl_floor.py), in the same "
        "session; coil: the seed layout, COIL example schema; mixed: text, decimal, date, yes/no, category "
        "and integer columns (bench/mixed_schema.json)",
        "dev: this checkout's .venv (Python 3.13, pyarrow 25.0.1); image: build/etl-compat-venv, the "
        "scikit-learn 1.4-2-py312 image's Python 3.12, pandas 2.3.2, pyarrow 17.0.0, numpy 2.1.0 "
        "(docs/etl.md)",
        f"{os.cpu_count()} cores shared with other work: single wall times vary by up to 2x, hence medians",
    ]
    if any(n > args.baseline_max_rows for n in sizes):
        notes.append(
            f"seed baseline skipped above {args.baseline_max_rows:,} rows: it reads everything into memory"
        )
    report = {
        "title": "ETL: speed and memory (COIL seed layout and a mixed-type file)",
        "command": COMMAND,
        "tables": [{"caption": f"Median of {args.repeat} runs", "columns": columns, "rows": rows_table}],
        "notes": notes,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": [asdict(r) for r in runs], "report": report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
