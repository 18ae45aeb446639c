"""The versions domain: every chart, image and Cluster API provider the platform installs, pinned.

The defaults come from the compatibility matrix in ``reference/k8s_stack.md`` section 0 (Cluster API
v1.12 + CAPMOX v0.9 + in-cluster IPAM v1.1 + Kamaji control-plane provider v0.20, Kube-OVN v1.16 with
Cilium 1.19, proxmox-csi chart 0.5.x); CAAPH is not in that matrix, see ``Versions.caaph``. Promotion
moves one commit, and therefore one ``Versions``, through the stacks; a stack may canary a different
version with a small override mapping::

    versions = resolve_versions({"cilium": "1.19.6", "kamaji_image_tag": "26.9.1-edge"})

Unknown keys are rejected with the list of known keys, so a typo in ``Pulumi.<stack>.yaml`` fails the
preview instead of silently installing the default.

``VersionsConfig`` is the ``versions`` key of the stack configuration (camelCase YAML); its defaults are
the pins of ``DEFAULT_VERSIONS``, so every default is written once. The compatibility checks of a version
set are in ``config.compatibility``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from config.base import KAMAJI_TAG, ChartVersion, ConfigModel, KubeVersion, ReleaseTag, TemplateName, pattern

__all__ = [
    "DEFAULT_VERSIONS",
    "ChartRef",
    "VersionOverrideError",
    "Versions",
    "VersionsConfig",
    "kubernetes_minor",
    "resolve_versions",
]

_CHART_KEYS: Final = ("chart", "repo", "version")
_RANGE_CHARS: Final = re.compile(r"[\s*^~<>=|,]")


class VersionOverrideError(ValueError):
    """A per-stack version override names an unknown key or carries an unusable value."""


def _require_pin(value: object, where: str) -> str:
    """Return ``value`` if it is a non-empty exact version string, else raise VersionOverrideError."""
    if not isinstance(value, str) or not value.strip():
        raise VersionOverrideError(f"{where}: expected a non-empty string, got {value!r}")
    if _RANGE_CHARS.search(value):
        raise VersionOverrideError(f"{where}: {value!r} is a range or contains spaces; pin one exact version")
    return value


@dataclass(frozen=True, kw_only=True)
class ChartRef:
    """A Helm chart pinned to one exact version in one repository."""

    chart: str
    """Chart name inside the repository (e.g. ``cilium``)."""

    repo: str
    """Repository: an ``https://`` Helm index URL or an ``oci://`` registry prefix (without the chart)."""

    version: str
    """Exact chart version; ranges are rejected so that promotion moves a known artefact."""

    def __post_init__(self) -> None:
        if not self.chart or "/" in self.chart:
            raise VersionOverrideError(f"chart name {self.chart!r} must be a bare name without '/'")
        if not self.repo.startswith(("https://", "oci://")):
            raise VersionOverrideError(f"chart {self.chart}: repo {self.repo!r} must start with https:// or oci://")
        _require_pin(self.version, f"chart {self.chart} version")

    @property
    def is_oci(self) -> bool:
        """Whether the chart lives in an OCI registry (then Helm takes ``oci://.../<chart>`` as chart)."""
        return self.repo.startswith("oci://")

    @property
    def oci_reference(self) -> str:
        """The full ``oci://registry/path/<chart>`` reference Helm expects for OCI charts."""
        return f"{self.repo.rstrip('/')}/{self.chart}"


