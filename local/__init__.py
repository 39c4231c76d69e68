"""local: the whole system on one machine, without AWS or Docker (docs/local-runtime.md)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".local-runtime"  # gitignored: the state file, logs, build cache, bytecode cache
STATE_FILE = STATE_DIR / "runtime.json"  # a running `up`: endpoint, region, pid, its stacks and outputs
