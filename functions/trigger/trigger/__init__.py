"""The trigger Lambda: an upload under the raw prefix starts the SageMaker pipeline on exactly that data.

Handler: ``trigger.handler.lambda_handler``. The logic lives in plain modules the handler composes:
``config`` (environment, validated once), ``events`` (any accepted event shape -> object notifications),
``routing`` (which notifications are datasets, and their data URLs), ``request`` (the
StartPipelineExecution request, with its idempotency token).
"""
