"""The build's renderers: the pipeline definition template (and the image URI table), and the routes.

    python -m pipeline render [--out FILE] [--image-uris FILE] [--etl-package DIR]
    python -m pipeline routes [--out FILE] [ROUTES_YAML]

Offline and deterministic: no credentials, no network, byte-identical output for identical inputs.
``sam build`` runs them to put ``pipeline.json`` and ``image_uris.json`` into the deploy function and
``routes.json`` (``routes.yaml`` checked and compiled: the functions read no YAML) into both.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.resources import files
from pathlib import Path


def _default_etl_package() -> Path:
    return Path(str(files("etl")))


def _write(text: str, target: Path | None) -> None:
    if target is None:
        sys.stdout.write(text)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def compile_routes(source: Path) -> str:
    """``routes.yaml`` as the functions read it (routes.json); raises RoutesError naming the problem."""
    import yaml  # build time only: the functions read the JSON this writes

    from contract.routes import RoutesError, dumps, parse

    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise RoutesError(f"cannot read it: {err}") from err
    return dumps(parse(document))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser(
        "render", help="render the definition template with deploy-time placeholders"
    )
    render.add_argument("--out", type=Path, help="write the definition here (default: stdout)")
    render.add_argument(
        "--image-uris", type=Path, help="also write {region: scikit-learn image URI} as JSON to this file"
    )
    render.add_argument(
        "--etl-package",
        type=Path,
        default=None,
        help="the ETL package folder whose bundle is addressed by content (default: etl/)",
    )
    routes = commands.add_parser("routes", help="check routes.yaml and write it as routes.json")
    routes.add_argument(
        "source", nargs="?", type=Path, default=Path("routes.yaml"), help="default: routes.yaml"
    )
    routes.add_argument("--out", type=Path, help="write routes.json here (default: stdout)")
    args = parser.parse_args(argv)

    if args.command == "routes":
        from contract.routes import RoutesError

        try:
            _write(compile_routes(args.source), args.out)
        except RoutesError as err:
            print(f"{args.source}: {err}", file=sys.stderr)
            return 2
        return 0

    etl_package: Path = args.etl_package or _default_etl_package()
    if not (etl_package / "__main__.py").is_file():
        parser.error(f"ETL package not found: {etl_package} (expected its __main__.py there)")

    from pipeline.pipeline import render_image_uris, render_template  # the SDK takes seconds to import

    # Importing the SDK sets the root logger to INFO (one line per region and image); its warnings here
    # are about what this builder chooses on purpose (ProcessingJobName is set per execution).
    logging.getLogger().setLevel(logging.WARNING)
    for name in ("sagemaker", "sagemaker.config"):
        logging.getLogger(name).setLevel(logging.ERROR)

    _write(render_template(etl_package), args.out)
    if args.image_uris is not None:
        _write(render_image_uris(), args.image_uris)
    return 0


if __name__ == "__main__":
    sys.exit(main())
