"""``python -m etl ...`` (and ``python3 etl.pyz ...``, the bundle the pipeline ships): see etl.cli."""

from etl.cli import main

raise SystemExit(main())
