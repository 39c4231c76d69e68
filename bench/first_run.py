"""What a new user's first run costs: a fresh clone's installs, its first `make demo`, and the disk.

    .venv/bin/python bench/first_run.py [--cold] [--no-tools]

Clones this checkout's HEAD into a temporary folder and, there, times each step as a new user meets
it: the dev environment's install (`make .venv/.stamp`), the first `make demo` (which renders the
pipeline definition for the first time), a second `make demo` (the render cached: the baseline the
first one is compared with, in the same run), then the SAM CLI's and checkov's environments (what
`make test` adds; `--no-tools` skips them). Disk is each environment's size as `du` counts it (each
hard-linked file once per environment). `--cold` points uv at an empty cache, so the dev environment's
install includes downloading its wheels; the cache's size is then reported too.

Writes bench/results/first_run.json (first_run_cold.json with --cold), whose "report" goes into
docs/benchmarks.md (`make figures`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"


def _disk_mb(path: Path) -> float:
    """Like `du -s`: allocated blocks, each inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return round(total / 1e6, 1)


def _timed(clone: Path, target: str, env: dict[str, str], log: Path) -> float:
    start = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ make {target}\n")
        out.flush()
        subprocess.run(["make", target], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    return round(time.monotonic() - start, 1)


def measure(cold: bool, tools: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="first-run-") as scratch:
        clone = Path(scratch) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_CACHE_DIR"))}
        if cold:
            env["UV_CACHE_DIR"] = str(Path(scratch) / "uv-cache")
            env["PIP_NO_CACHE_DIR"] = "1"
        log = Path(scratch) / "make.log"
        steps: list[tuple[str, float, Path | None]] = [
            ("dev environment install (`.venv`)", _timed(clone, ".venv/.stamp", env, log), clone / ".venv"),
            ("first `make demo` (renders the definition)", _timed(clone, "demo", env, log), None),
            ("second `make demo` (render cached)", _timed(clone, "demo", env, log), None),
        ]
        if tools:
            for venv in (".venv-sam", ".venv-checkov"):
                steps.append(
                    (
                        f"`{venv}` install (for `make test`)",
                        _timed(clone, f"{venv}/.stamp", env, log),
                        clone / venv,
                    )
                )
        cache = _disk_mb(Path(env["UV_CACHE_DIR"])) if cold else None
        return {
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True, check=True
            ).stdout.strip(),
            "cold_cache": cold,
            "uv_cache_mb": cache,
            "steps": [{"step": s, "wall_s": t, "disk_mb": _disk_mb(p) if p else None} for s, t, p in steps],
            "cores": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
        }


def report(results: dict[str, Any], command: str) -> dict[str, Any]:
    steps = results["steps"]
    second = steps[2]["wall_s"]
    rows = [[s["step"], s["wall_s"], s["disk_mb"]] for s in steps]
    install, first = steps[0]["wall_s"], steps[1]["wall_s"]
    notes = [
        f"uv cache: {'empty at the start (wheels downloaded)' if results['cold_cache'] else 'warm'}"
        + (f"; {results['uv_cache_mb']:,} MB after the dev install" if results["uv_cache_mb"] else ""),
        f"first `make demo` from a fresh clone: {round(install + first, 1)} s in all, of which install "
        f"{install} s; the first demo took {round(first / second, 2)}x the second (the first render)",
        f"commit {results['commit']}; {results['cores']} cores, load average {results['load_average_1m']} "
        "at the end (the machine is shared: wall times are noisy)",
    ]
    return {
        "title": "First run from a fresh clone" + (", empty uv cache" if results["cold_cache"] else ""),
        "command": command,
        "tables": [
            {
                "caption": "Each step as a new user meets it",
                "columns": ["step", "wall s", "disk MB"],
                "rows": rows,
            }
        ],
        "notes": notes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cold", action="store_true", help="start uv from an empty cache (downloads the wheels)"
    )
    parser.add_argument("--no-tools", action="store_true", help="skip the SAM CLI and checkov environments")
    args = parser.parse_args(argv)
    results = measure(args.cold, not args.no_tools)
    command = " ".join([".venv/bin/python bench/first_run.py", *(argv if argv is not None else sys.argv[1:])])
    results["report"] = report(results, command)
    for row in results["report"]["tables"][0]["rows"]:
        print(f"{row[0]:<52} {row[1]:>7} s {'' if row[2] is None else f'{row[2]:>8} MB'}")
    for note in results["report"]["notes"]:
        print(f"- {note}")
    path = RESULTS_DIR / ("first_run_cold.json" if args.cold else "first_run.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
