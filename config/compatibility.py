"""The version compatibility matrix and the preflight of a stack's version set against it.

Sources: reference/k8s_stack.md section 0 and the Cluster API release notes ("Kubernetes version
support"). Version "lines" match a version when they are equal to it or a prefix of it at a component
boundary: "v0.9" matches "v0.9.0", "0.0.0+latest" only itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from config.base import Problems, join
from config.versions import VersionsConfig


@dataclass(frozen=True)
class ClusterApiLine:
    """What pairs with one Cluster API minor release."""

    management_kubernetes: tuple[str, str]
    """Inclusive Kubernetes minor range of the management cluster."""
    workload_kubernetes: tuple[str, str]
    """Inclusive Kubernetes minor range of workload (tenant) clusters."""
    capmox: tuple[str, ...]
    """CAPMOX lines built for this CAPI contract."""
    ipam_in_cluster: tuple[str, ...]
    """In-cluster IPAM lines."""
    kamaji_provider: tuple[str, ...]
    """Kamaji control-plane provider lines."""


@dataclass(frozen=True)
class KamajiLine:
    """Kubernetes support of one line of Kamaji edge releases."""

    management_kubernetes_min: str
    """Oldest Kubernetes minor of the management cluster."""
    tenant_kubernetes: tuple[str, str]
    """Inclusive Kubernetes minor range of tenant control planes."""


@dataclass(frozen=True)
class CompatibilityMatrix:
    """The version combinations this program supports."""

    cluster_api: Mapping[str, ClusterApiLine]
    """Cluster API minor ("v1.12") to what pairs with it."""
    kamaji: Mapping[str, KamajiLine]
    """Kamaji edge release year ("26" for 26.x.y-edge) to its Kubernetes support."""
    kube_ovn_cilium: Mapping[str, tuple[str, ...]]
    """Kube-OVN line to the Cilium lines it is chained with."""
    charts: Mapping[str, tuple[str, ...]]
    """``versions`` key of a chart to its supported lines."""


COMPATIBILITY_MATRIX: Final = CompatibilityMatrix(
    cluster_api={
        "v1.12": ClusterApiLine(
            management_kubernetes=("v1.31", "v1.35"),
            workload_kubernetes=("v1.29", "v1.35"),
            capmox=("v0.9",),
            ipam_in_cluster=("v1.1",),
            kamaji_provider=("v0.20",),
        ),
        "v1.11": ClusterApiLine(
            management_kubernetes=("v1.30", "v1.34"),
            workload_kubernetes=("v1.28", "v1.34"),
            capmox=("v0.8", "v0.9"),
            ipam_in_cluster=("v1.1",),
            kamaji_provider=("v0.20",),
        ),
    },
    kamaji={"26": KamajiLine(management_kubernetes_min="v1.33", tenant_kubernetes=("v1.30", "v1.35"))},
    kube_ovn_cilium={"v1.16": ("1.18", "1.19"), "v1.15": ("1.19",)},
    charts={
        "certManager": ("v1.18", "v1.19", "v1.20"),
        "capiOperator": ("0.28",),
        "proxmoxCsi": ("0.5",),
        "kamaji": ("0.0.0+latest",),
    },
)
"""Supported version combinations (keep in step with reference/k8s_stack.md section 0)."""


@dataclass(frozen=True)
class TenantVersion:
    """The Kubernetes version one tenant asks for, as the version check needs it."""

    index: int
    name: str
    explicit: str | None
    """``tenants[].kubernetesVersion``, or None when the tenant takes ``versions.kubernetes``."""


def line_matches(version: str, line: str) -> bool:
    """Whether ``version`` belongs to ``line`` ("v0.9" matches "v0.9.0" and "v0.9.1", not "v0.90.0")."""
    return version == line or version.startswith(line + ".")


def _minor(version: str) -> tuple[int, int]:
    """(major, minor) of "v1.34.8", "1.19.5" or "v1.34"."""
    parts = version.lstrip("v").split(".")
    return int(parts[0]), int(parts[1])


def _minor_line(version: str) -> str:
    major, minor = _minor(version)
    prefix = "v" if version.startswith("v") else ""
    return f"{prefix}{major}.{minor}"


def _in_range(version: str, low: str, high: str | None) -> bool:
    minor = _minor(version)
    return _minor(low) <= minor and (high is None or minor <= _minor(high))


def check_versions(
    v: VersionsConfig, *, management_external: bool, tenants: Sequence[TenantVersion], out: Problems
) -> None:
    """The version set pairs within the matrix; the management cluster and every tenant can run theirs."""
    matrix = COMPATIBILITY_MATRIX
    capi = matrix.cluster_api.get(_minor_line(v.capi_core))
    if capi is None:
        out.add(
            "versions.capiCore",
            f"{v.capi_core} is not in the compatibility matrix; supported: "
            f"{join(line + '.x' for line in matrix.cluster_api)}",
        )
    else:
        capi_line = _minor_line(v.capi_core)
        for key, version, lines in (
            ("capmox", v.capmox, capi.capmox),
            ("ipamInCluster", v.ipam_in_cluster, capi.ipam_in_cluster),
            ("kamajiControlPlaneProvider", v.kamaji_control_plane_provider, capi.kamaji_provider),
        ):
            if not any(line_matches(version, line) for line in lines):
                out.add(
                    f"versions.{key}",
                    f"{version} does not pair with Cluster API {capi_line}; allowed: "
                    f"{join(line + '.x' for line in lines)}",
                )
    kamaji = matrix.kamaji.get(v.kamaji_image_tag.split(".")[0])
    if kamaji is None:
        out.add(
            "versions.kamajiImageTag",
            f"{v.kamaji_image_tag} is not in the compatibility matrix; supported: "
            f"{join(year + '.x.y-edge' for year in matrix.kamaji)}",
        )
    if not management_external:
        _check_management_kubernetes(v, capi, kamaji, out)
    _check_tenant_kubernetes(v, capi, kamaji, tenants, out)
    cilium_lines = matrix.kube_ovn_cilium.get(_minor_line(v.kube_ovn))
    if cilium_lines is None:
        out.add(
            "versions.kubeOvn",
            f"{v.kube_ovn} is not in the compatibility matrix; supported: "
            f"{join(line + '.x' for line in matrix.kube_ovn_cilium)}",
        )
    elif not any(line_matches(v.cilium, line) for line in cilium_lines):
        out.add(
            "versions.cilium",
            f"{v.cilium} is not chained with Kube-OVN {_minor_line(v.kube_ovn)}; allowed: "
            f"{join(line + '.x' for line in cilium_lines)}",
        )
    values = v.model_dump(by_alias=True)
    for key, lines in matrix.charts.items():
        version = values[key]
        if not any(line_matches(version, line) for line in lines):
            shown = join(line if "+" in line else line + ".x" for line in lines)
            out.add(f"versions.{key}", f"{version} is not in the compatibility matrix; supported: {shown}")


def _check_management_kubernetes(
    v: VersionsConfig, capi: ClusterApiLine | None, kamaji: KamajiLine | None, out: Problems
) -> None:
    low, high = "v1.0", None
    needs: list[str] = []
    if capi is not None:
        low, high = capi.management_kubernetes
        needs.append(f"Cluster API {_minor_line(v.capi_core)} supports {low}-{high}")
    if kamaji is not None:
        if _minor(kamaji.management_kubernetes_min) > _minor(low):
            low = kamaji.management_kubernetes_min
        needs.append(f"Kamaji {v.kamaji_image_tag} needs {kamaji.management_kubernetes_min} or newer")
    if needs and not _in_range(v.kubernetes, low, high):
        out.add("versions.kubernetes", f"{v.kubernetes} cannot run the management cluster ({'; '.join(needs)})")


def _check_tenant_kubernetes(
    v: VersionsConfig,
    capi: ClusterApiLine | None,
    kamaji: KamajiLine | None,
    tenants: Sequence[TenantVersion],
    out: Problems,
) -> None:
    ranges: list[tuple[str, tuple[str, str]]] = []
    if capi is not None:
        ranges.append((f"Cluster API {_minor_line(v.capi_core)} workload clusters", capi.workload_kubernetes))
    if kamaji is not None:
        ranges.append((f"Kamaji {v.kamaji_image_tag} tenants", kamaji.tenant_kubernetes))
    defaulted: list[str] = []
    for tenant in tenants:
        version = tenant.explicit or v.kubernetes
        bad = [f"{who}: {lo}-{hi}" for who, (lo, hi) in ranges if not _in_range(version, lo, hi)]
        if not bad:
            continue
        if tenant.explicit is None:
            defaulted.append(tenant.name)
            continue
        out.add(f"tenants[{tenant.index}].kubernetesVersion", f"{version} is not supported ({'; '.join(bad)})")
    if defaulted:
        bad = [f"{who}: {lo}-{hi}" for who, (lo, hi) in ranges if not _in_range(v.kubernetes, lo, hi)]
        out.add(
            "versions.kubernetes",
            f"{v.kubernetes} is the version of tenants {join(defaulted)} and is not supported for "
            f"tenants ({'; '.join(bad)}); change it or set tenants[].kubernetesVersion",
        )
