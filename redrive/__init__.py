"""Redrive: replay the trigger's dead-letter queue through the trigger, and delete what then succeeded.

``python -m redrive --queue-url URL (--function-name NAME | --local) [--max N] [--dry-run]``

Each message is one of Lambda's on-failure invocation records (the original S3 event under
``requestPayload``, why it failed under ``requestContext``/``responsePayload``) or a bare event (an S3
notification sent straight to SQS, or a dead-letter queue's copy of the event). The event is replayed
through the trigger: by ``lambda:Invoke`` of the deployed function, or in this process (``--local``).
A message is deleted only when its replay succeeded; an unreadable message or a failed replay stays in
the queue, named in the report with its reason. Replaying is safe to repeat: the trigger's idempotency
token returns an execution that already started instead of starting a second one.

Modules: ``messages`` (a queue message -> the event to replay), ``replay`` (the two ways to run the
trigger), ``run`` (the queue loop and its report), ``__main__`` (the command line).
"""
