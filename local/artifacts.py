"""Function code folders for local runs: the ``sam build`` artifact, or an equivalent built from source.

Most functions run straight from their source folder (the ``CodeUri``). The deploy function cannot:
``sam build`` adds generated files next to its package (see ``deploy.artifact``): ``pipeline.json``
and ``image_uris.json`` rendered by ``python -m pipeline render``, ``routes.json``, and copies of the
``etl`` and ``contract`` packages. :func:`code_dir` builds the same layout under
``.local-runtime/build/`` from the current sources. Rendering imports the SageMaker SDK (10-20 s
here), so the result is cached under a hash of everything it depends on, and a source change rebuilds it.

Functions run from source have no ``routes.json`` next to their package: :func:`routes_environment`
compiles ``routes.yaml`` as the build does (``python -m pipeline routes``) and names the result in
``ROUTES_FILE``, which both functions read instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from contract.artifact import copy_package, package_files
from contract.routes import FILE as ROUTES_JSON
from contract.routes import FILE_VARIABLE, RoutesError
from local.process import ROOT, STATE_DIR, child_environment
from local.template import FunctionSpec, Template

BUILD_DIR = STATE_DIR / "build"
DEFINITION_FILE = "pipeline.json"
IMAGE_URIS_FILE = "image_uris.json"
_RENDERED_FOR = ("deploy",)  # handler packages whose artifact carries the rendered pipeline
_build_lock = threading.Lock()


class BuildError(Exception):
    """The local equivalent of ``sam build`` failed for a function."""


def sam_build_dir(spec: FunctionSpec, root: Path = ROOT) -> Path:
    return root / ".aws-sam" / "build" / spec.logical_id


def needs_rendered_pipeline(spec: FunctionSpec) -> bool:
    return _renders(spec.handler)


def _renders(handler: str) -> bool:
    return handler.split(".", 1)[0] in _RENDERED_FOR


def prepare(template: Template) -> list[Path]:
    """Build, ahead of time, every function folder that needs it (what the first deploy would do)."""
    built = []
    for logical_id, resource in template.resources.items():
        if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        props = template.function_properties(logical_id)
        if _renders(str(props.get("Handler", ""))):
            code_uri = (template.root / str(props.get("CodeUri", "."))).resolve()
            built.append(local_build(logical_id, code_uri, template.root))
    return built


def code_dir(spec: FunctionSpec, *, prefer_build: bool, root: Path = ROOT) -> Path:
    """The folder to run ``spec`` from: its sam build artifact if wanted and present, else from source."""
    built = sam_build_dir(spec, root)
    generated = (DEFINITION_FILE, IMAGE_URIS_FILE, "etl/__main__.py")
    complete = not needs_rendered_pipeline(spec) or all((built / name).is_file() for name in generated)
    if prefer_build and built.is_dir() and complete:
        return built
    if needs_rendered_pipeline(spec):
        return local_build(spec.logical_id, spec.code_uri, root)
    return spec.code_uri


def _digest(files: list[tuple[str, bytes]], *, sdk: bool) -> str:
    digest = hashlib.sha256()
    for name, body in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    if sdk:
        for dist in ("sagemaker", "sagemaker-core", "sagemaker-mlops"):
            try:
                digest.update(f"{dist}=={importlib.metadata.version(dist)}".encode())
            except importlib.metadata.PackageNotFoundError:
                digest.update(f"{dist} missing".encode())
    return digest.hexdigest()[:16]


def _tree(folder: Path) -> list[tuple[str, bytes]]:
    return [
        (p.relative_to(folder).as_posix(), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()
    ]


def local_build(logical_id: str, code_uri: Path, root: Path = ROOT) -> Path:
    """The deploy function's artifact built from source (cached by content hash)."""
    with _build_lock:
        return _local_build(logical_id, code_uri, root)


