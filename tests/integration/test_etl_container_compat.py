"""The ETL bundle runs unmodified under the processing image's versions and writes the same bytes as here.

The pipeline's processing image is the SageMaker scikit-learn image, framework version 1.4-2-py312
(pipeline.SKLEARN_FRAMEWORK_VERSION). Its public build files, branch release-1.4-2-py312 of
github.com/aws/sagemaker-scikit-learn-container (docs/etl.md, "The processing image"):
- docker/1.4-2-py312/base/Dockerfile.cpu: ARG PYTHON_VERSION=3.12 (python3.12 from deadsnakes on Ubuntu
  24.04), then ``uv pip install numpy==2.1.0 scikit-learn==1.4.2 pyarrow==17.0.0``;
- requirements.txt (installed by docker/1.4-2-py312/final/Dockerfile.cpu): numpy==2.1.0, pandas==2.3.2,
  pyarrow==17.0.0.
This test builds (once, cached in build/etl-compat-venv/) a venv with pyenv's Python 3.12 and those
packages from PyPI, and compares its runs of the bundle with this interpreter's.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from coilgen import ROW_FAULTS

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "build" / "etl-compat-venv"
IMAGE = {"python": "3.12", "pandas": "2.3.2", "numpy": "2.1.0", "pyarrow": "17.0.0"}

pytestmark = pytest.mark.slow

SEED_ETL = """
import sys
import pandas as pd
from pathlib import Path
raw, out = Path(sys.argv[1]), sys.argv[2]
codes, names, l0, l2 = __import__("json").loads(Path(sys.argv[3]).read_text())
train, test, gt = (pd.read_csv(raw / n) for n in ("train.csv", "test.csv", "gt.csv"))
train.columns = codes; test.columns = codes[:85]; gt.columns = ["CARAVAN"]
full = pd.concat([train, pd.concat([test, gt], axis=1)], ignore_index=True)
full = full.rename(columns=dict(zip(codes, names)))
full = full.replace({names[0]: dict(enumerate(l0, 1)), names[4]: dict(enumerate(l2, 1))})
full.to_csv(out, index=False)
"""


def image_python() -> Path:
    """The venv's interpreter, built on first use."""
    python = VENV / "bin" / "python"
    stamp = VENV / "image-versions.json"
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == IMAGE:
        return python
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    if shutil.which("pyenv"):
        pyenv_root = Path(
            subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        )
    candidates = sorted(pyenv_root.glob(f"versions/{IMAGE['python']}.*/bin/python{IMAGE['python']}"))
    if not candidates:
        pytest.skip(
            f"no Python {IMAGE['python']} under {pyenv_root}/versions (pyenv install {IMAGE['python']})"
        )
    building = VENV.with_name(VENV.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run([str(candidates[-1]), "-m", "venv", str(building)], check=True)
    packages = [f"{name}=={IMAGE[name]}" for name in ("pandas", "numpy", "pyarrow")]
    subprocess.run(
        [
            str(building / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            *packages,
        ],
        check=True,
        timeout=900,
    )
    (building / "image-versions.json").write_text(json.dumps(IMAGE))
    shutil.rmtree(VENV, ignore_errors=True)
    building.rename(VENV)  # bin/python is a symlink to pyenv's, so the renamed venv still works
    return python


@pytest.fixture(scope="module")
def old_python() -> Path:
    python = image_python()
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "import sys, pandas, numpy, pyarrow; "
            "print(*sys.version_info[:2], pandas.__version__, numpy.__version__, pyarrow.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert versions == [*IMAGE["python"].split("."), IMAGE["pandas"], IMAGE["numpy"], IMAGE["pyarrow"]]
    return python


CASES = {
    "uci with faults": {
        "layout": "uci",
        "rows": 6000,
        "seed": 31,
        "faults": list(ROW_FAULTS),
        "fault_rate": 0.002,
    },
    "seed gzip crlf": {
        "layout": "seed",
        "rows": 4000,
        "seed": 32,
        "gzip": True,
        "crlf": True,
        "trailing_blanks": True,
    },
    "named": {"layout": "named", "rows": 3000, "seed": 33, "faults": ["bad-values"], "fault_rate": 0.003},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_image_python_writes_the_same_outputs(case, old_python, dataset, tmp_path, run_etl):
    """Given generated data
    When the bundle runs under the image's Python 3.12 + pandas 2.3.2 + pyarrow 17.0.0 + numpy 2.1.0
    and under this environment's
    Then full_data.csv and rejects.csv are byte-identical and the report totals agree"""
    data = dataset(**CASES[case])
    here, image = tmp_path / "here", tmp_path / "image"
    assert (done := run_etl(data.out_dir, here)).returncode == 0, done.stderr
    assert (done := run_etl(data.out_dir, image, python=str(old_python))).returncode == 0, done.stderr
    for output in ("full_data.csv", "rejects.csv"):
        assert (image / output).read_bytes() == (here / output).read_bytes(), output
    assert (
        json.loads((image / "report.json").read_text())["totals"]
        == json.loads((here / "report.json").read_text())["totals"]
    )


def test_the_output_holds_the_seed_etl_run_with_the_image_pandas(old_python, dataset, tmp_path, run_etl):
    """Given the seed's CSVs
    When the seed's pandas ETL runs under the image's pandas and the bundle under the image's Python
    Then both full_data.csv files have the same header line and, read as CSV, the same rows and values"""
    from coilgen.dictionary import CODES, COIL  # the COIL example's codes, names and labels

    data = dataset(layout="seed", rows=9822, seed=2000)
    labels = [f.labels.to_pylist() for f in COIL.fields if f.labels is not None]  # L0 and L2, codes 1...
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps([list(CODES), COIL.names, *labels]))
    script = tmp_path / "seed_etl.py"
    script.write_text(SEED_ETL)
    subprocess.run(
        [str(old_python), str(script), str(data.out_dir), str(tmp_path / "seed.csv"), str(schema)],
        check=True,
        timeout=120,
    )
    assert run_etl(data.out_dir, tmp_path / "ours", python=str(old_python)).returncode == 0
    ours, seed = (tmp_path / "ours" / "full_data.csv").read_text(), (tmp_path / "seed.csv").read_text()
    assert ours.split("\n", 1)[0] == seed.split("\n", 1)[0]
    assert list(csv.reader(io.StringIO(ours))) == list(csv.reader(io.StringIO(seed)))
