"""s3sm's tables (ops.text): as wide as the terminal (100 columns when not on one), a failure reason
never cut: it wraps, whole, and never loses its middle to an ellipsis."""

from __future__ import annotations

import os

import pytest

from ops.status import Execution, Queues, render
from ops.target import Target
from ops.text import table, terminal_width

# The example: the table used to show "binary co…the data dictionary, exit code: 1".
REASON = (
    "AlgorithmError: etl: error: garbage.csv: binary content (NUL bytes), not CSV text: upload the "
    "file as CSV with the columns of the data dictionary, exit code: 1"
)


def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)

    def not_a_terminal(fd: int = 1) -> os.terminal_size:
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", not_a_terminal)


def test_a_table_is_100_columns_wide_when_stdout_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given output to a file or a pipe
    no_terminal(monkeypatch)

    # When a table with a long key is drawn
    lines = table(["KEY", "STATUS"], [["raw/" + "k" * 200 + "/Caravan.csv", "Failed"]], shrink=[0])

    # Then it is 100 columns wide, the key shortened in the middle (its file name kept)
    assert terminal_width() == 100
    assert max(len(line) for line in lines) == 100
    assert lines[2].split()[0].endswith("/Caravan.csv")


def test_a_table_follows_the_terminals_width(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a terminal 132 columns wide
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr(os, "get_terminal_size", lambda fd=1: os.terminal_size((132, 40)))

    # When a wide table is drawn, Then it uses the 132 columns
    lines = table(["KEY", "STATUS"], [["k" * 300, "Failed"]], shrink=[0])
    assert max(len(line) for line in lines) == 132


def test_a_long_failure_reason_wraps_whole_in_its_column() -> None:
    # Given a table whose last column is a failure reason longer than the width allows
    headers = ["EXECUTION", "STATUS", "FAILURE REASON"]
    rows = [["0vyqs9uclwn6", "Failed", REASON], ["5ucc33d000bb", "Succeeded", "-"]]

    # When it is drawn 80 columns wide
    lines = table(headers, rows, width=80, wrap_columns=[2])

    # Then every line fits, nothing is cut, and the reason reads whole, in order, in its column
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "\n".join(lines)
    start = lines[2].index(REASON[:14])
    failed = [line for line in lines[2:] if not line.startswith("5ucc33d000bb")]
    assert len(failed) > 1  # it wrapped
    assert " ".join(line[start:] for line in failed) == REASON
    assert lines[-1].startswith("5ucc33d000bb")  # the next row follows the wrapped one


def test_status_wraps_a_long_failure_reason_instead_of_cutting_its_middle() -> None:
    # Given a failed execution whose reason is longer than a line
    target = Target("prod", "eu-west-1", {"PipelineName": "p", "DataBucketName": "b"})
    execution = Execution(
        "f41l3d0000aa",
        "arn",
        "Failed",
        "s3://b/raw/garbage.csv",
        None,
        "CleanData",
        REASON,
        None,
        12.0,
        None,
        None,
    )

    # When status renders it 60 columns wide
    lines = render(target, [execution], Queues(0, 0, None, 0), width=60).splitlines()

    # Then the reason is under its row, whole, over several lines of at most 60 columns
    first = next(i for i, line in enumerate(lines) if line.startswith("  -> CleanData: "))
    reason_lines = lines[first : first + next(i for i, line in enumerate(lines[first:]) if not line)]
    assert len(reason_lines) > 1
    assert max(len(line) for line in lines if not line.startswith("in full: ")) <= 60  # commands: whole
    assert " ".join(line.strip() for line in reason_lines) == f"-> CleanData: {REASON}"
