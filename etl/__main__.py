"""``python -m etl ...`` (and ``python3 etl.pyz ...``, the bundle the pipeline ships): see etl.cli.

pyarrow imports pandas (0.5-0.8 s) on its first ``pa.array``, ``pa.scalar`` or Python value given to a
compute function, only to recognise pandas objects. The ETL passes none, so the program refuses that
import: pyarrow then carries on without pandas (pyarrow offers no setting for this)."""

import sys
from importlib.abc import MetaPathFinder


class NoPandas(MetaPathFinder):
    def find_spec(self, name: str, *_: object) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not used by the ETL", name=name)


sys.meta_path.insert(0, NoPandas())
from etl.cli import main  # noqa: E402

raise SystemExit(main())
