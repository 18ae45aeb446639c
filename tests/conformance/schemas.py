"""Offline schema validation for the objects the platform emits.

* Custom resources: the CRDs in ``../shared/reference/crds`` (overridable with ``PLATFORM_CRDS_DIR``).
  The object's ``apiVersion`` must name a *served* version of the CRD; its ``openAPIV3Schema`` is
  turned into a JSON Schema the way the API server reads a structural schema:

  - ``nullable: true`` admits ``null``; ``x-kubernetes-int-or-string`` admits an integer or a string;
  - unknown fields are errors (``additionalProperties: false``) unless the schema says
    ``x-kubernetes-preserve-unknown-fields`` - the API server would otherwise prune them silently;
  - ``x-kubernetes-list-type: set|map`` (with ``x-kubernetes-list-map-keys``) enforce uniqueness;
  - ``format`` int32/int64/byte are checked; ``x-kubernetes-validations`` (CEL) cannot be evaluated
    offline and are *counted* in the report instead of being silently ignored;
  - ``metadata`` is validated against Kubernetes' ObjectMeta schema and the name against RFC 1123.

* Core kinds: ``kubernetes_validate`` (strict schemas, offline) at a pinned Kubernetes minor version.
* Chart values: a chart's published ``values.schema.json`` (JSON Schema 2020-12).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import importlib_resources
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import referencing
import yaml
from kubernetes_validate import utils as kv_utils

CRDS_ENV: Final = "PLATFORM_CRDS_DIR"
DEFAULT_CRDS_DIR: Final = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "crds"
OBJECT_META_REF: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_YAML_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class SchemaValidationError(AssertionError):
    """An object does not conform to its schema; ``errors`` lists every violation with its path."""

    def __init__(self, what: str, errors: list[str]) -> None:
        self.what = what
        self.errors = errors
        super().__init__(f"{what}: " + "; ".join(errors))


class SchemaNotFoundError(LookupError):
    """No CRD (or no served version) describes the object's apiVersion/kind."""


def crds_dir() -> Path | None:
    """The CRD directory (``$PLATFORM_CRDS_DIR`` or the shared reference beside the checkout), if present."""
    path = Path(os.environ.get(CRDS_ENV) or DEFAULT_CRDS_DIR)
    return path if path.is_dir() and any(path.glob("*.yaml")) else None


# ---------------------------------------------------------------------------------------------
# CRD schema -> JSON Schema


