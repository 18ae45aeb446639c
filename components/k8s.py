"""The shared Kubernetes helpers of every component: the explicit provider, charts, names, URLs.

* ``cluster_provider`` builds the one explicit ``kubernetes.Provider`` of a cluster (default providers
  are disabled in ``Pulumi.yaml``), live from a kubeconfig Output or in render mode (see below).

* ``install_chart`` installs a pinned chart: ``helm.v3.Release`` against a live cluster (real Helm:
  hooks, CRDs, ``lookup``), ``helm.v4.Chart`` in render mode (the kubernetes provider writes manifests
  to a directory and the chart is templated client-side).
* ``child_opts`` builds the options every child uses: ``parent=self`` plus the explicit provider,
  because default providers are disabled for this project.
* ``proxmox_base_url`` / ``proxmox_api_url`` normalise the one Proxmox URL the stack declares into
  the two forms the controllers want (CAPMOX: bare ``https://host:8006``; CSI: ``.../api2/json``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as kubernetes
import yaml

from config.versions import ChartRef

if TYPE_CHECKING:
    from config import StackConfig

__all__ = [
    "PSA_PRIVILEGED_LABELS",
    "ChartInstall",
    "TopLevelCustomResource",
    "child_opts",
    "cluster_provider",
    "install_chart",
    "kubeconfig_server",
    "namespace",
    "proxmox_api_url",
    "proxmox_base_url",
    "require_dns_label",
    "require_dns_subdomain",
    "require_plain_identifier",
    "require_provider",
]

PSA_PRIVILEGED_LABELS: Final[Mapping[str, str]] = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/audit": "privileged",
    "pod-security.kubernetes.io/warn": "privileged",
}
"""Pod Security Admission labels for namespaces running node agents (CNI, CSI node plugin, speakers)."""

_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN: Final = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_API_SUFFIX: Final = "/api2/json"


def require_dns_label(value: str, what: str) -> str:
    """Return ``value`` if it is an RFC 1123 label (namespace names), else raise ValueError."""
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid RFC 1123 label (lowercase, digits, '-', <= 63)")
    return value


def require_dns_subdomain(value: str, what: str) -> str:
    """Return ``value`` if it is an RFC 1123 subdomain (most object names), else raise ValueError."""
    if not _DNS_SUBDOMAIN.fullmatch(value) or ".." in value:
        raise ValueError(f"{what} {value!r} is not a valid RFC 1123 subdomain")
    return value


def require_provider(provider: object, component: str) -> kubernetes.Provider:
    """Return ``provider`` if it is an explicit ``kubernetes.Provider``, else raise TypeError."""
    if not isinstance(provider, kubernetes.Provider):
        raise TypeError(
            f"{component}: args.provider must be an explicit kubernetes.Provider "
            f"(default providers are disabled), got {type(provider).__name__}"
        )
    return provider


def child_opts(
    parent: pulumi.Resource,
    provider: kubernetes.Provider,
    *,
    depends_on: Sequence[pulumi.Resource] = (),
    additional_secret_outputs: Sequence[str] = (),
    ignore_changes: Sequence[str] = (),
) -> pulumi.ResourceOptions:
    """Options for a child resource: ``parent``, the explicit provider, and optional ordering."""
    return pulumi.ResourceOptions(
        parent=parent,
        provider=provider,
        depends_on=list(depends_on) or None,
        additional_secret_outputs=list(additional_secret_outputs) or None,
        ignore_changes=list(ignore_changes) or None,
    )


def namespace(
    resource_name: str,
    name: str,
    *,
    opts: pulumi.ResourceOptions,
    labels: Mapping[str, str] | None = None,
) -> kubernetes.core.v1.Namespace:
    """Create a Namespace explicitly (charts never create namespaces here: one owner per object)."""
    require_dns_label(name, "namespace")
    return kubernetes.core.v1.Namespace(
        resource_name,
        metadata={"name": name, "labels": dict(labels or {})},
        opts=opts,
    )


class TopLevelCustomResource(pulumi.CustomResource):
    """A custom resource whose fields sit beside ``metadata`` instead of under ``spec``.

    ``kubernetes.apiextensions.CustomResource`` in Python only forwards ``spec``; kinds such as
    ``VolumeSnapshotClass`` (``driver``, ``deletionPolicy``, ``parameters``) need their top-level
    fields passed as-is. The type token is the one the kubernetes provider expects for any CR.
    """

    def __init__(
        self,
        resource_name: str,
        *,
        api_version: str,
        kind: str,
        metadata: pulumi.Input[Mapping[str, Any]],
        fields: Mapping[str, pulumi.Input[Any]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        reserved = {"apiVersion", "kind", "metadata"} & set(fields)
        if reserved:
            raise ValueError(f"{kind}: fields must not repeat {sorted(reserved)}")
        props: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}
        super().__init__(f"kubernetes:{api_version}:{kind}", resource_name, props, opts)


@dataclass(frozen=True)
class ChartInstall:
    """How one cluster's charts are installed: templated or as Helm releases, and from where."""

    template: bool = False
    """``helm.v4.Chart``: templated, every object a Pulumi resource applied with server-side apply, hooks
    not run (render mode always templates). False: ``helm.v3.Release`` (Helm runs hooks and waits)."""
    directory: str | None = None
    """Root of unpacked charts (``<chart>-<version>/``) used instead of the charts' repositories."""
    skip_await: bool = False
    """Apply every chart's objects without waiting for them to become ready."""

    @classmethod
    def from_stack(cls, cfg: StackConfig) -> ChartInstall:
        """The stack's ``charts`` key, ``localRender`` and ``managementCluster.awaitReadiness``."""
        rendering = cfg.local_render is not None
        return cls(
            template=rendering or cfg.charts.installer == "chart",
            directory=cfg.charts.directory if cfg.charts.source == "directory" else None,
            skip_await=not cfg.management_cluster.await_readiness,
        )

    def chart_path(self, chart: ChartRef) -> str | None:
        """The local directory of ``chart``, or None when it comes from its repository."""
        if self.directory is None:
            return None
        path = Path(self.directory) / f"{chart.chart}-{chart.version}"
        if not (path / "Chart.yaml").is_file():
            # preflight (charts.directory) checks the charts it knows the stack installs; this is the backstop
            raise ValueError(f"charts.directory: no unpacked chart {chart.chart} {chart.version} at {path}")
        return str(path)