@dataclass(frozen=True, kw_only=True)
class Versions:
    """Every version the platform-service components install, with the reference's defaults."""

    kubernetes: str = "v1.34.8"
    """Kubernetes version of the management cluster (Kamaji edge needs v1.33+)."""

    cert_manager: ChartRef = ChartRef(chart="cert-manager", repo="https://charts.jetstack.io", version="v1.20.2")
    """cert-manager, a prerequisite of the CAPI operator, every CAPI provider and Kamaji."""

    capi_operator: ChartRef = ChartRef(
        chart="cluster-api-operator",
        repo="https://kubernetes-sigs.github.io/cluster-api-operator",
        version="0.28.0",
    )
    """The cluster-api-operator chart (CRDs + operator Deployment)."""

    cilium: ChartRef = ChartRef(chart="cilium", repo="https://helm.cilium.io/", version="1.19.5")
    """Cilium, chained onto Kube-OVN in generic-veth mode."""

    kube_ovn: ChartRef = ChartRef(chart="kube-ovn", repo="https://kubeovn.github.io/kube-ovn/", version="v1.16.2")
    """Kube-OVN, classic ``kube-ovn`` chart values layout."""

    proxmox_csi: ChartRef = ChartRef(
        chart="proxmox-csi-plugin", repo="oci://ghcr.io/sergelogvinov/charts", version="0.5.9"
    )
    """proxmox-csi-plugin chart (app v0.19.1)."""

    snapshot_controller: ChartRef = ChartRef(
        chart="snapshot-controller", repo="https://piraeus.io/helm-charts/", version="3.0.5"
    )
    """external-snapshotter CRDs + snapshot-controller, installed only when CSI snapshots are enabled."""

    kamaji: ChartRef = ChartRef(chart="kamaji", repo="https://clastix.github.io/charts", version="0.0.0+latest")
    """Kamaji chart; ``0.0.0+latest`` is the only public version, so the image tag is the real pin."""

    kamaji_image_repository: str = "docker.io/clastix/kamaji"
    """Kamaji controller image repository."""

    kamaji_image_tag: str = "26.8.2-edge"
    """Kamaji edge release tag (the chart default pulls ``latest`` with ``pullPolicy: Always``)."""

    metallb: ChartRef = ChartRef(chart="metallb", repo="https://metallb.github.io/metallb", version="0.16.1")
    """MetalLB, the optional LoadBalancer implementation for Kamaji tenant control-plane Services."""

    proxmox_ccm: ChartRef = ChartRef(
        chart="proxmox-cloud-controller-manager", repo="oci://ghcr.io/sergelogvinov/charts", version="0.2.28"
    )
    """Proxmox CCM (app v0.13.1): node topology labels that follow VM migrations."""

    velero: ChartRef = ChartRef(chart="velero", repo="https://vmware-tanzu.github.io/helm-charts", version="12.0.3")
    """Velero (app 1.18.1) for backups (operations layer)."""

    victoria_metrics_operator: ChartRef = ChartRef(
        chart="victoria-metrics-operator", repo="https://victoriametrics.github.io/helm-charts/", version="0.61.0"
    )
    """VictoriaMetrics operator (operations layer: metrics and logs)."""

    fluent_bit: ChartRef = ChartRef(chart="fluent-bit", repo="https://fluent.github.io/helm-charts", version="0.48.9")
    """Fluent Bit log shipping (operations layer)."""

    vm_template: str = "ubuntu-2404-kube"
    """Default Proxmox VM template name, promoted together with the Kubernetes version."""

    capi_core: str = "v1.12.8"
    """Cluster API core, kubeadm bootstrap and kubeadm control-plane providers (CAPMOX v0.9 e2e)."""

    capmox: str = "v0.9.0"
    """Cluster API provider for Proxmox (API infrastructure.cluster.x-k8s.io/v1alpha2)."""

    ipam_in_cluster: str = "v1.1.0"
    """In-cluster IPAM provider (first release with CAPI v1beta2 support)."""

    kamaji_control_plane_provider: str = "v0.20.0"
    """Kamaji CAPI control-plane provider (KamajiControlPlane v1alpha2 only)."""

    caaph: str = "v0.6.2"
    """Cluster API Add-on Provider for Helm (``AddonProvider/helm``; serves HelmChartProxy v1alpha1).

    Series 0.5+ claims contract v1beta2 (kubernetes-sigs/cluster-api-addon-provider-helm#476); v0.6.2
    is the release CAPZ adopted on CAPI v1.12.3 (kubernetes-sigs/cluster-api-provider-azure#6201 after
    #6127), cut before CAAPH moved to CAPI v1.13 (kubernetes-sigs/cluster-api-addon-provider-helm#540).
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, ChartRef):
                _require_pin(value, f.name)
        if not re.fullmatch(r"v\d+\.\d+\.\d+", self.kubernetes):
            raise VersionOverrideError(f"kubernetes: {self.kubernetes!r} must look like v1.34.8")

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Versions:
        """Return a copy with ``overrides`` merged on top; unknown keys raise VersionOverrideError.

        Keys are field names (``snake_case``; ``camelCase`` and ``kebab-case`` spellings are accepted).
        A chart field takes either a version string or a mapping with any of ``chart``, ``repo`` and
        ``version``; every other field takes a string.
        """
        if not overrides:
            return self
        known = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        unknown: list[str] = []
        for raw_key, value in overrides.items():
            key = _normalise_key(str(raw_key))
            if key not in known:
                unknown.append(str(raw_key))
                continue
            current = getattr(self, key)
            if isinstance(current, ChartRef):
                changes[key] = _override_chart(current, value, key)
            else:
                changes[key] = _require_pin(value, key)
        if unknown:
            raise VersionOverrideError(
                f"unknown version key(s) {', '.join(sorted(unknown))}; known keys: {', '.join(sorted(known))}"
            )
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, str]:
        """Flatten to ``{key: version}`` (charts as ``name@version``) for a stack output or a promotion check."""
        flat: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flat[f.name] = f"{value.chart}@{value.version}" if isinstance(value, ChartRef) else value
        return flat


def _normalise_key(key: str) -> str:
    """Map ``certManager`` / ``cert-manager`` / ``cert_manager`` to the field name ``cert_manager``."""
    key = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).replace("-", "_")
    return key.lower()


def _override_chart(current: ChartRef, value: object, key: str) -> ChartRef:
    """Apply a version string or a partial ``{chart, repo, version}`` mapping to ``current``."""
    if isinstance(value, str):
        return dataclasses.replace(current, version=_require_pin(value, f"{key}.version"))
    if isinstance(value, Mapping):
        bad = sorted(str(k) for k in value if k not in _CHART_KEYS)
        if bad:
            raise VersionOverrideError(
                f"unknown key(s) {', '.join(bad)} under {key}; known keys: {', '.join(_CHART_KEYS)}"
            )
        fields = {str(k): _require_pin(v, f"{key}.{k}") for k, v in value.items()}
        return dataclasses.replace(current, **fields)
    raise VersionOverrideError(f"{key}: expected a version string or a mapping, got {value!r}")


DEFAULT_VERSIONS: Final = Versions()
"""The versions promoted by this commit."""


def resolve_versions(overrides: Mapping[str, Any] | None = None) -> Versions:
    """Return the defaults with a stack's ``overrides`` merged on top (see ``Versions.with_overrides``)."""
    return DEFAULT_VERSIONS.with_overrides(overrides)


