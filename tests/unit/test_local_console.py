"""The local runtime's console output: tables fit a 120-column terminal."""

from __future__ import annotations

import pytest

from local.cli import main
from local.console import TERMINAL_WIDTH, table


def test_a_table_of_long_cells_is_narrowed_to_fit_the_terminal() -> None:
    # Given rows with long S3 URLs and failure reasons
    long_url = "s3://coil-demo-object-databucket-203417e344eb/clean/demo/Caravan.csv/0000000000000001/"
    rows = [["a1b2c3d4e5f6", "Failed", long_url, "ResourceLimitExceeded: " + "x" * 80]] * 3

    # When they are printed as a table
    lines = table(["execution", "status", "output", "failure reason"], rows).splitlines()

    # Then every line fits, the short columns are whole and the long ones are cut with an ellipsis
    assert max(len(line) for line in lines) <= TERMINAL_WIDTH
    assert lines[2].startswith("a1b2c3d4e5f6  Failed  ")
    assert "…" in lines[2]


def test_a_narrow_table_is_left_as_it_is() -> None:
    lines = table(["a", "b"], [["1", "two"]]).splitlines()
    assert lines == ["a  b", "-  ---", "1  two"]


def test_a_quota_below_one_is_refused_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--max-processing-instances", "-1"]) == 2
    assert "max_processing_instances must be at least 1 (got -1)" in capsys.readouterr().err


def test_a_time_scale_that_is_not_a_positive_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["up", "--time-scale", "0"])
    assert "--time-scale: must be positive" in capsys.readouterr().err
