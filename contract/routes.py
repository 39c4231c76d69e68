"""Routes: which upload starts which pipeline, with which parameters. Declared once, in ``routes.yaml``.

The build compiles ``routes.yaml`` into ``routes.json`` (``python -m pipeline routes``), checked by
:func:`parse`; the trigger reads that JSON (no YAML parser at run time), and the deploy function derives
from it what the stack grants and listens to (:func:`start_arns`, :func:`event_pattern`), so the routes,
the trigger's permissions and the EventBridge rule can never disagree. A route::

    - prefix: raw/claims/                # required: a folder of the bucket ('/' at the end)
      pattern: 'date=(?P<date>[^/]+)/.+' # optional: a Python regex matched against the whole key after
                                         #   the prefix; its named groups become placeholders
      pipeline: claims-training          # optional: a pipeline name or ARN; default the stack's own
      parameters:                        # optional: default the stack's own (DEFAULT_PARAMETERS)
        InputDataUrl: '{snapshot_url}'
        RunDate: '{date}'
      mode: object                       # optional: object | marker; default the stack's TriggerMode

The first route that matches a key wins. Placeholders (``str.format`` fields, bare names only):
``snapshot_url``, ``output_url``, ``bucket``, ``key``, ``version_id`` (empty on an unversioned bucket),
``size`` (bytes), ``volume_gb`` (a processing volume for the snapshot with room for the output:
:mod:`contract.volume`), and the pattern's named groups.

Hand-written because no library validates this small format with messages that name the route and
the field; it uses only the standard library (it runs in both functions).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from contract import volume
from contract.folders import prefix_problem
from contract.names import PIPELINE_NAME_OR_ARN

FILE = "routes.json"  # what the build writes next to each function's package (python -m pipeline routes)
FILE_VARIABLE = "ROUTES_FILE"  # a path to a JSON file of the same structure, read instead (tests, local runs)
FIELDS = ("prefix", "pattern", "pipeline", "parameters", "mode")
MODES = ("object", "marker")
PLACEHOLDERS = ("snapshot_url", "output_url", "bucket", "key", "version_id", "size", "volume_gb")
VOLUME = "volume_gb"  # filled once the snapshot's size is known (contract.volume)
DEFAULT_PARAMETERS = {
    "InputDataUrl": "{snapshot_url}",
    "OutputDataUrl": "{output_url}",
    volume.PARAMETER: "{volume_gb}",
}
OWN_PIPELINE = ""  # a route without ``pipeline``: the stack's own
# StartPipelineExecution: a parameter name is [A-Za-z0-9\-_]{1,256}; at most 200 parameters.
PARAMETER_NAME = re.compile(r"[A-Za-z0-9\-_]{1,256}")
MAX_PARAMETERS = 200
MAX_VALUE_CHARS = 1024
_INTEGER = re.compile(r"[+-]?[0-9]+")
_FORMATTER = string.Formatter()
# Characters IAM or Fn::Split would read differently in a prefix (the stack grants and lists the routed
# prefixes): wildcards, a policy variable, the separator of the comma-joined lists.
_UNSAFE = {
    "*": "an IAM wildcard",
    "?": "an IAM wildcard",
    "$": "an IAM policy variable",
    ",": "a list separator",
}


class RoutesError(ValueError):
    """``routes.yaml`` (or its JSON form) is invalid; the message names the route and the field."""


@dataclass(frozen=True)
class Route:
    """One route; ``index`` counts from 1, as the messages name it."""

    index: int
    prefix: str
    pattern: str | None = None
    pipeline: str = OWN_PIPELINE
    parameters: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PARAMETERS))
    mode: str | None = None  # None: the stack's TriggerMode

    @cached_property
    def regex(self) -> re.Pattern[str] | None:
        return re.compile(self.pattern) if self.pattern is not None else None

    @property
    def name(self) -> str:
        return f"route {self.index} (prefix {self.prefix!r})"

    def match(self, key: str) -> dict[str, str] | None:
        """The pattern's named groups if ``key`` lies under the prefix and matches, else None."""
        if not key.startswith(self.prefix):
            return None
        if self.regex is None:
            return {}
        found = self.regex.fullmatch(key[len(self.prefix) :])
        if found is None:
            return None
        return {name: value or "" for name, value in found.groupdict().items()}

    @property
    def sizes_volume(self) -> bool:
        """Whether a parameter takes ``{volume_gb}`` (so the snapshot's size must fit a volume)."""
        return any(VOLUME in placeholders(template) for template in self.parameters.values())

    def fill(self, values: Mapping[str, object], input_bytes: int = 0) -> dict[str, str]:
        """The route's parameters with every placeholder replaced by ``values``, and ``{volume_gb}`` by
        the processing volume for ``input_bytes`` of input (:func:`contract.volume.size_gb`)."""
        values = {**values, VOLUME: volume.size_gb(input_bytes)}
        return {name: template.format_map(values) for name, template in self.parameters.items()}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prefix": self.prefix}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.pipeline:
            out["pipeline"] = self.pipeline
        out["parameters"] = dict(self.parameters)
        if self.mode is not None:
            out["mode"] = self.mode
        return out


