"""Name patterns AWS enforces, declared once for the trigger, the deploy function and the tests.

Each is the service model's own pattern (botocore), anchored by ``fullmatch``:

- ``BUCKET_NAME``: an S3 bucket name (3-63 lowercase letters, digits, dots and hyphens, starting and
  ending with a letter or digit).
- ``PIPELINE_NAME``: a SageMaker pipeline name (CreatePipeline's ``PipelineName``).
- ``PIPELINE_ARN``: a SageMaker pipeline ARN, in any partition.
- ``PIPELINE_NAME_OR_ARN``: what StartPipelineExecution's ``PipelineName`` accepts (either of the two).
"""

from __future__ import annotations

import re

_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}"

BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
PIPELINE_NAME = re.compile(_NAME)
PIPELINE_ARN = re.compile(rf"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{{12}}:pipeline/{_NAME}")
PIPELINE_NAME_OR_ARN = re.compile(rf"{PIPELINE_NAME.pattern}|{PIPELINE_ARN.pattern}")

__all__ = ["BUCKET_NAME", "PIPELINE_ARN", "PIPELINE_NAME", "PIPELINE_NAME_OR_ARN"]
