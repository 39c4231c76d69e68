"""The answer to CloudFormation: a JSON document PUT to the request's pre-signed ``ResponseURL``.

Without it the stack waits (up to an hour) and then fails. Powertools has the event class but no
sender; this is the few lines the documented protocol needs, with urllib and bounded retries.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Literal

from aws_lambda_powertools import Logger

from deploy.errors import ResponseNotSent

# The whole response must stay under CloudFormation's 4096-byte limit: keep the reason well below it.
MAX_REASON = 1500
ATTEMPTS = 4
TIMEOUT_SECONDS = 20
RETRY_DELAY_SECONDS = 1.0  # doubled after each failed attempt

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class CfnResponse:
    status: Literal["SUCCESS", "FAILED"]
    physical_resource_id: str
    stack_id: str
    request_id: str
    logical_resource_id: str
    reason: str = ""
    data: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        reason = self.reason if len(self.reason) <= MAX_REASON else self.reason[: MAX_REASON - 3] + "..."
        document = {
            "Status": self.status,
            "Reason": reason,
            "PhysicalResourceId": self.physical_resource_id,
            "StackId": self.stack_id,
            "RequestId": self.request_id,
            "LogicalResourceId": self.logical_resource_id,
            "NoEcho": False,
            "Data": self.data,
        }
        return json.dumps(document).encode("utf-8")


def send(url: str, response: CfnResponse) -> None:
    """PUT the response; retried on connection errors and 5xx, ResponseNotSent when it cannot be done."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("https", "http"):
        raise ResponseNotSent(f"ResponseURL must be an https URL (got scheme {scheme!r})")
    body = response.body()
    # The URL is pre-signed without a content type: send none (urllib would add a form type).
    headers = {"Content-Type": "", "Content-Length": str(len(body))}
    delay = RETRY_DELAY_SECONDS
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(url, data=body, method="PUT", headers=headers)  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 - scheme checked
                logger.info("response sent", extra={"status": response.status, "http_status": answer.status})
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == ATTEMPTS:
                raise ResponseNotSent(
                    f"CloudFormation refused the response: HTTP {exc.code} {exc.reason}"
                ) from exc
            error: Exception = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == ATTEMPTS:
                raise ResponseNotSent(f"the response could not be sent: {exc}") from exc
            error = exc
        logger.warning(
            "sending the response failed, retrying", extra={"attempt": attempt, "error": str(error)}
        )
        time.sleep(delay)
        delay *= 2


class Responder:
    """Answers one request exactly once, from whichever thread gets there first (work or watchdog)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._answered = False

    def answer(self, response: CfnResponse) -> bool:
        """Send ``response`` unless an answer was already sent; True when this call sent it."""
        with self._lock:
            if self._answered:
                return False
            self._answered = True
        send(self.url, response)
        return True
