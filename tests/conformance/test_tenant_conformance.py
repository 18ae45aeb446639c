"""Every object a tenant emits validates against its schema.

Objects are what the program sends to the kubernetes provider under mocks (``tests/components/tenants/test_tenant.py``
harness), in three variants that together switch every tenant option: the whole platform in render mode
(bundled etcd, LoadBalancer, configured and default quotas, VMID and tag-selected templates), the whole
platform on a brought-in cluster (PostgreSQL DataStore, no Kube-OVN), and one tenant alone with
``serviceType: NodePort`` and no CNI. Custom resources are checked against the *served* version of their
CRD in ``../shared/reference/crds`` (skipped with a reason when absent), core kinds with
``kubernetes_validate`` at the management cluster's version. Integral numbers are compared as integers
(``providers.proxmox.wire.plain_numbers``): the wire carries every number as a double, the provider sends JSON.

Stated limits:

* CEL rules (``x-kubernetes-validations``) are not evaluated by ``schemas.py``; the ones a tenant can
  break are asserted by hand below (template source, IP pool, VMID range, full clone).
* The CAPMOX CRDs use Go's ``^(?i)...`` regex form, which Python's ``re`` refuses ("global flags not at the
  start"); the catalog here is built from copies with the flag moved to the front (same language).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from providers.proxmox.wire import plain_numbers
from tests.components.tenants.test_tenant import (
    TEAM_A,
    TEAM_B,
    Run,
    _tenant,
    build_platform,
    build_tenant,
    external,
    render,
    stack_raw,
)
from tests.conformance.conftest import KUBERNETES_VERSION
from tests.conformance.schemas import (
    CrdCatalog,
    SchemaNotFoundError,
    SchemaValidationError,
    is_builtin,
    validate_core,
)

TENANT_CR_KINDS = {
    ("kubeovn.io", "Subnet"),
    ("cluster.x-k8s.io", "Cluster"),
    ("cluster.x-k8s.io", "MachineDeployment"),
    ("controlplane.cluster.x-k8s.io", "KamajiControlPlane"),
    ("infrastructure.cluster.x-k8s.io", "ProxmoxCluster"),
    ("infrastructure.cluster.x-k8s.io", "ProxmoxMachineTemplate"),
    ("bootstrap.cluster.x-k8s.io", "KubeadmConfigTemplate"),
    ("addons.cluster.x-k8s.io", "HelmChartProxy"),
}
"""Custom-resource kinds the variants together must emit (a silently dropped kind fails a test)."""

TENANT_CORE_KINDS = {"Namespace", "ResourceQuota", "LimitRange", "Role", "RoleBinding", "NetworkPolicy", "Secret"}


@pytest.fixture(scope="session")
def tenant_catalog(crd_path: Path, tmp_path_factory: pytest.TempPathFactory) -> CrdCatalog:
    """The reference CRDs, with Go's mid-pattern ``(?i)`` moved to the front so Python's ``re`` accepts it."""
    out = tmp_path_factory.mktemp("crds")
    for path in crd_path.glob("*.yaml"):
        (out / path.name).write_text(path.read_text().replace("^(?i)", "(?i)^"))
    return CrdCatalog(out)


@pytest.fixture(scope="session")
def variants() -> dict[str, Run]:
    """What each tenant variant registers."""
    return {
        "platform-render": build_platform(render(stack_raw([TEAM_A, TEAM_B, _tenant(2, "team-c")]))),
        "platform-brought-in": build_platform(external(stack_raw())),
        "tenant-nodeport-no-cni": build_tenant(stack_raw(), "team-a", cni=None, service_type="NodePort"),
    }


def tenant_objects(run: Run) -> list[dict[str, Any]]:
    """Every Kubernetes object registered under a Tenant component, as the provider would send it."""
    tenants = {r.urn for r in run.rec.registrations if r.type == "platform:tenant:Tenant"}
    return [
        plain_numbers(r.inputs)
        for r in run.rec.registrations
        if r.parent in tenants and r.custom and r.type.startswith("kubernetes:")
    ]


def _group(obj: dict[str, Any]) -> str:
    return str(obj["apiVersion"]).rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""


def _describe(obj: dict[str, Any]) -> str:
    md = obj.get("metadata", {})
    return f"{obj['apiVersion']}/{obj['kind']} {md.get('namespace', '')}/{md.get('name')}"


def _custom(run: Run) -> list[dict[str, Any]]:
    return [o for o in tenant_objects(run) if not is_builtin(o["apiVersion"], o["kind"], KUBERNETES_VERSION)]


def _core(run: Run) -> list[dict[str, Any]]:
    return [o for o in tenant_objects(run) if is_builtin(o["apiVersion"], o["kind"], KUBERNETES_VERSION)]


# ---------------------------------------------------------------------------------------------
# The tenants' objects


@pytest.mark.parametrize("variant", ["platform-render", "platform-brought-in", "tenant-nodeport-no-cni"])
def test_every_tenant_custom_resource_validates_against_its_served_crd(
    tenant_catalog: CrdCatalog, variants: dict[str, Run], variant: str
) -> None:
    failures, checked = [], 0
    for obj in _custom(variants[variant]):
        try:
            tenant_catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)
            checked += 1
        except (SchemaValidationError, SchemaNotFoundError) as err:
            failures.append(f"{_describe(obj)}: {err}")
    assert not failures, "\n".join(failures)
    assert checked >= 6


def test_tenant_custom_resources_use_the_storage_version(tenant_catalog: CrdCatalog, variants: dict[str, Run]) -> None:
    for run in variants.values():
        for obj in _custom(run):
            report = tenant_catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)
            assert obj["apiVersion"] == f"{_group(obj)}/{report.storage_version}", _describe(obj)


def test_the_variants_cover_every_tenant_kind(variants: dict[str, Run]) -> None:
    custom = {(_group(o), o["kind"]) for run in variants.values() for o in _custom(run)}
    core = {o["kind"] for run in variants.values() for o in _core(run)}
    assert custom == TENANT_CR_KINDS
    assert core == TENANT_CORE_KINDS


def test_every_tenant_kind_has_a_local_crd(tenant_catalog: CrdCatalog, variants: dict[str, Run]) -> None:
    kinds = {(_group(o), o["kind"]) for run in variants.values() for o in _custom(run)}
    assert kinds - tenant_catalog.kinds() == set()


@pytest.mark.parametrize("variant", ["platform-render", "platform-brought-in", "tenant-nodeport-no-cni"])
def test_every_tenant_core_object_validates_with_kubernetes_schemas(variants: dict[str, Run], variant: str) -> None:
    failures = []
    for obj in _core(variants[variant]):
        try:
            validate_core(obj, KUBERNETES_VERSION)
        except SchemaValidationError as err:
            failures.append(f"{_describe(obj)}: {err}")
    assert not failures, "\n".join(failures)


def test_helm_chart_proxies_validate_against_the_caaph_crd(
    tenant_catalog: CrdCatalog, variants: dict[str, Run]
) -> None:
    proxies = [o for run in variants.values() for o in _custom(run) if o["kind"] == "HelmChartProxy"]
    assert len(proxies) == 5  # three rendered tenants, two brought-in ones, none without a CNI
    for proxy in proxies:
        tenant_catalog.validate(proxy, kubernetes_version=KUBERNETES_VERSION)
        assert proxy["apiVersion"] == "addons.cluster.x-k8s.io/v1alpha1"


def test_the_cel_rules_a_tenant_can_break_hold(variants: dict[str, Run]) -> None:
    """The CEL rules of the CRDs that concern fields the tenant sets (not evaluated by the catalog)."""
    for run in variants.values():
        for obj in _custom(run):
            spec = obj["spec"]
            if obj["kind"] == "ProxmoxMachineTemplate":
                machine = spec["template"]["spec"]
                assert "templateSelector" in machine or {"templateID", "sourceNode"} <= set(machine)
                assert machine["full"] or ("format" not in machine and "storage" not in machine)
                assert machine["vmIDRange"]["end"] >= machine["vmIDRange"]["start"]
            if obj["kind"] == "ProxmoxCluster":
                assert spec["ipv4Config"]["addresses"], "ipv4Config.addresses.size() > 0"
            if obj["kind"] == "KamajiControlPlane":
                agent = spec["addons"]["konnectivity"]["agent"]
                assert not (agent["mode"] == "DaemonSet" and agent.get("replicas"))


# ---------------------------------------------------------------------------------------------
# The validators reject broken tenant objects


def _first(variants: dict[str, Run], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(o for o in _custom(variants["platform-render"]) if o["kind"] == kind))


@pytest.mark.parametrize(
    ("kind", "mutate", "message"),
    [
        ("ProxmoxMachineTemplate", lambda s: s["template"]["spec"].update(memoryMiB=4100), "multiple of 8"),
        ("ProxmoxMachineTemplate", lambda s: s["template"]["spec"].update(tags=["bad tag"]), "does not match"),
        ("ProxmoxMachineTemplate", lambda s: s["template"]["spec"].update(target="pve1"), "'target' was unexpected"),
        (
            "ProxmoxMachineTemplate",
            lambda s: s["template"]["spec"]["network"]["networkDevices"][0].update(name="eth0"),
            "does not match",
        ),
        ("MachineDeployment", lambda s: s.pop("clusterName"), "'clusterName' is a required property"),
        (
            "MachineDeployment",
            lambda s: s["template"]["spec"]["infrastructureRef"].update(apiVersion="x/v1"),
            "'apiVersion' was unexpected",
        ),
        ("KamajiControlPlane", lambda s: s["network"].update(serviceType="Ingress"), "is not one of"),
        ("KamajiControlPlane", lambda s: s["addons"]["konnectivity"]["server"].pop("port"), "'port' is a required"),
        ("Cluster", lambda s: s["controlPlaneRef"].pop("apiGroup"), "'apiGroup' is a required property"),
        ("ProxmoxCluster", lambda s: s.pop("dnsServers"), "'dnsServers' is a required property"),
        ("Subnet", lambda s: s.update(privateSubnet=True), "'privateSubnet' was unexpected"),
        (
            "KubeadmConfigTemplate",
            lambda s: s["template"]["spec"]["joinConfiguration"]["nodeRegistration"].update(
                kubeletExtraArgs={"provider-id": "x"}
            ),
            "is not of type 'array'",
        ),
    ],
)
def test_crd_validation_rejects_broken_tenant_objects(
    tenant_catalog: CrdCatalog, variants: dict[str, Run], kind: str, mutate: Any, message: str
) -> None:
    obj = _first(variants, kind)
    tenant_catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)  # the unbroken one passes
    mutate(obj["spec"])
    with pytest.raises(SchemaValidationError, match=message):
        tenant_catalog.validate(obj, kubernetes_version=KUBERNETES_VERSION)


@pytest.mark.parametrize(
    ("kind", "mutate", "message"),
    [
        ("NetworkPolicy", lambda o: o["spec"].update(policyTypes="Ingress"), "policyTypes"),
        ("NetworkPolicy", lambda o: o["spec"].update(podSelecter={}), "podSelecter"),
        ("ResourceQuota", lambda o: o["spec"]["hard"].update(pods=True), "pods"),
        ("Role", lambda o: o["rules"][0].pop("verbs"), "'verbs' is a required property"),
        ("RoleBinding", lambda o: o.pop("roleRef"), "'roleRef' is a required property"),
    ],
)
def test_core_validation_rejects_broken_tenant_objects(
    variants: dict[str, Run], kind: str, mutate: Any, message: str
) -> None:
    obj = copy.deepcopy(next(o for o in _core(variants["platform-render"]) if o["kind"] == kind))
    validate_core(obj, KUBERNETES_VERSION)
    mutate(obj)
    with pytest.raises(SchemaValidationError, match=message):
        validate_core(obj, KUBERNETES_VERSION)


def test_the_caaph_crd_rejects_broken_proxies(tenant_catalog: CrdCatalog, variants: dict[str, Run]) -> None:
    proxy = copy.deepcopy(_first(variants, "HelmChartProxy"))
    tenant_catalog.validate(proxy, kubernetes_version=KUBERNETES_VERSION)
    spec = proxy["spec"]
    for broken, message in [
        ({**spec, "chart": "cilium"}, "chart"),
        ({k: v for k, v in spec.items() if k != "repoURL"}, "repoURL"),
        ({**spec, "clusterSelector": {"matchLabels": {"a": 1}}}, "string"),
    ]:
        with pytest.raises(SchemaValidationError, match=message):
            tenant_catalog.validate({**proxy, "spec": broken}, kubernetes_version=KUBERNETES_VERSION)
