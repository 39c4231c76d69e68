"""Fixtures of the hardening tier (tests/support/hardening.py holds the harness).

``stack``: the upload queue's path in the emulator with injected faults; after each test ``check_promise``
asserts that every upload ran once on its own bytes, was skipped saying why, or waits in the dead-letter
queue, and counts it; the session writes the counts to build/hardening-figures.json. Autouse, for every
test in this directory: ``no_backoff`` (botocore retries without their sleeps).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from botocore.retries.standard import ExponentialBackoff

from local import delivery
from local.emulator import Emulator
from tests.support.hardening import Stack, check_promise, stack_in_emulator, write_figures

COUNTS: defaultdict[str, Counter[str]] = defaultdict(Counter)  # test module (without test_) -> counts


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard retry mode, without its random sleeps (up to 20 s) between attempts."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture
def stack(aws: Emulator, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Given the bucket -> upload queue -> trigger path of the template, and the pipeline, in the emulator."""
    # Only the harness sends to the upload queue, between deliveries: the poller need not wait for more.
    monkeypatch.setattr(delivery, "LONG_POLL_SECONDS", 0)
    with stack_in_emulator(monkeypatch) as harness:
        yield harness
        check_promise(harness, COUNTS[request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")])


@pytest.fixture(scope="session", autouse=True)
def figures() -> Iterator[None]:
    """Writes the suites' counts into build/hardening-figures.json when the session ends."""
    yield
    if COUNTS:
        write_figures(COUNTS)