@dataclass(frozen=True)
class Routes:
    routes: tuple[Route, ...]

    def first(self, key: str) -> tuple[Route, dict[str, str]] | None:
        """The first route that matches ``key``, with its pattern's groups; None when none does."""
        for route in self.routes:
            groups = route.match(key)
            if groups is not None:
                return route, groups
        return None

    def prefixes(self) -> list[str]:
        """Every routed prefix, each once, without those inside another routed prefix."""
        unique = sorted({r.prefix for r in self.routes})
        return [p for p in unique if not any(p != q and p.startswith(q) for q in unique)]

    def root(self, key: str) -> str | None:
        """The outermost routed prefix ``key`` lies under: runs name their folders relative to it, so
        adding a route inside another moves no output."""
        return next((p for p in self.prefixes() if key.startswith(p)), None)

    def pipelines(self, own: str) -> list[str]:
        """Every routed pipeline (name or ARN), ``own`` standing for the routes without one; in order."""
        return list(dict.fromkeys(r.pipeline or own for r in self.routes))

    def to_json(self) -> dict[str, Any]:
        return {"routes": [r.to_json() for r in self.routes]}


def parse(document: object) -> Routes:
    """The routes of a parsed ``routes.yaml``/``routes.json`` document; raises RoutesError."""
    if not isinstance(document, Mapping) or set(document) != {"routes"}:
        raise RoutesError("expected one top-level field, 'routes': a list of routes")
    items = document["routes"]
    if not isinstance(items, list) or not items:
        raise RoutesError("'routes' must be a non-empty list")
    routes = tuple(_route(index, item) for index, item in enumerate(items, start=1))
    for later in routes:
        for earlier in routes[: later.index - 1]:
            if _always_wins(earlier, later):
                raise RoutesError(
                    f"{later.name}: can never match: {earlier.name} comes first "
                    "and matches every key it would"
                )
    return Routes(routes)


def loads(text: str) -> Routes:
    """The routes from ``routes.json`` text (as the build writes it)."""
    try:
        document = json.loads(text)
    except ValueError as err:
        raise RoutesError(f"not JSON: {err}") from err
    return parse(document)


def dumps(routes: Routes) -> str:
    return json.dumps(routes.to_json(), indent=2, ensure_ascii=False) + "\n"


def start_arns(routes: Routes, own: str, partition: str, region: str, account: str) -> list[str]:
    """The pipeline ARNs the trigger may start: exactly the routed pipelines (the one derivation).
    SageMaker writes a pipeline's name in its ARN in lowercase, and IAM compares ARNs exactly."""
    prefix = f"arn:{partition}:sagemaker:{region}:{account}:pipeline/"
    return list(
        dict.fromkeys(p if p.startswith("arn:") else prefix + p.lower() for p in routes.pipelines(own))
    )


