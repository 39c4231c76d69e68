"""Cold start of the trigger: importing its handler module vs a bare ``import boto3``, in one run.

Target (issue 2 section 4): ``import trigger.handler`` costs at most 1.3x ``import boto3``.

Each sample is a fresh interpreter (``python -c``) that times its own import with ``perf_counter``;
the two statements alternate within each repetition so machine load hits both alike, and the medians
are compared. The parent also records each subprocess's wall time (interpreter start included).
Bytecode is compiled once into a temporary ``PYTHONPYCACHEPREFIX`` first, as a Lambda artifact ships
.pyc files; nothing is written into the source tree.

Run: ``.venv/bin/python bench/trigger_coldstart.py [--reps N]``. Exit status 1 if over the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 1.3
TIMED = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
CASES = {
    "boto3": "import boto3",
    "handler": "import trigger.handler",
    # For information: what the first invocation pays on top, once (the client is made lazily).
    "handler+client": "import trigger.handler; trigger.handler.sagemaker_client()",
}
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
}


def sample(stmt: str, env: dict[str, str]) -> tuple[float, float]:
    """(seconds the import took inside the child, seconds the whole child process took)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", TIMED.format(stmt=stmt)], env=env, check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    return float(out.stdout.strip().splitlines()[-1]), wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=31, help="samples per statement (default 31)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="trigger-coldstart-pyc-") as pycache:
        dropped = {"PYTHONDONTWRITEBYTECODE", "AWS_ENDPOINT_URL", "AWS_PROFILE"}
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(ENV, PYTHONPYCACHEPREFIX=pycache)
        for stmt in CASES.values():  # warm-up: compile bytecode, warm the page cache
            sample(stmt, env)
        imports: dict[str, list[float]] = {name: [] for name in CASES}
        walls: dict[str, list[float]] = {name: [] for name in CASES}
        names = list(CASES)
        for rep in range(args.reps):
            for name in names if rep % 2 == 0 else reversed(names):
                inside, wall = sample(CASES[name], env)
                imports[name].append(inside)
                walls[name].append(wall)

    med = {name: statistics.median(values) * 1000 for name, values in imports.items()}
    wall = {name: statistics.median(values) * 1000 for name, values in walls.items()}
    ratio = med["handler"] / med["boto3"]
    wall_ratio = wall["handler"] / wall["boto3"]
    version = sys.version.split()[0]
    print(f"trigger cold start: {args.reps} fresh interpreters per statement, medians, python {version}")
    print(f"  {'statement':<62} {'import ms':>9} {'process ms':>10}")
    for name, stmt in CASES.items():
        print(f"  {stmt:<62} {med[name]:>9.1f} {wall[name]:>10.1f}")
    print(f"  import ratio  trigger.handler / boto3: {ratio:.2f}x (target <= {TARGET}x)")
    print(f"  process ratio trigger.handler / boto3: {wall_ratio:.2f}x")
    extra = med["handler+client"] - med["handler"]
    at_import = med["handler+client"] / med["boto3"]
    print(f"  first invocation adds the client, once: +{extra:.0f} ms (made at import: {at_import:.2f}x)")
    ok = ratio <= TARGET
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
