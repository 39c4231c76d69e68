"""The two ways to replay an event through the trigger: the deployed function, or the handler in-process.

Both give an :class:`Outcome`: the trigger's summary (``started``/``skipped``), or the error that made
the invocation fail, exactly as Lambda would record it (``errorType: errorMessage``).
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from trigger import handler
from trigger.errors import TriggerError


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one replay did: the trigger's summary, or why the invocation failed."""

    started: list[dict[str, Any]] = field(default_factory=list)  # {key, inputDataUrl, ..., executionArn}
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {key, reason}
    error: str | None = None

    @classmethod
    def from_summary(cls, summary: object) -> Outcome:
        """The trigger's return value, checked: anything else is a failed replay, not a success."""
        if isinstance(summary, dict):
            started, skipped = summary.get("started"), summary.get("skipped")
            if isinstance(started, list) and isinstance(skipped, list):
                return cls(started, skipped)
        return cls(error=f"unexpected response from the trigger: {json.dumps(summary)[:300]}")


Replay = Callable[[dict[str, Any]], Outcome]


def via_lambda(client: Any, function_name: str) -> Replay:
    """Replay by a synchronous ``lambda:Invoke`` of the deployed trigger function.

    A ``FunctionError`` in the answer (the function raised) is a failed replay carrying the function's
    ``errorType: errorMessage``; so is an Invoke call that failed after the client's retries.
    """

    def replay(event: dict[str, Any]) -> Outcome:
        try:
            response = client.invoke(
                FunctionName=function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode("utf-8"),
            )
            raw = response["Payload"].read()
        except (ClientError, BotoCoreError) as err:
            return Outcome(error=f"lambda:Invoke of {function_name} failed: {err}")
        try:
            payload = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            payload = raw.decode("utf-8", "replace")
        if response.get("FunctionError"):
            if isinstance(payload, dict):
                kind = payload.get("errorType") or response["FunctionError"]
                return Outcome(error=f"{kind}: {payload.get('errorMessage', '')}")
            return Outcome(error=f"{response['FunctionError']} function error: {payload}")
        return Outcome.from_summary(payload)

    return replay


@dataclass(frozen=True)
class LambdaContext:
    """The fields of Lambda's context object that the trigger's Powertools Logger reads."""

    aws_request_id: str
    function_name: str = "TriggerFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:TriggerFunction"


def in_process() -> Replay:
    """Replay by calling the trigger's handler in this process (settings from this environment).

    The errors Lambda would turn into a function error become a failed replay: the trigger's own
    (StartFailed, ConfigError, UnsupportedEvent) and an AWS client that cannot be made or reached.
    """

    def replay(event: dict[str, Any]) -> Outcome:
        context = LambdaContext(aws_request_id=str(uuid.uuid4()))
        try:
            summary = handler.lambda_handler(copy.deepcopy(event), context)  # type: ignore[arg-type]
        except (TriggerError, ClientError, BotoCoreError) as err:
            return Outcome(error=f"{type(err).__name__}: {err}")
        return Outcome.from_summary(summary)

    return replay
