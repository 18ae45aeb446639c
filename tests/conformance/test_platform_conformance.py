"""Every object the platform services emit validates against its schema.

Objects come from the pulumi mocks (``tests/components/services/test_platform_services.py``): what the program would
send to the kubernetes provider, with secret wrappers removed. Custom resources are checked against
the served version of their CRD in ``../shared/reference/crds``; core kinds against Kubernetes'
own schemas at the management cluster's version; chart values against a chart's published values
schema where one is stored next to the CRDs. Each validator is also shown to reject a broken object.

Limits (stated, not hidden): CEL rules (``x-kubernetes-validations``) are counted, not evaluated;
chart *contents* are not rendered (no network to Helm repositories here), so objects inside charts
are out of scope.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import KUBERNETES_VERSION, SKIP_REASON, VARIANTS
from tests.conformance.schemas import (
    CrdCatalog,
    CrdValidator,
    SchemaNotFoundError,
    SchemaValidationError,
    crds_dir,
    is_builtin,
    kubernetes_schema_version,
    to_json_schema,
    validate_chart_values,
    validate_core,
)
from tools.recording import CHART, RELEASE, Recording, Registration

CHART_VALUE_SCHEMAS = {"cluster-api-operator": "capi-operator_chart_values.schema.json"}
"""Chart name -> published values schema stored beside the CRDs."""


EXPECTED_CR_KINDS = {
    ("operator.cluster.x-k8s.io", "CoreProvider"),
    ("operator.cluster.x-k8s.io", "BootstrapProvider"),
    ("operator.cluster.x-k8s.io", "ControlPlaneProvider"),
    ("operator.cluster.x-k8s.io", "InfrastructureProvider"),
    ("operator.cluster.x-k8s.io", "IPAMProvider"),
    ("operator.cluster.x-k8s.io", "AddonProvider"),
    ("kamaji.clastix.io", "DataStore"),
    ("snapshot.storage.k8s.io", "VolumeSnapshotClass"),
    ("metallb.io", "IPAddressPool"),
    ("metallb.io", "L2Advertisement"),
}
"""Custom-resource kinds the variants together must emit (so a silently dropped CR fails a test)."""


def _group(obj: dict[str, Any]) -> str:
    api_version = str(obj["apiVersion"])
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _objects(rec: Recording) -> list[tuple[Registration, dict[str, Any]]]:
    return [(r, r.inputs) for r in rec.kubernetes_objects()]


def _split(rec: Recording) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(core objects, custom resources) of one recording."""
    core: list[dict[str, Any]] = []
    custom: list[dict[str, Any]] = []
    for _, obj in _objects(rec):
        (core if is_builtin(obj["apiVersion"], obj["kind"], KUBERNETES_VERSION) else custom).append(obj)
    return core, custom


def _describe(obj: dict[str, Any]) -> str:
    md = obj.get("metadata", {})
    return f"{obj['apiVersion']}/{obj['kind']} {md.get('namespace', '')}/{md.get('name', '<auto>')}"


# ---------------------------------------------------------------------------------------------
# The platform's objects


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_custom_resource_validates_against_its_served_crd(
    catalog: CrdCatalog, recordings: dict[str, Recording], variant: str
) -> None:
    _, custom = _split(recordings[variant])
    failures, checked = [], 0
    for obj in custom:
        try:
            catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)
            checked += 1
        except (SchemaValidationError, SchemaNotFoundError) as err:
            failures.append(f"{_describe(obj)}: {err}")
    assert not failures, "\n".join(failures)
    assert checked >= 5


def test_the_variants_cover_every_custom_resource_kind(recordings: dict[str, Recording]) -> None:
    kinds = {(_group(o), o["kind"]) for rec in recordings.values() for o in _split(rec)[1]}
    assert kinds == EXPECTED_CR_KINDS


def test_custom_resources_use_the_storage_version(catalog: CrdCatalog, recordings: dict[str, Recording]) -> None:
    stale = []
    for rec in recordings.values():
        for obj in _split(rec)[1]:
            report = catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)
            if obj["apiVersion"] != f"{_group(obj)}/{report.storage_version}":
                stale.append(f"{_describe(obj)} (storage version is {report.storage_version})")
    assert not stale, stale


def test_every_kind_has_a_local_crd(catalog: CrdCatalog, recordings: dict[str, Recording]) -> None:
    missing = {(_group(o), o["kind"]) for rec in recordings.values() for o in _split(rec)[1]} - catalog.kinds()
    assert not missing, f"kinds without a schema to validate against: {missing}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_core_object_validates_with_kubernetes_schemas(recordings: dict[str, Recording], variant: str) -> None:
    core, _ = _split(recordings[variant])
    kinds = {o["kind"] for o in core}
    assert {"Namespace", "Secret", "StorageClass", "Node"} <= kinds
    failures = []
    for obj in core:
        try:
            used = validate_core(obj, KUBERNETES_VERSION)
            assert used == "1.34"
        except SchemaValidationError as err:
            failures.append(f"{_describe(obj)}: {err}")
    assert not failures, "\n".join(failures)