def to_json_schema(node: Any, *, strict: bool = True) -> Any:
    """Translate a structural ``openAPIV3Schema`` into an equivalent Draft 4 JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(n, strict=strict) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v, strict=strict) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "allOf", "oneOf"):
            out[key] = to_json_schema(value, strict=strict)
        elif key in ("description", "default", "example"):
            continue
        else:
            out[key] = value
    if out.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if out.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        strict
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _list_type(validator: Any, list_type: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    """``x-kubernetes-list-type``: ``set`` items are unique, ``map`` items are unique by their keys."""
    if not isinstance(instance, list):
        return
    if list_type == "set":
        seen: list[Any] = []
        for item in instance:
            if item in seen:
                yield jsonschema.ValidationError(f"duplicate item {item!r} in a list-type=set")
            seen.append(item)
    elif list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        found: set[str] = set()
        for item in instance:
            if not isinstance(item, dict):
                continue
            ident = json.dumps([item.get(k) for k in keys])
            if ident in found:
                yield jsonschema.ValidationError(f"duplicate map key {dict(zip(keys, json.loads(ident), strict=True))}")
            found.add(ident)


def _int_range(bits: int) -> Any:
    """A format checker accepting integers representable in ``bits`` signed bits."""

    def check(value: object) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return True
        return bool(-(2 ** (bits - 1)) <= value < 2 ** (bits - 1))

    return check


def _is_base64(value: object) -> bool:
    """Format ``byte``: standard base64."""
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


FORMAT_CHECKER: Final = jsonschema.FormatChecker()
FORMAT_CHECKER.checks("int32")(_int_range(32))
FORMAT_CHECKER.checks("int64")(_int_range(64))
FORMAT_CHECKER.checks("byte")(_is_base64)

CrdValidator: Final = jsonschema.validators.extend(jsonschema.Draft4Validator, {"x-kubernetes-list-type": _list_type})


def count_cel_rules(schema: Any) -> int:
    """Number of ``x-kubernetes-validations`` rules (CEL) in a schema; they are not evaluated offline."""
    if isinstance(schema, list):
        return sum(count_cel_rules(s) for s in schema)
    if not isinstance(schema, dict):
        return 0
    own = len(schema.get("x-kubernetes-validations", []))
    return own + sum(count_cel_rules(v) for v in schema.values())


@dataclass(frozen=True)
class CrdVersion:
    """One version of one CRD."""

    group: str
    kind: str
    version: str
    served: bool
    storage: bool
    scope: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class CrReport:
    """Outcome of a successful custom-resource validation."""

    api_version: str
    kind: str
    storage_version: str
    unchecked_cel_rules: int


class CrdCatalog:
    """Every CRD version found in a directory of CRD YAML files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._versions: dict[tuple[str, str], dict[str, CrdVersion]] = {}
        for path in sorted(directory.glob("*.yaml")):
            for doc in yaml.load_all(path.read_text(), Loader=_YAML_LOADER):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    self._add(doc)
        if not self._versions:
            raise SchemaNotFoundError(f"no CustomResourceDefinition in {directory}")

    def _add(self, crd: Mapping[str, Any]) -> None:
        spec = crd["spec"]
        key = (spec["group"], spec["names"]["kind"])
        for v in spec["versions"]:
            schema = v.get("schema", {}).get("openAPIV3Schema")
            if schema is None:
                continue
            self._versions.setdefault(key, {})[v["name"]] = CrdVersion(
                group=spec["group"],
                kind=spec["names"]["kind"],
                version=v["name"],
                served=bool(v.get("served")),
                storage=bool(v.get("storage")),
                scope=spec.get("scope", "Namespaced"),
                schema=schema,
            )

    def kinds(self) -> set[tuple[str, str]]:
        """All ``(group, kind)`` pairs known to the catalog."""
        return set(self._versions)

    def lookup(self, api_version: str, kind: str) -> CrdVersion:
        """The CRD version named by ``apiVersion``/``kind``; raises if unknown or not served."""
        if "/" not in api_version:
            raise SchemaNotFoundError(f"{api_version}/{kind} is a core kind, not a custom resource")
        group, version = api_version.split("/", 1)
        versions = self._versions.get((group, kind))
        if versions is None:
            raise SchemaNotFoundError(f"no CRD for {kind} in group {group} under {self.directory}")
        found = versions.get(version)
        if found is None or not found.served:
            served = sorted(v.version for v in versions.values() if v.served)
            raise SchemaNotFoundError(f"{kind} version {version} is not served (served: {served})")
        return found

    def storage_version(self, group: str, kind: str) -> str:
        """The storage version of ``group``/``kind``."""
        return next(v.version for v in self._versions[(group, kind)].values() if v.storage)

    def validate(self, obj: Mapping[str, Any], *, kubernetes_version: str) -> CrReport:
        """Validate a custom resource; raises SchemaValidationError listing every violation."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        crd = self.lookup(api_version, kind)
        what = f"{kind} {obj.get('metadata', {}).get('name', '<unnamed>')}"
        errors = _errors(_crd_validator(self.directory, crd.group, crd.kind, crd.version, crd.schema), obj)
        errors += _metadata_errors(obj.get("metadata"), kubernetes_version, crd.scope)
        if errors:
            raise SchemaValidationError(what, errors)
        return CrReport(
            api_version=api_version,
            kind=kind,
            storage_version=self.storage_version(crd.group, crd.kind),
            unchecked_cel_rules=count_cel_rules(crd.schema),
        )


_VALIDATORS: dict[tuple[str, str, str, str], Any] = {}


def _crd_validator(directory: Path, group: str, kind: str, version: str, schema: Mapping[str, Any]) -> Any:
    """A cached validator for one CRD version."""
    key = (str(directory), group, kind, version)
    if key not in _VALIDATORS:
        json_schema = to_json_schema(copy.deepcopy(dict(schema)))
        CrdValidator.check_schema(json_schema)
        _VALIDATORS[key] = CrdValidator(json_schema, format_checker=FORMAT_CHECKER)
    return _VALIDATORS[key]


def _errors(validator: Any, instance: Any) -> list[str]:
    """Every validation error as ``path: message``, sorted by path."""
    found = []
    for err in validator.iter_errors(instance):
        path = ".".join(str(p) for p in err.absolute_path) or "<root>"
        found.append(f"{path}: {err.message}")
    return sorted(found)


# ---------------------------------------------------------------------------------------------
# Core kinds (kubernetes_validate)


def kubernetes_schema_version(version: str) -> str:
    """The newest ``kubernetes_validate`` schema version not newer than ``version`` (e.g. ``1.34.0``)."""
    wanted = tuple(int(p) for p in version.lstrip("v").split(".")[:2])
    candidates = [v for v in kv_utils.all_versions() if tuple(int(p) for p in v.split(".")[:2]) <= wanted]
    if not candidates:
        raise SchemaNotFoundError(f"kubernetes_validate has no schemas for Kubernetes {version} or older")
    return str(candidates[-1])


@cache
def _definitions(schema_version: str) -> Mapping[str, Any]:
    """kubernetes_validate's strict ``_definitions.json`` for one schema version."""
    ref = importlib_resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{schema_version}-local-strict/_definitions.json"
    )
    loaded: Mapping[str, Any] = json.loads(ref.read_text())
    return loaded


