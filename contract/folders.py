"""The data bucket's folders must not overlap: one rule for the trigger and the deploy function.

The routed prefixes (``routes.yaml``: uploads, which start a pipeline), the snapshot prefix (each
upload's bytes as its run reads them), the clean prefix (outputs) and ``code/`` (the ETL bundle) must
each be a folder of its own: a write inside a routed prefix would start a pipeline again, an output or
a code upload inside the snapshot prefix would overwrite a run's input, and a lifecycle rule on one
would expire another's objects. Two folders overlap when one is a prefix of the other (equal included).
"""

from __future__ import annotations

from collections.abc import Sequence

CODE_PREFIX = "code/"  # where the deploy function uploads the ETL bundle (code/<sha256>/etl.pyz)
WHY = (
    "each must be a folder of its own (a write under a routed prefix would start a pipeline again, "
    "and a snapshot must never be overwritten by an output or expire with another folder)"
)


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` is not a folder of a bucket (``raw/``, ``data/in/``), or None when it is one."""
    if not prefix.endswith("/"):
        return "must end with '/' (for example 'raw/')"
    if prefix.startswith("/"):
        return "must not start with '/' (S3 keys have no leading slash)"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in prefix):
        return "must not contain control characters"
    if any(part in {"", ".", ".."} for part in prefix[:-1].split("/")):
        return "must not contain empty, '.' or '..' path segments"
    return None


def overlap(first: str, second: str) -> bool:
    """Whether one folder lies inside the other (or both are the same). Empty names are never checked."""
    return bool(first and second) and (first.startswith(second) or second.startswith(first))


def overlaps(folders: Sequence[tuple[str, str]], nested: Sequence[tuple[str, str]] = ()) -> list[str]:
    """One problem per pair of ``(name, prefix)`` folders that overlap, in the order given.

    ``nested``: folders that may lie inside one another (the routed prefixes: ``raw/claims/`` within
    ``raw/``) but must each stay apart from every one of ``folders``.
    """
    pairs = [(a, b) for index, a in enumerate(folders) for b in folders[index + 1 :]]
    pairs += [(a, b) for a in nested for b in folders]
    return [f"{a[0]} {a[1]!r} and {b[0]} {b[1]!r} overlap: {WHY}" for a, b in pairs if overlap(a[1], b[1])]


__all__ = ["CODE_PREFIX", "WHY", "overlap", "overlaps", "prefix_problem"]