def test_chart_values_validate_against_published_schemas(crd_path: Path, recordings: dict[str, Recording]) -> None:
    validated = []
    for rec in recordings.values():
        for r in rec.of_type(RELEASE) + rec.of_type(CHART):
            chart = str(r.inputs["chart"]).rsplit("/", 1)[-1]
            schema = CHART_VALUE_SCHEMAS.get(chart)
            if schema is None or not (crd_path / schema).is_file():
                continue
            validate_chart_values(r.inputs.get("values", {}), crd_path / schema)
            validated.append((r.type, chart))
    assert (RELEASE, "cluster-api-operator") in validated
    assert (CHART, "cluster-api-operator") in validated


# ---------------------------------------------------------------------------------------------
# The validators reject broken objects


def _core_provider() -> dict[str, Any]:
    return {
        "apiVersion": "operator.cluster.x-k8s.io/v1alpha2",
        "kind": "CoreProvider",
        "metadata": {"name": "cluster-api", "namespace": "capi-system"},
        "spec": {"version": "v1.12.8", "manager": {"featureGates": {"ClusterTopology": True}}},
    }


def _datastore() -> dict[str, Any]:
    ref = {"secretReference": {"name": "pg", "namespace": "kamaji-system", "keyPath": "password"}}
    return {
        "apiVersion": "kamaji.clastix.io/v1alpha1",
        "kind": "DataStore",
        "metadata": {"name": "default"},
        "spec": {"driver": "PostgreSQL", "endpoints": ["pg:5432"], "basicAuth": {"username": ref, "password": ref}},
    }


def _addon_provider() -> dict[str, Any]:
    return {
        "apiVersion": "operator.cluster.x-k8s.io/v1alpha2",
        "kind": "AddonProvider",
        "metadata": {"name": "helm", "namespace": "caaph-system"},
        "spec": {"version": "v0.6.2"},
    }


def test_known_good_objects_pass(catalog: CrdCatalog) -> None:
    catalog.validate(_core_provider(), kubernetes_version=KUBERNETES_VERSION)
    catalog.validate(_addon_provider(), kubernetes_version=KUBERNETES_VERSION)
    report = catalog.validate(_datastore(), kubernetes_version=KUBERNETES_VERSION)
    assert report.unchecked_cel_rules > 0, "CEL rules must be reported, not silently skipped"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o["spec"].update(verison="v1"), "'verison' was unexpected"),
        (lambda o: o["spec"].update(version=1), "is not of type 'string'"),
        (lambda o: o["spec"]["manager"]["featureGates"].update(ClusterTopology="yes"), "not of type 'boolean'"),
        (lambda o: o["spec"].update(configSecret={"namespace": "x"}), "'name' is a required property"),
        (
            lambda o: o["spec"].update(
                deployment={"containers": [{"name": "manager", "resources": {"limits": {"cpu": True}}}]}
            ),
            "cpu",
        ),
        (
            lambda o: o["spec"].update(
                deployment={"containers": [{"name": "m", "resources": {"claims": [{"name": "gpu"}, {"name": "gpu"}]}}]}
            ),
            "duplicate map key",
        ),
        (lambda o: o["metadata"].update(name="Cluster_API"), "RFC 1123"),
        (lambda o: o["metadata"].pop("namespace"), "missing on a namespaced kind"),
        (lambda o: o["metadata"].update(labels={"a": 1}), "metadata.labels.a"),
        (lambda o: o.update(status={}, extra=1), "'extra' was unexpected"),
    ],
)
def test_crd_validation_rejects_broken_custom_resources(catalog: CrdCatalog, mutate: Any, message: str) -> None:
    obj = copy.deepcopy(_core_provider())
    mutate(obj)
    with pytest.raises(SchemaValidationError, match=message):
        catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o["spec"].update(helm={"version": "v0.6.2"}), "'helm' was unexpected"),
        (lambda o: o["spec"].update(version=["v0.6.2"]), "is not of type 'string'"),
        (lambda o: o["spec"].update(fetchConfig={"url": 1}), "is not of type 'string'"),
        (lambda o: o["metadata"].pop("namespace"), "missing on a namespaced kind"),
    ],
)
def test_crd_validation_rejects_broken_addon_providers(catalog: CrdCatalog, mutate: Any, message: str) -> None:
    obj = copy.deepcopy(_addon_provider())
    mutate(obj)
    with pytest.raises(SchemaValidationError, match=message):
        catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o["spec"].update(driver="Postgres"), "is not one of"),
        (lambda o: o["spec"].update(endpoints=[]), "should be non-empty|is too short"),
        (lambda o: o["spec"]["basicAuth"].pop("username"), "'username' is a required property"),
        (lambda o: o["metadata"].update(namespace="kamaji-system"), "cluster-scoped"),
        (lambda o: o["spec"]["basicAuth"]["password"].update(content="not base64!"), "is not a 'byte'"),
    ],
)
def test_crd_validation_rejects_broken_datastores(catalog: CrdCatalog, mutate: Any, message: str) -> None:
    obj = copy.deepcopy(_datastore())
    mutate(obj)
    with pytest.raises(SchemaValidationError, match=message):
        catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)


