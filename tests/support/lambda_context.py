"""The Lambda context object a handler gets, with what Powertools' inject_lambda_context reads from it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LambdaContext:
    """A context of ``function_name`` (the trigger by default) with ``remaining_ms`` of its time left."""

    function_name: str = "TriggerFunction"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "8b5e6a4c-0f1d-4a8e-9f0b-2a1c3d4e5f60"
    log_stream_name: str = "2025/01/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 300_000  # the template's Timeout, all of it left

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
