"""`make invoke EVENT=...`: every sample event through the Docker-free `sam local invoke`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.invoke import InvokeError, LocalInvoke, invoke

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EVENT_FILES = sorted(p for p in (ROOT / "events").glob("*.json") if p.name != "env.json")


def test_there_are_sample_events() -> None:
    assert any(p.name.startswith("cfn-") for p in EVENT_FILES)
    assert any(p.name.startswith("s3-") for p in EVENT_FILES)


@pytest.fixture(scope="module")
def session() -> Iterator[LocalInvoke]:
    """What `python -m local invoke` does for one event, kept for several (the stack is deployed once)."""
    with LocalInvoke() as local_invoke:
        yield local_invoke


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=[p.stem for p in EVENT_FILES])
def test_each_sample_event_invokes_its_function_and_prints_the_return_value(
    session: LocalInvoke, event_file: Path
) -> None:
    # Given a sample event, When it is invoked locally
    out, err = io.StringIO(), io.StringIO()
    status = session.invoke(event_file, out=out, err=err)

    # Then the handler returned (exit status 0) and its return value is printed as JSON
    assert status == 0, err.getvalue()[-3000:]
    result = json.loads(out.getvalue())
    log = err.getvalue()
    assert "REPORT RequestId:" in log
    if event_file.name.startswith("cfn-"):
        # a custom resource handler returns nothing; what matters is its answer to CloudFormation
        assert result is None
        assert 'CloudFormation response: {"Status": "SUCCESS"' in log
    elif all(
        "messageId" in r for r in json.loads(event_file.read_text(encoding="utf-8")).get("Records", [{}])
    ):
        # an event source mapping's batch: every record handled or skipped, none left to retry
        assert result == {"batchItemFailures": []}
    else:
        assert set(result) == {"started", "skipped"}
        assert len(result["started"]) + len(result["skipped"]) >= 1


def test_the_command_line_prints_the_log_on_stderr_and_the_result_on_stdout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local", "invoke", "events/s3-put.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    # (the sample's object is put into the fresh local bucket first, so the replayed event starts its run)
    [started] = json.loads(result.stdout)["started"]
    assert started["key"] == "raw/coil2000/Caravan.csv"
    assert started["executionArn"]
    assert "put raw/coil2000/Caravan.csv" in result.stderr
    assert "REPORT RequestId:" in result.stderr
    assert '"level":' in result.stderr  # the function's own (Powertools) log lines


def test_an_event_for_an_unknown_function_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvokeError, match="no function NoSuchFunction"):
        invoke(EVENT_FILES[0], function="NoSuchFunction", out=io.StringIO(), err=io.StringIO())


def test_an_unreadable_event_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")

    with pytest.raises(InvokeError, match="is not valid JSON"):
        invoke(broken, out=io.StringIO(), err=io.StringIO())