def test_unserved_versions_and_unknown_kinds_are_refused(catalog: CrdCatalog) -> None:
    vsc = {
        "apiVersion": "snapshot.storage.k8s.io/v1beta1",
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": "x"},
        "driver": "d",
        "deletionPolicy": "Delete",
    }
    with pytest.raises(SchemaNotFoundError, match=r"v1beta1 is not served \(served: \['v1'\]\)"):
        catalog.validate(vsc, kubernetes_version=KUBERNETES_VERSION)
    with pytest.raises(SchemaNotFoundError, match="no CRD for Widget"):
        catalog.validate({**vsc, "apiVersion": "example.com/v1", "kind": "Widget"}, kubernetes_version="1.34")
    catalog.validate({**vsc, "apiVersion": "snapshot.storage.k8s.io/v1"}, kubernetes_version=KUBERNETES_VERSION)


def test_schema_translation_handles_kubernetes_extensions() -> None:
    schema = to_json_schema(
        {
            "type": "object",
            "properties": {
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "size": {"x-kubernetes-int-or-string": True},
                "maybe": {"type": "string", "nullable": True},
                "count": {"type": "integer", "format": "int32"},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            },
        }
    )
    from tests.conformance.schemas import FORMAT_CHECKER

    validator = CrdValidator(schema, format_checker=FORMAT_CHECKER)
    good = {"port": "http", "size": 3, "maybe": None, "count": 7, "tags": ["a", "b"], "free": {"x": 1}}
    assert not list(validator.iter_errors(good))
    for bad, message in [
        ({"port": True}, "is not valid under any of the given schemas"),
        ({"size": 1.5}, "is not valid under any of the given schemas"),
        ({"count": 2**40}, "is not a 'int32'"),
        ({"tags": ["a", "a"]}, "duplicate item"),
        ({"unknown": 1}, "'unknown' was unexpected"),
        ({"maybe": 3}, "is not of type"),
    ]:
        errors = [e.message for e in validator.iter_errors(bad)]
        assert any(message in e for e in errors), (bad, errors)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": 1}}, "stringData.a"),
        (
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "sc"},
                "provisioner": "csi.proxmox.sinextra.dev",
                "allowVolumeExpansion": "yes",
            },
            "allowVolumeExpansion",
        ),
        (
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "sc"}},
            "'provisioner' is a required property",
        ),
        ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"nmae": "x"}}, "metadata"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "date": {}}, "date"),
    ],
)
def test_core_validation_rejects_broken_objects(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaValidationError, match=message):
        validate_core(obj, KUBERNETES_VERSION)


def test_core_validation_is_pinned_to_the_management_cluster_version() -> None:
    assert kubernetes_schema_version(KUBERNETES_VERSION) == "1.34.0"
    assert kubernetes_schema_version("v1.99.1").startswith("1.")
    with pytest.raises(SchemaNotFoundError):
        kubernetes_schema_version("v1.2.0")


def test_chart_values_validation_rejects_broken_values(crd_path: Path) -> None:
    schema = crd_path / CHART_VALUE_SCHEMAS["cluster-api-operator"]
    validate_chart_values({"core": {"cluster-api": {"version": "v1.12.8"}}}, schema)
    with pytest.raises(SchemaValidationError, match="core"):
        validate_chart_values({"core": "cluster-api"}, schema)


def test_missing_crd_directory_is_reported_for_skipping(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLATFORM_CRDS_DIR", str(tmp_path / "absent"))
    assert crds_dir() is None
    monkeypatch.setenv("PLATFORM_CRDS_DIR", str(tmp_path))
    assert crds_dir() is None, "an empty directory is not a CRD directory"
    (tmp_path / "x.yaml").write_text(json.dumps({"kind": "ConfigMap"}))
    assert crds_dir() == tmp_path
    with pytest.raises(SchemaNotFoundError, match="no CustomResourceDefinition"):
        CrdCatalog(tmp_path)
    assert "../shared/reference/crds not found" in SKIP_REASON