def event_pattern(routes: Routes, bucket: str) -> dict[str, Any]:
    """The EventBridge pattern for uploads to ``bucket`` under exactly the routed prefixes."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket]},
            "object": {"key": [{"prefix": p} for p in routes.prefixes()]},
        },
    }


def value_problem(kind: str, value: str) -> str | None:
    """Why a pipeline of parameter type ``kind`` would refuse ``value`` (None when it takes it).

    SageMaker's parameter types: String, Integer, Float and Boolean; every value is at most
    :data:`MAX_VALUE_CHARS` characters.
    """
    if len(value) > MAX_VALUE_CHARS:
        return f"longer than the {MAX_VALUE_CHARS} characters a pipeline parameter holds"
    if kind == "Integer" and not _INTEGER.fullmatch(value):
        return f"{value!r} is not an integer"
    if kind == "Float":
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number"
        if number != number or number in (float("inf"), float("-inf")):
            return f"{value!r} is not a finite number"
    if kind == "Boolean" and value not in ("true", "false"):
        return f"{value!r} is not true or false"
    return None


def placeholders(template: str) -> list[str]:
    """The placeholder names in a parameter template; raises ValueError when it is not well formed."""
    names = []
    for _, name, spec, conversion in _FORMATTER.parse(template):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(
                f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            )
        names.append(name)
    return names


def _route(index: int, item: object) -> Route:
    where = f"route {index}"
    if not isinstance(item, Mapping):
        raise RoutesError(f"{where}: expected a mapping with at least 'prefix'")
    prefix = item.get("prefix")
    if not isinstance(prefix, str):
        raise RoutesError(f"{where}: field 'prefix' is required and must be a string")
    where = f"route {index} (prefix {prefix!r})"
    unknown = sorted(set(map(str, item)) - set(FIELDS))
    if unknown:
        raise RoutesError(f"{where}: unknown field {unknown[0]!r} (the fields: {', '.join(FIELDS)})")
    problem = prefix_problem(prefix)
    unsafe = [f"{c!r} ({why})" for c, why in _UNSAFE.items() if c in prefix]
    if problem or unsafe:
        raise RoutesError(f"{where}: field 'prefix' {problem or 'must not contain ' + ', '.join(unsafe)}")
    pattern = _optional_str(item, "pattern", where)
    groups: Sequence[str] = ()
    if pattern is not None:
        try:
            groups = list(re.compile(pattern).groupindex)
        except re.error as err:
            raise RoutesError(f"{where}: field 'pattern' does not compile: {err}") from err
        clash = sorted(set(groups) & set(PLACEHOLDERS))
        if clash:
            raise RoutesError(
                f"{where}: field 'pattern': group {clash[0]!r} hides the placeholder of that name"
            )
    pipeline = _optional_str(item, "pipeline", where) or OWN_PIPELINE
    if pipeline and not PIPELINE_NAME_OR_ARN.fullmatch(pipeline):
        raise RoutesError(f"{where}: field 'pipeline' {pipeline!r} is not a SageMaker pipeline name or ARN")
    mode = _optional_str(item, "mode", where)
    if mode is not None and mode not in MODES:
        raise RoutesError(f"{where}: field 'mode' must be one of {', '.join(MODES)} (got {mode!r})")
    parameters = _parameters(item.get("parameters"), where, [*PLACEHOLDERS, *groups])
    return Route(index, prefix, pattern, pipeline, parameters, mode)


def _parameters(value: object, where: str, defined: Iterable[str]) -> dict[str, str]:
    if value is None:
        return dict(DEFAULT_PARAMETERS)
    if not isinstance(value, Mapping) or not value:
        raise RoutesError(f"{where}: field 'parameters' must map parameter names to values")
    if len(value) > MAX_PARAMETERS:
        raise RoutesError(f"{where}: field 'parameters': at most {MAX_PARAMETERS} (StartPipelineExecution)")
    known = set(defined)
    out: dict[str, str] = {}
    for name, template in value.items():
        if not isinstance(name, str) or not PARAMETER_NAME.fullmatch(name):
            raise RoutesError(f"{where}: field 'parameters': {name!r} is not a pipeline parameter name")
        if isinstance(template, bool) or not isinstance(template, str | int | float):
            raise RoutesError(f"{where}: field 'parameters.{name}' must be a string or a number")
        text = str(template)
        try:
            names = placeholders(text)
        except ValueError as err:
            raise RoutesError(
                f"{where}: field 'parameters.{name}': {err} is not a placeholder (write '{{name}}')"
            ) from None
        undefined = [n for n in names if n not in known]
        if undefined:
            raise RoutesError(
                f"{where}: field 'parameters.{name}': placeholder {{{undefined[0]}}} is not defined "
                f"(defined: {', '.join(sorted(known))})"
            )
        out[name] = text
    return out


def _optional_str(item: Mapping[str, object], name: str, where: str) -> str | None:
    value = item.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise RoutesError(f"{where}: field {name!r} must be a non-empty string")
    return value


def _always_wins(earlier: Route, later: Route) -> bool:
    """Whether every key ``later`` matches is matched by ``earlier`` first (the decidable cases)."""
    if not later.prefix.startswith(earlier.prefix):
        return False
    if earlier.pattern is None:
        return True
    return earlier.prefix == later.prefix and earlier.pattern == later.pattern


__all__ = [
    "DEFAULT_PARAMETERS",
    "FIELDS",
    "FILE",
    "FILE_VARIABLE",
    "MODES",
    "OWN_PIPELINE",
    "PLACEHOLDERS",
    "Route",
    "Routes",
    "RoutesError",
    "dumps",
    "event_pattern",
    "loads",
    "parse",
    "placeholders",
    "start_arns",
    "value_problem",
]
