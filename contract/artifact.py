"""What the pipeline definition and the deploy function agree on: its placeholders and the ETL's code key.

The ETL step ships as one file, ``etl.pyz``: a zip application (Python runs a zip with a
``__main__.py`` at its top, as ``python3 etl.pyz ARGS``) holding every ``*.py`` and ``*.json`` file
of the ``etl`` package and its subpackages (the shipped schema, the examples), and the modules of this
package the ETL imports (:data:`SHARED`). :func:`bundle` builds it deterministically (sorted names,
fixed dates and modes, stored uncompressed), so the same sources give the same bytes on any machine,
and :func:`code_key` addresses it by its sha256: a change to any ETL file (the schema too, or a shared
module) is a new key, so a new definition, so an upsert. The pipeline builder renders that key into
the definition; the deploy function rebuilds the bundle from the ``etl/`` folder in its artifact,
checks the definition addresses it, and uploads it there.

Hand-written because ``zipapp.create_archive`` stamps each file's modification time into the zip.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from contract.folders import CODE_PREFIX

# The definition's string.Template placeholders, filled by the deploy function at deploy time.
PLACEHOLDERS = (
    "DataBucket",
    "RoleArn",
    "ImageUri",
    "SnapshotPrefix",
    "CleanPrefix",
    "ProcessingInstanceType",
)
BUNDLE_FILE = "etl.pyz"
PACKAGE = "etl"
# The rules the ETL shares with the trigger, bundled beside it (from this package, wherever it runs).
SHARED = ("__init__.py", "datafiles.py")
_MAIN = b'import runpy\n\nrunpy.run_module("etl", run_name="__main__", alter_sys=True)\n'
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold


SUFFIXES = (".py", ".json")  # the package's files: its modules, the shipped schema and the examples'


def package_files(package_dir: Path) -> list[tuple[str, bytes]]:
    """(name inside the bundle, content) of every file of the package and its subpackages, sorted."""
    files = sorted(
        f
        for f in package_dir.rglob("*")
        if f.suffix in SUFFIXES and f.is_file() and "__pycache__" not in f.relative_to(package_dir).parts
    )
    if not any(f.suffix == ".py" for f in files):
        raise FileNotFoundError(2, f"no *.py files (the {PACKAGE} package)", str(package_dir))
    return [(f"{PACKAGE}/{f.relative_to(package_dir).as_posix()}", f.read_bytes()) for f in files]


def copy_package(package_dir: Path, target: Path) -> None:
    """Copy the package's files (those :func:`bundle` packs) into ``target`` (a build artifact's)."""
    for name, content in package_files(package_dir):
        (path := target / name.removeprefix(f"{PACKAGE}/")).parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def shared_files() -> list[tuple[str, bytes]]:
    """(name inside the bundle, content) of the :data:`SHARED` modules of this package."""
    here = Path(__file__).parent
    return [(f"{here.name}/{name}", (here / name).read_bytes()) for name in SHARED]


def bundle(package_dir: Path) -> bytes:
    """The zip application of the package in ``package_dir`` (and :data:`SHARED`); the same sources give
    the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in [("__main__.py", _MAIN), *shared_files(), *package_files(package_dir)]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.create_system, info.external_attr = 3, 0o644 << 16  # unix, rw-r--r--
            archive.writestr(info, content)
    return buffer.getvalue()


def code_key(bundle_bytes: bytes) -> str:
    """The bundle's content-addressed S3 key: ``code/<sha256>/etl.pyz``."""
    return f"{CODE_PREFIX}{hashlib.sha256(bundle_bytes).hexdigest()}/{BUNDLE_FILE}"
