"""python -m coilgen --layout uci|seed|named --rows N --seed S --out DIR [--gzip] [--fault KIND ...]"""

from __future__ import annotations

import argparse
import json
import sys

from coilgen.generate import FAULTS, LAYOUTS, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m coilgen",
        description="Write generated COIL 2000 data (never the real rows) in one of the raw layouts.",
    )
    parser.add_argument("--layout", choices=LAYOUTS, default="seed")
    parser.add_argument("--rows", type=int, default=9822, help="data rows in total (default: the real 9822)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder to write into (created if missing)")
    parser.add_argument("--gzip", action="store_true", help="gzip every file (name + .gz)")
    parser.add_argument("--fault", action="append", choices=FAULTS, default=[], help="inject a fault kind")
    parser.add_argument("--fault-rate", type=float, default=0.005, help="share of rows a row fault hits")
    parser.add_argument("--crlf", action="store_true", help="CRLF line ends")
    parser.add_argument(
        "--trailing-blanks", action="store_true", help="blanks at line ends, blank lines at the end"
    )
    parser.add_argument("--no-dictionary", action="store_true", help="leave out the data dictionary file")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    result = generate(
        args.out,
        layout=args.layout,
        rows=args.rows,
        seed=args.seed,
        gzip=args.gzip,
        faults=tuple(args.fault),
        fault_rate=args.fault_rate,
        crlf=args.crlf,
        trailing_blanks=args.trailing_blanks,
        dictionary=not args.no_dictionary,
    )
    json.dump(result.as_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
