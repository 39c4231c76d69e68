"""The processing step's storage volume: a pipeline parameter the trigger sets from each upload's size.

In File mode SageMaker copies the whole input onto the job's ML storage volume before the container
starts, and the outputs are written there too (and stay until the job ends). The
SDK's default of 30 GB therefore fails any upload larger than about 25 GB. The pipeline declares
``ProcessingVolumeSizeInGB`` (default :data:`DEFAULT_GB`) for the step's ``VolumeSizeInGB``, and the
trigger passes :func:`size_gb` of the snapshot's size in bytes:

    size_gb = max(DEFAULT_GB, ceil(bytes * (1 + OUTPUT_BYTES_PER_INPUT_BYTE) / 10^9) + HEADROOM_GB)

Room for the output: the ETL's ``full_data.csv`` is about 1.2 times a plain input and about 5 times a
gzip one (generated COIL data at 100,000 rows, whose gzip ratio is 4.2), plus ``rejects.csv``;
:data:`OUTPUT_BYTES_PER_INPUT_BYTE` (10) leaves room for a gzip input that compresses twice as well.
A GB is counted as 10^9 bytes, the smaller of the two readings, so the volume is never short.

SageMaker accepts 1 to 16,384 GB (``ProcessingClusterConfig.VolumeSizeInGB``); an upload whose volume
would exceed that is refused by :func:`problem` before anything is copied or started. (Instance types
with local NVMe storage, such as ml.m5d, cap the volume at that storage's size instead: a start beyond
it fails when SageMaker creates the job, before anything is billed.)
"""

from __future__ import annotations

PARAMETER = "ProcessingVolumeSizeInGB"
DEFAULT_GB = 30  # the SDK's default, and the least the trigger asks for
MAX_GB = 16384  # CreateProcessingJob's ProcessingClusterConfig.VolumeSizeInGB: 1 to 16,384
OUTPUT_BYTES_PER_INPUT_BYTE = 10
HEADROOM_GB = 2  # the code, the logs, the ETL's temporary files
GB = 10**9


def size_gb(input_bytes: int) -> int:
    """The volume, in GB, for a run whose input holds ``input_bytes`` (may exceed :data:`MAX_GB`)."""
    need = max(input_bytes, 0) * (1 + OUTPUT_BYTES_PER_INPUT_BYTE)
    return max(DEFAULT_GB, -(-need // GB) + HEADROOM_GB)


def problem(input_bytes: int) -> str | None:
    """Why no processing volume can hold a run on ``input_bytes`` of input, or None when one can."""
    need = size_gb(input_bytes)
    if need <= MAX_GB:
        return None
    return (
        f"its {input_bytes / GB:,.1f} GB of input need a {need:,} GB processing volume with room for the "
        f"output, more than the {MAX_GB:,} GB SageMaker allows: upload the data in smaller parts"
    )


__all__ = [
    "DEFAULT_GB",
    "GB",
    "HEADROOM_GB",
    "MAX_GB",
    "OUTPUT_BYTES_PER_INPUT_BYTE",
    "PARAMETER",
    "problem",
    "size_gb",
]
