"""The dead-letter queue's dry-run report: what waits there and why (nothing is moved or deleted).

Redrive itself is SQS's: ``aws sqs start-message-move-task --source-arn <dead-letter queue ARN>``
(or the console's "Start DLQ redrive") sends the messages back to the upload queue, where the
trigger runs them once (the idempotency token holds across redrives). See :mod:`redrive.report` for
the function API, ``python -m redrive --help`` for the command.
"""

from redrive.report import ReportError, Row, as_json, deployed_config, render, waiting

__all__ = ["ReportError", "Row", "as_json", "deployed_config", "render", "waiting"]
