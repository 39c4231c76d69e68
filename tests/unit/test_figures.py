"""docs/benchmarks.md is generated from bench/results/*.json, and is never stale."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_figures() -> ModuleType:
    """bench/ holds scripts, not a package: load the renderer from its file, as `make figures` runs it."""
    spec = importlib.util.spec_from_file_location("bench_figures", ROOT / "bench" / "figures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


figures = _load_figures()


def _report(title: str = "ETL speed", **changes: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "title": title,
        "command": ".venv/bin/python bench/etl_bench.py --rows 1000",
        "tables": [
            {
                "caption": "Wall time against the seed's ETL, same run",
                "columns": ["rows", "run", "wall s", "vs baseline", "target met"],
                "rows": [
                    [1000000, "seed baseline", 35.9, "1.00x", None],
                    [1000000, "etl", None, "0.21x", True],
                ],
            }
        ],
        "notes": ["2 shared cores"],
    }
    report.update(changes)
    return report


def _write(directory: Path, name: str, data: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(data), encoding="utf-8")


def test_docs_benchmarks_md_matches_bench_results() -> None:
    # Given the committed results, when the page is rendered again, then it is what is committed
    expected = figures.render(ROOT / "bench" / "results")
    current = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert current == expected, "docs/benchmarks.md is stale relative to bench/results/: run `make figures`"


def test_a_report_becomes_a_section_with_its_command_tables_and_notes(tmp_path: Path) -> None:
    _write(tmp_path, "etl.json", {"report": _report(), "raw": {"ignored": 1}})

    page = figures.render(tmp_path)

    assert page.startswith(figures.HEADER)
    assert "make figures" in figures.HEADER
    assert "## ETL speed" in page
    assert (
        "Rerun: `.venv/bin/python bench/etl_bench.py --rows 1000` (results: `bench/results/etl.json`)" in page
    )
    assert "**Wall time against the seed's ETL, same run**" in page
    assert "| rows | run | wall s | vs baseline | target met |" in page
    # numeric columns (empty cells allowed) are right-aligned, text and yes/no columns are not
    assert "|---:|---|---:|---|---|" in page
    assert "| 1,000,000 | seed baseline | 35.9 | 1.00x | - |" in page
    assert "| 1,000,000 | etl | - | 0.21x | yes |" in page
    assert "- 2 shared cores" in page
    assert "ignored" not in page


def test_sections_follow_file_names_whatever_order_they_were_written_in(tmp_path: Path) -> None:
    _write(tmp_path / "a", "b.json", {"report": _report("Second")})
    _write(tmp_path / "a", "a.json", {"report": _report("First")})
    _write(tmp_path / "b", "a.json", {"report": _report("First")})
    _write(tmp_path / "b", "b.json", {"report": _report("Second")})

    page = figures.render(tmp_path / "a")

    assert page == figures.render(tmp_path / "b") == figures.render(tmp_path / "a")
    assert page.index("## First") < page.index("## Second")


def test_no_results_yet_renders_a_page_that_says_so(tmp_path: Path) -> None:
    for directory in (tmp_path / "missing", tmp_path):
        page = figures.render(directory)
        assert page == figures.HEADER + "\n" + figures.NO_RESULTS
        assert "make bench" in page


def test_a_pipe_or_line_break_in_a_cell_does_not_break_the_table(tmp_path: Path) -> None:
    table = {"caption": "c", "columns": ["what"], "rows": [["a | b\nc"]]}
    _write(tmp_path, "x.json", {"report": _report(tables=[table])})

    assert "| a \\| b c |" in figures.render(tmp_path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"figures": {}}, 'no top-level "report" object'),
        ({"report": _report(title="")}, '"title" must be a non-empty string'),
        ({"report": {k: v for k, v in _report().items() if k != "command"}}, '"command" must be'),
        ({"report": _report(notes="one note")}, '"notes" must be a list of strings'),
        (
            {"report": _report(tables=[{"caption": "t", "columns": ["a", "b"], "rows": [[1]]}])},
            'table "t": row 1 has 1 cells for 2 columns',
        ),
        (
            {"report": _report(tables=[{"caption": "t", "columns": ["a"], "rows": [[{"x": 1}]]}])},
            "a cell must be a string, a number, a boolean or null",
        ),
    ],
)
def test_a_malformed_report_names_its_file_and_what_is_wrong(
    tmp_path: Path, data: dict[str, Any], message: str
) -> None:
    _write(tmp_path, "broken.json", data)

    with pytest.raises(figures.ReportError) as raised:
        figures.render(tmp_path)

    assert str(raised.value).startswith("bench/results/broken.json: ")
    assert message in str(raised.value)


def test_a_results_file_that_is_not_json_names_itself(tmp_path: Path) -> None:
    (tmp_path / "cut.json").write_text('{"report": {', encoding="utf-8")

    with pytest.raises(figures.ReportError, match=r"bench/results/cut\.json: not valid JSON"):
        figures.render(tmp_path)
