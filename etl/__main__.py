"""``python -m etl ...`` (and ``python3 etl.pyz ...``, the bundle the pipeline ships): see etl.cli."""

import sys
from importlib.abc import MetaPathFinder


class NoPandas(MetaPathFinder):
    """pyarrow imports pandas (0.5-0.8 s) at the first array or scalar it builds from Python values, only to
    recognise pandas objects, and has no setting against it; the ETL passes none, so pandas is refused."""

    def find_spec(self, name: str, *_: object) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("the ETL does not use pandas", name=name)


sys.meta_path.insert(0, NoPandas())
from etl.cli import main  # noqa: E402

raise SystemExit(main())
