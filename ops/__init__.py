"""``s3sm``: the operator's CLI (status, retry, redrive), the same against a deployed stack and the local
runtime. See docs/operations.md."""
