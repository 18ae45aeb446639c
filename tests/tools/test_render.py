"""``tools.render`` on the dev stack: the real engine, the real plugin, the real chart templates.

One render of ``dev`` (its Proxmox side against a simulator seeded from the stack, its Kubernetes side
in the provider's render mode, with the pinned charts from ``../shared/charts``), then each test reads
the rendered objects: the two known offline traps (Kube-OVN's node lookup, Helm's default Kubernetes
version), real chart output for every installed chart, and no secret value anywhere.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from config import load_stack_config
from tests.support.kube import kube_binaries
from tools.kube_api import BIN_ENV
from tools.render import REDACTED, SHARED_CHARTS, RenderReport, render_stack
from tools.scratch import ToolchainError, toolchain_bin
from tools.stack_file import read_stack_file

pytestmark = pytest.mark.e2e

STACK = "dev"

KUBE_VERSION_CHARTS = {
    # chart directory prefix: an object only that chart renders
    "cert-manager": ("Deployment", "cert-manager"),
    "cilium": ("DaemonSet", "cilium"),
    "kamaji": ("Deployment", "kamaji"),
    "kube-ovn": ("Deployment", "kube-ovn-controller"),
}
"""Charts with a ``kubeVersion`` constraint that Helm's built-in default (v1.20) fails."""


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch
) -> Iterator[RenderReport]:
    """``dev`` rendered once for the module."""
    if not SHARED_CHARTS.is_dir():
        pytest.skip(f"{SHARED_CHARTS} not found: the render uses the pinned charts' unpacked copies")
    root = tmp_path_factory.mktemp("render")
    try:
        toolchain_bin(root / "scratch" / "home")
    except ToolchainError as exc:
        pytest.skip(f"the pulumi CLI or its kubernetes plugin could not be built: {exc}")
    monkeypatch_module.setenv(BIN_ENV, str(kube_binaries()))
    yield render_stack(STACK, root / "out", SHARED_CHARTS, root / "scratch")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """A MonkeyPatch for module-scoped fixtures."""
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def documents(report: RenderReport) -> list[tuple[Path, dict[str, Any]]]:
    """Every rendered object with the file it is in."""
    found = []
    for path in sorted(report.out.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc:
                found.append((path, doc))
    return found


def named(report: RenderReport, kind: str, name: str) -> dict[str, Any]:
    """The one rendered object of ``kind`` named ``name``."""
    hits = [d for _, d in documents(report) if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind} {name}: {len(hits)} rendered"
    return hits[0]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    """Environment variables of every container of a Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for c in containers for e in c.get("env") or []}


def test_the_render_lays_out_one_file_per_object_with_crds_first(rendered: RenderReport) -> None:
    top = {p.name for p in rendered.out.iterdir()}
    assert top == {"0-crd", "1-manifest"}, top
    crds = [d for p, d in documents(rendered) if p.parent.name == "0-crd"]
    assert crds and all(d["kind"] == "CustomResourceDefinition" for d in crds)
    per_file = [len(list(yaml.safe_load_all(p.read_text()))) for p in rendered.out.rglob("*.yaml")]
    assert rendered.files == len(per_file) and max(per_file) == 1


def test_kube_ovn_database_addresses_are_the_control_plane_addresses(rendered: RenderReport) -> None:
    # Without a cluster, Kube-OVN's node lookup returns nothing and the chart would render these empty.
    cfg = load_stack_config(read_stack_file(STACK).raw_config())
    cidr = ipaddress.ip_network(cfg.networks.management.cidr)
    central = env_of(named(rendered, "Deployment", "ovn-central"))["NODE_IPS"]
    controller = env_of(named(rendered, "Deployment", "kube-ovn-controller"))["OVN_DB_IPS"]
    assert central == controller and central, (central, controller)
    addresses = [ipaddress.ip_address(a) for a in central.split(",")]
    assert len(addresses) == cfg.management_cluster.control_planes.count
    assert all(a in cidr for a in addresses), addresses


@pytest.mark.parametrize("chart", sorted(KUBE_VERSION_CHARTS))
def test_charts_with_a_kube_version_constraint_render_offline(rendered: RenderReport, chart: str) -> None:
    (chart_dir,) = [d for d in SHARED_CHARTS.iterdir() if re.fullmatch(rf"{chart}-v?\d.*", d.name)]
    constraint = yaml.safe_load((chart_dir / "Chart.yaml").read_text()).get("kubeVersion")
    assert constraint, f"{chart_dir.name} has no kubeVersion: this case no longer guards the trap"
    kind, name = KUBE_VERSION_CHARTS[chart]
    obj = named(rendered, kind, name)
    # Every case is a workload: a templated pod spec with the chart's labels and images proves the chart
    # rendered (some charts, kube-ovn among them, put no labels on the workload's own metadata).
    template = obj["spec"]["template"]
    assert template["metadata"].get("labels"), f"{kind} {name} has no pod labels: not the chart's own output"
    images = [c.get("image") for c in template["spec"]["containers"]]
    assert images and all(images), f"{kind} {name} has a container without an image: {images}"


def test_no_secret_value_is_written(rendered: RenderReport) -> None:
    secrets = [d for _, d in documents(rendered) if d["kind"] == "Secret"]
    assert secrets, "the dev stack renders Secrets (CSI config, CAPMOX credentials): none found"
    for secret in secrets:
        assert "data" not in secret, secret["metadata"]["name"]
        assert set((secret.get("stringData") or {}).values()) <= {REDACTED}, secret["metadata"]["name"]
    text = "\n".join(p.read_text() for p in rendered.out.rglob("*.yaml"))
    assert "render-placeholder-" not in text
    assert not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text)