def kubernetes_minor(version: str) -> str:
    """Return ``"1.34"`` for ``"v1.34.8"`` (the form schema validators are keyed by)."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", version)
    if match is None:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return f"{match.group(1)}.{match.group(2)}"


_D = DEFAULT_VERSIONS


class VersionsConfig(ConfigModel):
    """The promotable set: versions that move together from dev to staging to prod.

    Keys match the fields of ``Versions`` (camelCase); every value is one exact version.
    """

    kubernetes: KubeVersion = _D.kubernetes
    """Kubernetes of the management cluster and the default for tenants."""
    vm_template: TemplateName = _D.vm_template
    """Default VM template name (from templates)."""
    capi_core: ReleaseTag = _D.capi_core
    """Cluster API core, kubeadm bootstrap and control-plane providers."""
    capmox: ReleaseTag = _D.capmox
    """CAPMOX infrastructure provider."""
    caaph: ReleaseTag = _D.caaph
    """Cluster API add-on provider for Helm (installs each tenant's CNI)."""
    ipam_in_cluster: ReleaseTag = _D.ipam_in_cluster
    """In-cluster IPAM provider."""
    kamaji_control_plane_provider: ReleaseTag = _D.kamaji_control_plane_provider
    """Kamaji control-plane provider for Cluster API."""
    kamaji_image_tag: Annotated[str, pattern(KAMAJI_TAG)] = _D.kamaji_image_tag
    """Kamaji image tag (edge release); the real pin, as the chart has one public version."""
    kamaji: ChartVersion = _D.kamaji.version
    """Kamaji chart."""
    cert_manager: ChartVersion = _D.cert_manager.version
    """cert-manager chart."""
    capi_operator: ChartVersion = _D.capi_operator.version
    """cluster-api-operator chart."""
    cilium: ChartVersion = _D.cilium.version
    """Cilium chart."""
    kube_ovn: ChartVersion = _D.kube_ovn.version
    """Kube-OVN chart."""
    proxmox_csi: ChartVersion = _D.proxmox_csi.version
    """proxmox-csi-plugin chart."""
    proxmox_ccm: ChartVersion = _D.proxmox_ccm.version
    """proxmox-cloud-controller-manager chart."""
    snapshot_controller: ChartVersion = _D.snapshot_controller.version
    """snapshot-controller chart (only with CSI snapshots)."""
    metallb: ChartVersion = _D.metallb.version
    """MetalLB chart."""
    velero: ChartVersion = _D.velero.version
    """Velero chart."""
    victoria_metrics_operator: ChartVersion = _D.victoria_metrics_operator.version
    """victoria-metrics-operator chart."""
    fluent_bit: ChartVersion = _D.fluent_bit.version
    """fluent-bit chart."""


DEFAULT_VERSION_SET: Final[Mapping[str, str]] = VersionsConfig().model_dump(by_alias=True)
"""The promotable set with this commit's defaults, keyed as under ``versions`` in a stack file."""
