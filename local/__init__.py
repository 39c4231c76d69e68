"""local: the whole system on one machine, without AWS or Docker (``python -m local``, :mod:`local.cli`).

:mod:`local.emulator` (moto's server, patched where it differs from AWS), :mod:`local.stack` (the
template deployed into it; the real deploy function answers the custom resources), :mod:`local.lambdas`
(a function's artifact run in a process), :mod:`local.delivery` (the SQS event source mapping),
:mod:`local.runner` (each execution's processing step), :mod:`local.notifications` (what SNS and
CloudWatch would send) and :mod:`local.runtime` (all of it started and stopped as one).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local-runtime"  # gitignored: the state file, logs, build cache, bytecode cache
STATE_FILE = STATE_DIR / "runtime.json"  # a running `up`: endpoint, region, pid, its stacks and outputs