def install_chart(
    resource_name: str,
    *,
    chart: ChartRef,
    release_name: str,
    namespace: str,
    values: pulumi.Input[Mapping[str, Any]],
    install: ChartInstall,
    opts: pulumi.ResourceOptions,
    timeout_seconds: int = 900,
    skip_await: bool = False,
) -> pulumi.Resource:
    """Install ``chart`` as ``release_name`` in an existing ``namespace``, as ``install`` says.

    A ``helm.v3.Release`` is one resource with real Helm semantics (waits for readiness and for jobs,
    cleans up on a failed install); a ``helm.v4.Chart`` templates the chart (Helm hooks are not run, so
    nothing here relies on hooks) and its children are applied, or written to the provider's render
    directory. Both are valid ``depends_on`` targets: a Release is one custom resource and a Chart is a
    remote component whose construction waits for all of its children. ``skip_await`` is for charts
    whose pods cannot become ready yet (e.g. Cilium before Kube-OVN gives pods an IP).
    """
    require_dns_label(release_name, "release name")
    local = install.chart_path(chart)
    no_wait = skip_await or install.skip_await
    if install.template:
        return kubernetes.helm.v4.Chart(
            resource_name,
            chart=local or (chart.oci_reference if chart.is_oci else chart.chart),
            version=None if local else chart.version,
            repository_opts=None if local or chart.is_oci else kubernetes.helm.v4.RepositoryOptsArgs(repo=chart.repo),
            name=release_name,
            namespace=namespace,
            values=values,
            skip_await=no_wait or None,
            opts=opts,
        )
    return kubernetes.helm.v3.Release(
        resource_name,
        chart=local or (chart.oci_reference if chart.is_oci else chart.chart),
        version=None if local else chart.version,
        repository_opts=None if local or chart.is_oci else kubernetes.helm.v3.RepositoryOptsArgs(repo=chart.repo),
        name=release_name,
        namespace=namespace,
        create_namespace=False,
        values=values,
        cleanup_on_fail=True,
        skip_await=no_wait,
        wait_for_jobs=not no_wait,
        timeout=timeout_seconds,
        max_history=10,
        opts=opts,
    )


def proxmox_base_url(url: str) -> str:
    """Return ``https://host[:port]`` for a Proxmox URL given with or without ``/api2/json``.

    CAPMOX appends ``/api2/json`` itself (``url.JoinPath(base, "api2", "json")``), so it must get the
    bare form; any other path, a query, credentials in the URL or a non-HTTPS scheme are rejected.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "https":
        raise ValueError(f"Proxmox URL {url!r} must use https:// (TLS verification stays on)")
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"Proxmox URL {url!r} must be https://host[:port][/api2/json], nothing else")
    path = parts.path.rstrip("/")
    if path not in ("", _API_SUFFIX):
        raise ValueError(f"Proxmox URL {url!r} has an unexpected path {parts.path!r}")
    host = parts.hostname
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    port = f":{parts.port}" if parts.port else ""
    return f"https://{host}{port}"


def proxmox_api_url(url: str) -> str:
    """Return the ``https://host[:port]/api2/json`` form the Proxmox CSI plugin (and CCM) require."""
    return proxmox_base_url(url) + _API_SUFFIX


