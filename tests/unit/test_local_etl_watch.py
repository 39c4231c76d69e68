"""`make up` and a changed ETL: the running stack keeps the bundle it deployed, and says so."""

from __future__ import annotations

from typing import Any

from local import cli


class Lines:
    """Stands in for local.cli.Progress: records what would be printed."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.lines: list[str] = []

    def event(self, kind: str, details: dict[str, Any]) -> None:
        self.events.append(kind)

    def line(self, tag: str, text: str) -> None:
        self.lines.append(f"{tag}: {text}")


def test_an_execution_after_the_etl_changed_says_a_restart_deploys_it(monkeypatch):
    """Given `make up` started with one ETL bundle
    When executions start before and after etl/ (or its schema) changes, and after it is changed back
    Then the first says nothing more, the next says the run uses the deployed ETL and a restart deploys
    the change (once), and going back is said too"""
    digests = iter(["a", "a", "b", "b", "a"])
    monkeypatch.setattr(cli.EtlWatch, "digest", staticmethod(lambda: next(digests)))
    progress = Lines()
    watch = cli.EtlWatch(progress)  # type: ignore[arg-type]
    for _ in range(4):
        watch("execution-started", {"arn": "x"})
    assert progress.events == ["execution-started"] * 4
    assert progress.lines == [
        "etl: etl/ changed since `make up` started, and this run uses the ETL deployed then",
        "etl: restart `make up` (Ctrl-C, then make up) to deploy the change",
        "etl: etl/ is back to the deployed ETL",
    ]
