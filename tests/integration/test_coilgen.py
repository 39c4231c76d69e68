"""The test-data generator: every layout, real domains, deterministic, faults where it says."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from coilgen import LAYOUTS, generate
from coilgen.dictionary import COIL


def digest(folder):
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_same_seed_writes_the_same_bytes(tmp_path, layout):
    """Given two runs with the same seed (and a third with another)
    Then the first two folders are byte-identical, gzip included, and the third differs"""
    a = generate(tmp_path / "a", layout=layout, rows=700, seed=5, gzip=True, faults=["bad-values"])
    b = generate(tmp_path / "b", layout=layout, rows=700, seed=5, gzip=True, faults=["bad-values"])
    c = generate(tmp_path / "c", layout=layout, rows=700, seed=6, gzip=True, faults=["bad-values"])
    assert digest(a.out_dir) == digest(b.out_dir)
    assert digest(a.out_dir) != digest(c.out_dir)


def test_values_stay_in_their_domains_and_about_six_percent_are_targets(tmp_path):
    """Given 20,000 generated UCI rows
    Then every value is inside its column's domain, and the target is 1 for about 6% of rows"""
    data = generate(tmp_path, layout="uci", rows=20000, seed=1)
    train = np.loadtxt(tmp_path / "ticdata2000.txt", dtype=np.int64, delimiter="\t")
    evals = np.loadtxt(tmp_path / "ticeval2000.txt", dtype=np.int64, delimiter="\t")
    targets = np.loadtxt(tmp_path / "tictgts2000.txt", dtype=np.int64)
    assert train.shape == (data.labelled_rows, 86)
    assert evals.shape == (data.eval_rows, 85)
    values = np.vstack([train, np.column_stack([evals, targets])])
    domains = [
        f.categories.to_pylist() if f.categories is not None else [f.c["minimum"], f.c["maximum"]]
        for f in COIL.fields
    ]
    lo = np.array([min(d) for d in domains])
    hi = np.array([max(d) for d in domains])
    assert ((values >= lo) & (values <= hi)).all()
    assert 0.045 < values[:, 85].mean() < 0.075
    assert (values[:, 0] == 14).sum() == 0  # like the real data, subtype 14 never occurs
    counts, contributions = values[:, 64:85], values[:, 43:64]
    assert ((counts > 0) == (contributions > 0)).all()


@pytest.mark.parametrize(("rows", "train", "evals"), [(9822, 5822, 4000), (1000, 593, 407), (0, 0, 0)])
def test_uci_and_seed_rows_split_like_the_real_files(tmp_path, rows, train, evals):
    data = generate(tmp_path, layout="seed", rows=rows, seed=0)
    assert (data.labelled_rows, data.eval_rows) == (train, evals)
    assert (tmp_path / "train.csv").read_bytes().count(b"\n") == 1 + train
    assert (tmp_path / "gt.csv").read_bytes().count(b"\n") == 1 + evals


def test_the_cli_writes_a_layout_and_prints_its_manifest(tmp_path):
    """Given `python -m coilgen --layout named --rows 120 --seed 3 --out DIR --fault wrong-columns`
    Then DIR/Caravan.csv has a header and 120 rows, and stdout is a JSON manifest naming the faulty lines"""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "coilgen",
            "--layout",
            "named",
            "--rows",
            "120",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--fault",
            "wrong-columns",
            "--fault-rate",
            "0.05",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    manifest = json.loads(result.stdout)
    assert manifest["rows"] == 120
    lines = (tmp_path / "Caravan.csv").read_text().splitlines()
    assert len(lines) == 121
    assert lines[0].endswith(",ABYSTAND,Purchase")
    faulty = manifest["files"]["Caravan.csv"]["fault_lines"]["wrong-columns"]
    assert faulty
    assert all(lines[n - 1].count(",") > 85 for n in faulty)
    assert all(line.count(",") == 85 for i, line in enumerate(lines, 1) if i not in faulty)


def test_unknown_layouts_and_faults_are_refused(tmp_path):
    with pytest.raises(ValueError, match="layout must be one of"):
        generate(tmp_path, layout="parquet")
    with pytest.raises(ValueError, match="unknown fault kinds"):
        generate(tmp_path, faults=["typos"])
