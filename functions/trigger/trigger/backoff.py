"""How long an upload that SageMaker refused for now waits before its next attempt, and for how many.

The one rule, in one place (the template's ``maxReceiveCount`` is checked against it by
``tests/unit/test_template.py``): the n-th receive of a message that failed for a passing reason (n is SQS's
``ApproximateReceiveCount``) hides it for

    ceiling(n) = min(cap, base * 2 ** (n - 1))       seconds, jittered into [ceiling(n) / 2, ceiling(n)]

("equal jitter": uploads refused together spread out, and every wait is at least half its ceiling, so
the total wait has a floor). The queue's redrive policy moves a message to the dead-letter queue on
the receive after its ``maxReceiveCount``-th, so it has waited at least ``minimum_total_wait(M)``
first; :func:`max_receive_count` is the smallest M whose floor reaches :data:`RETRY_WINDOW_SECONDS`
(24 h, EventBridge's own retry window).

The cap: ``ChangeMessageVisibility`` refuses a timeout that would keep the message hidden more than
12 hours *counted from when it was received*, not from the call. The trigger calls it some time after
the receive (the event source mapping's batching window, at most 300 s, then up to the function's
timeout, at most 900 s), so a cap of 43,200 s would always be refused. :data:`MAX_CAP_SECONDS` leaves
:data:`RECEIVE_ALLOWANCE_SECONDS` (one hour, more than those 1,200 s) for that, and the configuration
refuses a larger ``BACKOFF_CAP_SECONDS``.

SQS and Lambda provide the queue, the visibility timeout and the redrive; what nothing provides is the
choice of the timeout from the receive count, which is all this module does.
"""

from __future__ import annotations

import random
from collections.abc import Callable

DEFAULT_BASE_SECONDS = 30
DEFAULT_CAP_SECONDS = 600
RETRY_WINDOW_SECONDS = 24 * 60 * 60
MAX_VISIBILITY_TIMEOUT = 12 * 60 * 60  # SQS's limit for ChangeMessageVisibility, from the receive
RECEIVE_ALLOWANCE_SECONDS = 60 * 60  # the most time a receive is assumed to be older than the call
MAX_CAP_SECONDS = MAX_VISIBILITY_TIMEOUT - RECEIVE_ALLOWANCE_SECONDS  # 39,600 s: 11 hours


def ceiling(receive_count: int, base: int, cap: int) -> int:
    """The longest wait after the ``receive_count``-th receive (1 = the first delivery)."""
    exponent = min(max(receive_count, 1) - 1, 32)  # 2**32 * base is far beyond any cap
    return min(cap, base << exponent)


def delay(
    receive_count: int, base: int, cap: int, uniform: Callable[[float, float], float] | None = None
) -> int:
    """The jittered wait, in whole seconds (SQS's unit), within [ceiling / 2, ceiling]."""
    top = ceiling(receive_count, base, cap)
    draw = (uniform or random.uniform)(top / 2, top)
    return max(minimum(receive_count, base, cap), min(top, round(draw)))


def minimum(receive_count: int, base: int, cap: int) -> int:
    """The shortest wait :func:`delay` can return after the ``receive_count``-th receive."""
    return -(-ceiling(receive_count, base, cap) // 2)  # ceil(top / 2): delay never rounds below it


def minimum_total_wait(receives: int, base: int, cap: int) -> int:
    """The least time a message failed ``receives`` times has spent waiting, in seconds."""
    return sum(minimum(n, base, cap) for n in range(1, receives + 1))


def max_receive_count(
    base: int = DEFAULT_BASE_SECONDS, cap: int = DEFAULT_CAP_SECONDS, window: int = RETRY_WINDOW_SECONDS
) -> int:
    """The smallest redrive ``maxReceiveCount`` that keeps a message retried for at least ``window``."""
    receives, total = 0, 0
    while total < window:
        receives += 1
        total += minimum(receives, base, cap)
    return receives


__all__ = [
    "DEFAULT_BASE_SECONDS",
    "DEFAULT_CAP_SECONDS",
    "MAX_CAP_SECONDS",
    "MAX_VISIBILITY_TIMEOUT",
    "RECEIVE_ALLOWANCE_SECONDS",
    "RETRY_WINDOW_SECONDS",
    "ceiling",
    "delay",
    "max_receive_count",
    "minimum",
    "minimum_total_wait",
]
