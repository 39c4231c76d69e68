"""Fixtures of the unit tier: its guard (no network, no process; tests/support/unit_guard.py), and the
operator CLI's stubbed clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ops.target import Target
from tests.support.ops import OUTPUTS, REGION, Stubs
from tests.support.unit_guard import GUARDED, Guard


@pytest.fixture(autouse=True)
def unit_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[Guard]:
    guard = Guard()
    for owner, name in GUARDED:
        if hasattr(owner, name):
            monkeypatch.setattr(owner, name, guard.refuse(f"{getattr(owner, '__name__', owner)}.{name}"))
    yield guard
    if guard.attempts:
        pytest.fail("\n".join(guard.attempts), pytrace=False)


@pytest.fixture
def stubs() -> Iterator[Stubs]:
    found = Stubs()
    yield found
    found.verify()


@pytest.fixture
def target(stubs: Stubs) -> Target:
    return Target("prod", REGION, OUTPUTS, session=stubs)
