"""Smoke test of the `sam build` artifacts: each function imports from its artifact alone.

Each handler is imported in a fresh ``python3.13 -I -S -B`` (no site-packages, no user site, no PYTHON*
variables) whose path is the artifact plus a stand-in for what the Lambda Python runtime provides
(boto3 and its dependencies). A dependency missing from an artifact fails here, not in AWS.
"""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / ".aws-sam" / "build"
# What the Lambda Python runtime has besides the standard library (boto3 and what it needs).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
# What must never ship in a function: the build-time SDK, the data stack, the runtime's own boto3.
NEVER_SHIPPED = ("sagemaker", "pandas", "numpy", "pyarrow", "boto3", "botocore")
ZIP_LIMIT = 50 * 1024 * 1024  # Lambda's direct-upload limit for a zipped artifact

IMPORTS = {
    "TriggerFunction": "import trigger.handler as h; assert callable(h.lambda_handler)",
    # The deploy function also finds and checks what `sam build` rendered next to it.
    "DeployFunction": (
        "import deploy.handler as h; from pathlib import Path; from deploy.artifact import Artifact; "
        "a = Artifact.load(Path(h.__file__).parent.parent); assert a.image_uri('us-east-1'); "
        "assert a.code_key.endswith('/etl.pyz'); "
        "from deploy.routing import load; assert load(Path(h.__file__).parent.parent).routes; "
        "assert callable(h.lambda_handler)"
    ),
}


def _python313() -> str | None:
    candidates = [shutil.which("python3.13")]
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13.*/bin/python3.13"), reverse=True)
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0
        ):
            return candidate
    return None


@pytest.fixture(scope="module")
def runtime_stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with only boto3 and its dependencies, linked from this environment."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    site = Path(boto3.__file__).resolve().parent.parent
    for name in RUNTIME_PACKAGES:
        (folder / name).symlink_to(site / name)
    return folder


@pytest.fixture(scope="module")
def python313() -> str:
    found = _python313()
    if found is None:
        pytest.skip("python3.13 (the Lambda runtime's version) is not installed")
    return found


def _artifact(logical_id: str) -> Path:
    if not BUILD.is_dir():
        pytest.skip(f"{BUILD.relative_to(ROOT)} does not exist: run `sam build` first (`make build` does)")
    folder = BUILD / logical_id
    assert folder.is_dir(), f"sam build produced no artifact for {logical_id}"
    return folder


@pytest.mark.parametrize("logical_id", sorted(IMPORTS))
def test_the_handler_imports_from_its_artifact_alone(
    logical_id: str, python313: str, runtime_stand_in: Path
) -> None:
    # Given the function's built artifact and nothing but the Lambda runtime's own packages
    artifact = _artifact(logical_id)
    code = f"import sys; sys.path[:0] = [{str(artifact)!r}, {str(runtime_stand_in)!r}]; {IMPORTS[logical_id]}"
    env = {"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1", "LANG": "C.UTF-8"}

    # When a clean interpreter imports the handler
    result = subprocess.run(
        [python313, "-I", "-S", "-B", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=artifact,
        check=False,
    )

    # Then it loads (every dependency is in the artifact) and found its package there
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("logical_id", sorted(IMPORTS))
def test_the_artifact_is_small_and_ships_no_build_time_stack(logical_id: str) -> None:
    # Given the function's built artifact
    artifact = _artifact(logical_id)

    # Then it holds neither the SageMaker SDK nor pandas nor the runtime's boto3...
    shipped = {p.name.split("-")[0] for p in artifact.iterdir()}
    assert not shipped & set(NEVER_SHIPPED), sorted(shipped & set(NEVER_SHIPPED))
    # ...and zips far below Lambda's limit
    size = _zipped_size(artifact)
    assert size < ZIP_LIMIT / 10, f"{logical_id}: {size} bytes zipped"


def _zipped_size(folder: Path) -> int:
    """The size of the artifact zipped as `sam package` does (deflate, every file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.getbuffer().nbytes


@pytest.mark.parametrize("logical_id", sorted(IMPORTS))
def test_the_artifact_ships_bytecode_of_the_runtimes_python_that_is_never_rechecked(
    logical_id: str, python313: str
) -> None:
    # Given the function's built artifact (Lambda's /var/task is read-only: no bytecode can be written)
    artifact = _artifact(logical_id)
    sources = sorted(artifact.rglob("*.py"))
    assert sources

    # Then every module has its .pyc, made by the runtime's Python (3.13's magic number), and hash-based
    # without source checking (flags 0b01: unchecked-hash), so a zip's changed timestamps never
    # invalidate it and a cold start compiles nothing
    magic = subprocess.run(
        [python313, "-c", "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    missing, wrong = [], []
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not compiled.is_file():
            missing.append(str(source.relative_to(artifact)))
            continue
        header = compiled.read_bytes()[:8]
        if header[:4].hex() != magic or int.from_bytes(header[4:8], "little") != 0b01:
            wrong.append(str(compiled.relative_to(artifact)))
    assert not missing, f"{len(missing)} modules without bytecode, e.g. {missing[:3]}"
    assert not wrong, f"{len(wrong)} .pyc not unchecked-hash 3.13 bytecode, e.g. {wrong[:3]}"
    # And the handler's own package and the contract are among them
    for package in ("contract", logical_id.removesuffix("Function").lower()):
        assert (artifact / package / "__pycache__").is_dir(), package


@pytest.mark.parametrize("logical_id", sorted(IMPORTS))
def test_both_functions_carry_routes_yaml_compiled_as_the_build_compiles_it(logical_id: str) -> None:
    from pipeline.__main__ import compile_routes

    # (the functions read this JSON: no YAML parser at run time)
    shipped = (_artifact(logical_id) / "routes.json").read_text(encoding="utf-8")
    assert shipped == compile_routes(ROOT / "routes.yaml")