# --------------------------------------------------------------------------------------------------
# The explicit provider of one cluster.
#
# One explicit ``kubernetes.Provider`` per cluster (default providers are disabled in ``Pulumi.yaml``).
#
# Two modes, never mixed:
#
# * **live**: built from a kubeconfig Output, wrapped as a secret, with a ``cluster_identifier`` that
#   is a plain string known at preview (derived from the cluster name, never from the kubeconfig). The
#   kubernetes provider then plans no replacement of every Kubernetes resource just because the
#   kubeconfig is unknown during a preview or its credentials rotated (``DiffConfig``: an unchanged
#   identifier suppresses replacement; pulumi-kubernetes#1148, #2294). Server-side apply is on (field
#   ownership, conflicts reported instead of overwritten; ``*Patch`` resources need it).
# * **render** (the ``local`` stack): ``render_yaml_to_directory`` and no kubeconfig. Server-side apply
#   stays on: the ``*Patch`` resources other components emit are refused by the provider otherwise,
#   and it keeps the ``managed-by`` label out of the rendered manifests. ``kubeconfig`` is passed as
#   an empty string: the SDK would otherwise fill it from ``$KUBECONFIG``, which the provider rejects
#   next to ``renderYamlToDirectory`` (pulumi-kubernetes#3498).
# --------------------------------------------------------------------------------------------------

_IDENTIFIER: Final = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$")


def require_plain_identifier(value: object) -> str:
    """Return ``value`` if it is a plain, non-empty identifier string, else raise.

    An Output (even a resolved one) is refused: it is unknown during a preview of a new stack, which
    is exactly when an identifier must be known.
    """
    if isinstance(value, pulumi.Output):
        raise TypeError("cluster_identifier must be a plain str known at preview, not an Output")
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        raise ValueError(
            f"cluster_identifier {value!r} must be 1-128 letters, digits, '.', '_', '/' or '-' "
            "(starting and ending with a letter or digit)"
        )
    return value


def cluster_provider(
    resource_name: str,
    *,
    cluster_identifier: str,
    kubeconfig: pulumi.Input[str] | None = None,
    render_dir: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> kubernetes.Provider:
    """Create the explicit provider of one cluster: live (``kubeconfig``) or render (``render_dir``).

    Exactly one of ``kubeconfig`` and ``render_dir`` must be given; ValueError otherwise.
    """
    identifier = require_plain_identifier(cluster_identifier)
    # Each branch tests its own argument, so the type checker sees it is not None there.
    if (kubeconfig is None) == (render_dir is None):
        raise ValueError(
            f"{resource_name}: give exactly one of kubeconfig (apply to a cluster) or render_dir (render manifests)"
        )
    if kubeconfig is not None:
        return kubernetes.Provider(
            resource_name,
            cluster_identifier=identifier,
            kubeconfig=pulumi.Output.secret(kubeconfig),
            enable_server_side_apply=True,
            opts=opts,
        )
    if render_dir is None or not render_dir.strip() or "\0" in render_dir:
        raise ValueError(f"{resource_name}: render_dir must be a directory path")
    return kubernetes.Provider(
        resource_name,
        cluster_identifier=identifier,
        kubeconfig="",
        render_yaml_to_directory=render_dir,
        enable_server_side_apply=True,
        opts=opts,
    )


def kubeconfig_server(kubeconfig: str) -> str:
    """The API server URL of the kubeconfig's current context (or of its only cluster).

    Errors never quote the kubeconfig: it holds credentials.
    """
    try:
        data: Any = yaml.safe_load(kubeconfig)
    except yaml.YAMLError:
        raise ValueError("kubeconfig is not valid YAML") from None
    if not isinstance(data, dict):
        raise ValueError("kubeconfig is not a YAML mapping")
    clusters = {c.get("name"): c.get("cluster", {}) for c in data.get("clusters") or [] if isinstance(c, dict)}
    contexts = {c.get("name"): c.get("context", {}) for c in data.get("contexts") or [] if isinstance(c, dict)}
    current = data.get("current-context")
    if current in contexts:
        cluster = clusters.get(contexts[current].get("cluster"), {})
    elif len(clusters) == 1:
        cluster = next(iter(clusters.values()))
    else:
        raise ValueError("kubeconfig has no current-context and not exactly one cluster")
    server = cluster.get("server") if isinstance(cluster, dict) else None
    if not isinstance(server, str) or not server.startswith("https://"):
        raise ValueError("kubeconfig: the current cluster has no https:// server")
    return server
