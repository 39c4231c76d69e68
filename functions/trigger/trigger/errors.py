"""The trigger's few exception types. Each is raised ``from`` its cause."""

from __future__ import annotations


class TriggerError(Exception):
    """Base of the errors the trigger raises on purpose."""


class ConfigError(TriggerError, ValueError):
    """The function's environment is missing a setting or holds an invalid one."""


class UnsupportedEvent(TriggerError, ValueError):
    """The invocation event is none of the shapes the trigger accepts."""


class Transient(TriggerError):
    """A step of one upload failed for a reason that passes (a quota, throttling, a 5xx, a timeout, a
    pipeline not created yet): the upload must be tried again later, never dropped.

    From the upload queue, the record is reported as a batch item failure and waits out its backoff;
    from a direct invocation, the handler raises :class:`StartFailed` once the other records are done.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


class Rejected(Transient):
    """SageMaker refused the start for a reason waiting will not fix (``AccessDenied``: the trigger's
    role may not start the pipeline; ``ValidationException``: the request does not fit the pipeline).

    Never dropped: from the upload queue, the message fails with no wait at all (visibility 0), so its
    redrive policy counts out ``maxReceiveCount`` within minutes, not 24 h, and moves it to the
    dead-letter queue, where the redrive report shows it until the cause is fixed and it is redriven.
    From a direct invocation it is named by :class:`StartFailed` like any other failure.
    """


class StartFailed(TriggerError):
    """One or more uploads of a direct invocation (not from the upload queue) must be retried.

    Raised after every other record of the event was handled, so the successful starts stand and
    whoever invoked the function (Lambda's asynchronous retry, ``sam local invoke``, a user) can send
    the whole event again; the idempotency tokens make that retry start nothing twice.
    """

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = list(failures)
        detail = "; ".join(f"{key}: {error}" for key, error in self.failures)
        noun = "object" if len(self.failures) == 1 else "objects"
        super().__init__(f"StartPipelineExecution failed for {len(self.failures)} {noun}: {detail}")