@cache
def _object_meta_validator(kubernetes_version: str) -> Any:
    """A validator for ObjectMeta using kubernetes_validate's strict definitions."""
    defs = _definitions(kubernetes_schema_version(kubernetes_version))
    registry = referencing.Registry().with_resource(defs["$id"], referencing.Resource.from_contents(defs))
    schema = {"$ref": f"{defs['$id']}#/$defs/{OBJECT_META_REF}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _metadata_errors(metadata: Any, kubernetes_version: str, scope: str) -> list[str]:
    """Validate ``metadata`` against ObjectMeta and the name/namespace rules of the CRD's scope."""
    if not isinstance(metadata, dict):
        return ["metadata: missing or not an object"]
    errors = [f"metadata.{e}" for e in _errors(_object_meta_validator(kubernetes_version), metadata)]
    name = metadata.get("name")
    if name is not None and not _DNS_SUBDOMAIN.fullmatch(str(name)):
        errors.append(f"metadata.name: {name!r} is not an RFC 1123 subdomain")
    if scope == "Cluster" and "namespace" in metadata:
        errors.append("metadata.namespace: set on a cluster-scoped kind")
    if scope == "Namespaced" and not metadata.get("namespace"):
        errors.append("metadata.namespace: missing on a namespaced kind")
    return errors


def is_builtin(api_version: str, kind: str, kubernetes_version: str) -> bool:
    """Whether Kubernetes itself serves ``apiVersion``/``kind`` (kubernetes_validate has its schema)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    ref = importlib_resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{kubernetes_schema_version(kubernetes_version)}-local-strict/"
        f"{kind.lower()}-{group_version}.json"
    )
    if not ref.is_file():
        return False
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    gvks = json.loads(ref.read_text()).get("x-kubernetes-group-version-kind", [])
    return any(g.get("group") == group and g.get("kind") == kind for g in gvks)


def validate_core(obj: Mapping[str, Any], kubernetes_version: str) -> str:
    """Validate a core-kind object with kubernetes_validate (strict); returns the schema version used."""
    try:
        used: str = kubernetes_validate.validate(dict(obj), kubernetes_version.lstrip("v"), strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        name = obj.get("metadata", {}).get("name", "<unnamed>")
        raise SchemaValidationError(f"{obj.get('kind')} {name}", [f"{path}: {err.message}"]) from err
    except kubernetes_validate.SchemaNotFoundError as err:
        raise SchemaNotFoundError(err.message) from err
    return used


# ---------------------------------------------------------------------------------------------
# Chart values


def validate_chart_values(values: Mapping[str, Any], schema_path: Path) -> None:
    """Validate Helm values against a chart's ``values.schema.json``."""
    schema = json.loads(schema_path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    errors = _errors(cls(schema), dict(values))
    if errors:
        raise SchemaValidationError(f"values for {schema_path.name}", errors)
