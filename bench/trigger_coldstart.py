"""Cold start of the trigger as shipped: importing its handler from the built artifact vs ``import boto3``.

Target (issue 8, item 7): ``import trigger.handler`` costs at most 1.3x ``import boto3``.

The artifact is measured exactly as ``sam build`` made it (``.aws-sam/build/TriggerFunction``, with the
bytecode its Makefile compiled), and nothing is compiled here: each sample is a fresh interpreter with
``PYTHONDONTWRITEBYTECODE=1`` and ``-B`` (as on Lambda's read-only ``/var/task``, where nothing can be
written), no site-packages (``-S``), and a path of the artifact plus what the Lambda runtime provides
(boto3 and its dependencies, linked from this environment, compiled as the runtime ships them). The
statements alternate within each repetition so machine load hits them alike; medians are compared.
For information, the same artifact without its bytecode (what shipped before) is measured too.

Run: ``make build && .venv/bin/python bench/trigger_coldstart.py [--reps N]`` (writes
``bench/results/coldstart.json``). Exit status 1 if over the target, 2 if the artifact is missing.
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
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / ".aws-sam" / "build" / "TriggerFunction"
RESULTS = ROOT / "bench" / "results" / "coldstart.json"
COMMAND = "make build && .venv/bin/python bench/trigger_coldstart.py"
TARGET = 1.3
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
TIMED = (
    "import sys; sys.path[:0] = {path!r}; import time; t = time.perf_counter(); {stmt}; "
    "print(time.perf_counter() - t)"
)
ENV = {
    "PIPELINE_NAME": "s3-sagemaker-trigger",
    "RAW_PREFIX": "raw/",
    "CLEAN_PREFIX": "clean/",
    "TRIGGER_MODE": "object",
    "POWERTOOLS_SERVICE_NAME": "s3-sagemaker-trigger",
    "POWERTOOLS_METRICS_NAMESPACE": "S3SageMakerTrigger",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def sample(stmt: str, path: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(seconds the import took inside the child, seconds the whole child process took)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-S", "-B", "-c", TIMED.format(path=path, stmt=stmt)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    return float(out.stdout.strip().splitlines()[-1]), wall


def bytecode_count(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.pyc"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=31, help="samples per statement (default 31)")
    args = parser.parse_args()
    if not (ARTIFACT / "trigger" / "handler.py").is_file():
        print(f"{ARTIFACT.relative_to(ROOT)} not found: run `make build` first", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="trigger-coldstart-") as scratch:
        runtime = Path(scratch) / "runtime"
        runtime.mkdir()
        site = Path(boto3.__file__).resolve().parent.parent
        for name in RUNTIME_PACKAGES:
            (runtime / name).symlink_to(site / name)
        source_only = Path(scratch) / "source-only"
        shutil.copytree(ARTIFACT, source_only, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        cases = {
            "boto3": ("import boto3", [str(runtime)]),
            "handler": ("import trigger.handler", [str(ARTIFACT), str(runtime)]),
            "source-only": ("import trigger.handler", [str(source_only), str(runtime)]),
        }
        dropped = {"AWS_ENDPOINT_URL", "AWS_PROFILE", "PYTHONPATH", "PYTHONPYCACHEPREFIX"}
        env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("AWS_")}
        env.update(ENV)
        for stmt, path in cases.values():  # warm-up: the page cache (nothing is compiled: -B)
            sample(stmt, path, env)
        imports: dict[str, list[float]] = {name: [] for name in cases}
        walls: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else reversed(names):
                inside, wall = sample(*cases[name], env)
                imports[name].append(inside)
                walls[name].append(wall)
        shipped_pyc = bytecode_count(ARTIFACT)

    med = {name: statistics.median(values) * 1000 for name, values in imports.items()}
    wall = {name: statistics.median(values) * 1000 for name, values in walls.items()}
    ratio = med["handler"] / med["boto3"]
    source_ratio = med["source-only"] / med["boto3"]
    wall_ratio = wall["handler"] / wall["boto3"]
    version = sys.version.split()[0]
    labels = {
        "boto3": "import boto3 (the runtime's, compiled)",
        "handler": "import trigger.handler (artifact as built)",
        "source-only": "import trigger.handler (artifact without bytecode)",
    }
    print(f"trigger cold start: {args.reps} fresh interpreters per statement, medians, python {version}")
    print(f"  artifact {ARTIFACT.relative_to(ROOT)}: {shipped_pyc} .pyc files")
    print(f"  {'statement':<52} {'import ms':>9} {'process ms':>10} {'ratio':>6}")
    for name in cases:
        print(f"  {labels[name]:<52} {med[name]:>9.1f} {wall[name]:>10.1f} {med[name] / med['boto3']:>5.2f}x")
    print(f"  import ratio as built: {ratio:.2f}x (target <= {TARGET}x); process ratio {wall_ratio:.2f}x")
    ok = ratio <= TARGET
    print("PASS" if ok else "FAIL")

    report = {
        "title": "Trigger cold start, as shipped",
        "command": COMMAND,
        "tables": [
            {
                "caption": (
                    f"Importing the trigger's handler from the sam build artifact vs a bare import boto3: "
                    f"medians of {args.reps} fresh Python {version} interpreters each, bytecode writing off"
                ),
                "columns": ["statement", "import ms", "process ms", "ratio to import boto3"],
                "rows": [
                    [labels[n], round(med[n], 1), round(wall[n], 1), round(med[n] / med["boto3"], 2)]
                    for n in cases
                ],
            }
        ],
        "notes": [
            f"Goal: import ratio as built <= {TARGET}x; measured {ratio:.2f}x ({'met' if ok else 'missed'}).",
            f"The artifact ships {shipped_pyc} .pyc files (compiled by python3.13 with "
            "--invalidation-mode unchecked-hash in functions/trigger/Makefile); without them the import "
            f"takes {source_ratio:.2f}x.",
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"report": report, "ratio": round(ratio, 3)}, indent=2) + "\n", encoding="utf-8"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