def _render_dir(package: Path, root: Path) -> Path:
    """Where the definition for this ETL package is cached: it depends on the renderer, the SDK and the
    package's sources only (not on the deploy function's code)."""
    sources = [
        (f"{d}/{p.name}", p.read_bytes())
        for d in ("pipeline", "contract")
        for p in sorted((root / d).glob("*.py"))
    ]
    etl = package_files(package)  # what the bundle holds: a change to the ETL or its schema renders anew
    return BUILD_DIR / f"render-{_digest([*sources, *etl], sdk=True)}"


def render_cached(root: Path = ROOT) -> bool:
    """Whether the pipeline definition for the current sources is rendered already (a deploy is quick)."""
    return (_render_dir(root / "etl", root) / DEFINITION_FILE).is_file()


def _render(package: Path, root: Path) -> Path:
    """``python -m pipeline render`` for this ETL package, cached (see :func:`_render_dir`)."""
    rendered = _render_dir(package, root)
    if (rendered / DEFINITION_FILE).is_file():
        return rendered
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=BUILD_DIR))
    try:
        command = [
            sys.executable, "-m", "pipeline", "render",
            "--out", str(staging / DEFINITION_FILE),
            "--image-uris", str(staging / IMAGE_URIS_FILE),
            "--etl-package", str(package),
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=root, env=child_environment({}), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            cause = lines[-1] if lines else f"exit status {result.returncode}"
            raise BuildError(f"`python -m pipeline render` failed: {cause}")
        _publish(staging, rendered)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune("render-*", rendered)
    return rendered


def _publish(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError:
        if not (target / DEFINITION_FILE).is_file():  # not a concurrent build that won the race
            raise


def _prune(pattern: str, keep: Path) -> None:
    for old in BUILD_DIR.glob(pattern):  # keep the newest only
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def _local_build(logical_id: str, code_uri: Path, root: Path) -> Path:
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    # Stage a copy first and work from the copy: the sources may change meanwhile.
    staging = Path(tempfile.mkdtemp(prefix=f".{logical_id}-", dir=BUILD_DIR))
    try:
        shutil.copytree(
            code_uri, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "Makefile")
        )
        copy_package(root / "etl", staging / "etl")
        (staging / "contract").mkdir()
        for module in sorted((root / "contract").glob("*.py")):
            shutil.copyfile(module, staging / "contract" / module.name)
        shutil.copyfile(compiled_routes(root / "routes.yaml"), staging / ROUTES_JSON)
        rendered = _render(staging / "etl", root)
        for name in (DEFINITION_FILE, IMAGE_URIS_FILE):
            shutil.copyfile(rendered / name, staging / name)
        target = BUILD_DIR / f"{logical_id}-{_digest(_tree(staging), sdk=False)}"
        if not (target / DEFINITION_FILE).is_file():
            _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _prune(f"{logical_id}-*", target)
    return target


def routes_environment(source: Path = ROOT / "routes.yaml") -> dict[str, str]:
    """``ROUTES_FILE`` naming ``source`` compiled to JSON; BuildError if it is invalid."""
    return {FILE_VARIABLE: str(compiled_routes(source))}


def compiled_routes(source: Path) -> Path:
    """``source`` compiled to routes.json as the build does (cached by content); BuildError if invalid."""
    from pipeline.__main__ import compile_routes  # imports the YAML parser: the dev environment's

    try:
        text = compile_routes(source)
    except RoutesError as exc:
        raise BuildError(f"{source}: {exc}") from exc
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    target = BUILD_DIR / f"routes-{_digest([(source.name, text.encode())], sdk=False)}.json"
    if not target.is_file():
        staging = target.with_name(f".{target.name}.{threading.get_ident()}")
        staging.write_text(text, encoding="utf-8")
        staging.replace(target)  # atomic: a concurrent reader sees all of it or nothing
    return target


__all__ = [
    "BuildError",
    "code_dir",
    "local_build",
    "needs_rendered_pipeline",
    "prepare",
    "render_cached",
    "routes_environment",
    "sam_build_dir",
]
