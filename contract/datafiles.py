"""What is not data: one rule for the trigger, which starts no run on it, and the ETL, which reads none of it.

Spark, Hadoop and many uploaders write files beside the data that no run can use: markers
(``_SUCCESS``), work folders (``_temporary/``), staging and checksum files (``.spark-staging-*``,
``.part-00000.crc``), hidden files (``.DS_Store``). The convention they share, and Hadoop's
``FileInputFormat`` applies when it lists input: a path segment that starts with ``_`` or ``.`` is not
data. Neither is an empty object (a folder placeholder, an upload that wrote nothing).

The trigger applies it to a key relative to the raw prefix (object mode) or to the marker's folder
(marker mode, where the marker itself is the exception), the ETL to each file relative to its input
folder. The ETL bundle carries this module (``contract.artifact``), so both read the same lines.
"""

from __future__ import annotations

HIDDEN, TEMPORARY = ".", "_"


def not_data(path: str, size: int | None = None) -> str | None:
    """Why the object at ``path`` ('/'-separated, relative to its dataset) is not data, or None.

    ``size`` in bytes, when known (None: only the name is judged).
    """
    for segment in path.split("/"):
        if segment.startswith(HIDDEN):
            return f"hidden file (path segment {segment!r} starts with {HIDDEN!r})"
        if segment.startswith(TEMPORARY):
            return f"temporary or marker file (path segment {segment!r} starts with {TEMPORARY!r})"
    if size == 0:
        return "zero-byte placeholder"
    return None


__all__ = ["HIDDEN", "TEMPORARY", "not_data"]
