"""``python -m etl ...`` (and ``python3 etl.pyz ...``, the bundle the pipeline ships): see etl.cli."""

import sys

from etl.cli import main

sys.exit(main())
