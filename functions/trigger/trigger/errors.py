"""The trigger's few exception types. Each is raised ``from`` its cause."""

from __future__ import annotations


class TriggerError(Exception):
    """Base of the errors the trigger raises on purpose."""


class ConfigError(TriggerError, ValueError):
    """The function's environment is missing a setting or holds an invalid one."""


class UnsupportedEvent(TriggerError, ValueError):
    """The invocation event is none of the shapes the trigger accepts."""


class StartFailed(TriggerError):
    """StartPipelineExecution still failed (after botocore's retries) for one or more objects.

    Raised after every other record of the event was handled, so the successful starts stand and
    Lambda's asynchronous retry (then the on-failure destination) receives the whole event again;
    the idempotency tokens make that retry start nothing twice.
    """

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        self.failures = list(failures)
        detail = "; ".join(f"{key}: {error}" for key, error in self.failures)
        noun = "object" if len(self.failures) == 1 else "objects"
        super().__init__(f"StartPipelineExecution failed for {len(self.failures)} {noun}: {detail}")
