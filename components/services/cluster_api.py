"""ClusterApi: cert-manager, the cluster-api-operator, and the provider CRs for this platform.

Order (``reference/k8s_stack.md`` section 1.1 and 7):

1. cert-manager (with its CRDs) - every CAPI webhook gets its certificate from it;
2. the cluster-api-operator chart **without** provider values: the chart would render providers as
   Helm post-install hooks, which ``helm.v4.Chart`` never runs and which need ``--wait``;
3. provider namespaces, the CAPMOX variables Secret, then the CRs ``CoreProvider`` (cluster-api),
   ``BootstrapProvider`` (kubeadm), ``ControlPlaneProvider`` (kamaji, optionally kubeadm),
   ``InfrastructureProvider`` (proxmox), ``IPAMProvider`` (in-cluster) and ``AddonProvider`` (helm,
   CAAPH: serves the ``HelmChartProxy`` that installs each tenant's CNI), each depending on the
   operator release (its CRDs and webhooks) and, except the core, on the ``CoreProvider``. ``ready``
   holds every provider CR, so tenants (and their HelmChartProxy) wait for CAAPH too.

CAPMOX gets the **bare** Proxmox URL (it appends ``/api2/json`` itself) and TLS verification on:
``PROXMOX_INSECURE=false`` on the manager container, plus ``--proxmox-root-cert-file`` and a mounted
ConfigMap when a CA bundle is given. The operator treats a ``configSecret`` as immutable, so the
variables Secret is auto-named and replaced (new name) whenever its content changes; the provider CR
then points at the new name and the operator re-renders the provider.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes
import yaml

from components.k8s import (
    ChartInstall,
    child_opts,
    install_chart,
    namespace,
    proxmox_base_url,
    require_dns_label,
    require_provider,
)
from config.versions import DEFAULT_VERSIONS, Versions

__all__ = ["OPERATOR_API_VERSION", "ClusterApi", "ClusterApiArgs", "ProviderNamespaces"]

OPERATOR_API_VERSION: Final = "operator.cluster.x-k8s.io/v1alpha2"
"""API version of the operator's provider CRs."""

CAPMOX_DEPLOYMENT: Final = "capmox-controller-manager"
CAPMOX_CA_DIR: Final = "/etc/capmox/proxmox-ca"
_WAIT_INSTALLED: Final = {"pulumi.com/waitFor": "condition=ProviderInstalled"}


@dataclass(frozen=True, kw_only=True)
class ProviderNamespaces:
    """Namespaces of the operator and each provider (clusterctl defaults unless noted)."""

    cert_manager: str = "cert-manager"
    """cert-manager release namespace."""

    operator: str = "capi-operator-system"
    """cluster-api-operator release namespace."""

    core: str = "capi-system"
    """CoreProvider ``cluster-api``."""

    bootstrap: str = "capi-kubeadm-bootstrap-system"
    """BootstrapProvider ``kubeadm``."""

    kubeadm_control_plane: str = "capi-kubeadm-control-plane-system"
    """ControlPlaneProvider ``kubeadm`` (only when enabled)."""

    kamaji_control_plane: str = "capi-kamaji-system"
    """ControlPlaneProvider ``kamaji``; not clusterctl's ``kamaji-system``, which the Kamaji chart owns."""

    infrastructure: str = "capmox-system"
    """InfrastructureProvider ``proxmox``."""

    ipam: str = "capi-ipam-in-cluster-system"
    """IPAMProvider ``in-cluster``."""

    addon: str = "caaph-system"
    """AddonProvider ``helm`` (CAAPH; its release manifests' own namespace)."""

    def all(self) -> list[str]:
        """Every namespace name, in declaration order."""
        return [
            self.cert_manager,
            self.operator,
            self.core,
            self.bootstrap,
            self.kubeadm_control_plane,
            self.kamaji_control_plane,
            self.infrastructure,
            self.ipam,
            self.addon,
        ]


@dataclass(frozen=True, kw_only=True)
class ClusterApiArgs:
    """Inputs of ClusterApi; the CAPMOX token stays a secret Input."""

    provider: kubernetes.Provider
    """Explicit provider of the management cluster."""

    proxmox_url: str
    """Proxmox API URL, with or without ``/api2/json`` (CAPMOX receives the bare ``https://host:port``)."""

    capmox_token_id: pulumi.Input[str]
    """CAPMOX API token id ``user@realm!name`` (secret Input)."""

    capmox_token_secret: pulumi.Input[str]
    """CAPMOX API token secret UUID (secret Input)."""

    proxmox_ca_bundle: str | None = None
    """PEM CA bundle that signed the Proxmox API certificate; mounted into the CAPMOX manager."""

    tls_insecure: bool = False
    """Skip TLS verification toward Proxmox (CAPMOX's own default is insecure; ours is not)."""

    github_token: pulumi.Input[str] | None = None
    """Optional GitHub token (secret) put in every provider's configSecret against API rate limits."""

    kubeadm_control_plane: bool = False
    """Also install the kubeadm ControlPlaneProvider (only for KubeadmControlPlane clusters)."""

    cluster_topology: bool = True
    """Enable the ``ClusterTopology`` feature gate (ClusterClass) on core and CAPMOX."""

    install_cert_manager: bool = True
    """Install cert-manager here; set False when the cluster already has it (then pass it in depends_on)."""

    namespaces: ProviderNamespaces = field(default_factory=ProviderNamespaces)
    """Namespaces of the operator and providers."""

    versions: Versions = DEFAULT_VERSIONS
    """Pinned versions (``cert_manager``, ``capi_operator``, ``capi_core``, ``capmox``, ``caaph``, ...)."""

    charts: ChartInstall = field(default_factory=ChartInstall)
    """How charts are installed (templated or as releases, from repositories or a local directory)."""

    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Resources that must exist first (typically the pod network)."""

    def __post_init__(self) -> None:
        proxmox_base_url(self.proxmox_url)
        if self.tls_insecure and self.proxmox_ca_bundle:
            raise ValueError("tls_insecure and proxmox_ca_bundle exclude each other")
        if self.proxmox_ca_bundle is not None and "BEGIN CERTIFICATE" not in self.proxmox_ca_bundle:
            raise ValueError("proxmox_ca_bundle must be PEM (-----BEGIN CERTIFICATE-----)")
        names = self.namespaces.all()
        for ns in names:
            require_dns_label(ns, "namespace")
        if len(set(names)) != len(names):
            raise ValueError(f"provider namespaces must be distinct (configSecrets are per namespace): {names}")


def operator_chart_values() -> dict[str, Any]:
    """cluster-api-operator chart values: no providers (they are separate CRs), sane resources."""
    return {
        "resources": {
            "manager": {
                "requests": {"cpu": "100m", "memory": "100Mi"},
                "limits": {"cpu": "200m", "memory": "512Mi"},
            }
        },
    }


def capmox_ca_patch() -> dict[str, Any]:
    """Operator ``patches`` entry mounting the Proxmox CA ConfigMap into the CAPMOX manager.

    An RFC 6902 JSON patch that *appends* a volume and a volumeMount. Not a "strategic merge"
    patch: the operator applies those with ``jsonpatch.MergePatch`` (RFC 7396), which replaces whole
    lists and would drop the manager container's image and the webhook certificate volume.
    """
    ops = [
        {
            "op": "add",
            "path": "/spec/template/spec/volumes/-",
            "value": {"name": "proxmox-ca", "configMap": {"name": "capmox-proxmox-ca"}},
        },
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/volumeMounts/-",
            "value": {"name": "proxmox-ca", "mountPath": CAPMOX_CA_DIR, "readOnly": True},
        },
    ]
    return {
        "target": {"group": "apps", "version": "v1", "kind": "Deployment", "name": CAPMOX_DEPLOYMENT},
        "patch": yaml.safe_dump(ops, sort_keys=False),
    }


class ClusterApi(pulumi.ComponentResource):
    """cert-manager, the CAPI operator and the CAPI/CAPMOX/IPAM/Kamaji/CAAPH provider CRs."""

    cert_manager: pulumi.Resource | None
    """cert-manager Release/Chart (None when not installed here)."""

    operator: pulumi.Resource
    """cluster-api-operator Release/Chart."""

    capmox_secret: kubernetes.core.v1.Secret
    """CAPMOX variables Secret (the provider's configSecret)."""

    providers: dict[str, kubernetes.apiextensions.CustomResource]
    """Provider CRs by ``<Kind>/<name>``."""

    ready: list[pulumi.Resource]
    """What dependents (Kamaji, tenants) should ``depends_on``."""

    operator_values: dict[str, Any]
    """cluster-api-operator chart values."""

    def __init__(self, name: str, args: ClusterApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:capi:ClusterApi", name, None, opts)
        provider = require_provider(args.provider, "ClusterApi")
        first = list(args.depends_on)
        nss = args.namespaces
        v = args.versions

        ns_res: dict[str, kubernetes.core.v1.Namespace] = {}

        def ns(ns_name: str) -> kubernetes.core.v1.Namespace:
            if ns_name not in ns_res:
                ns_res[ns_name] = namespace(
                    f"{name}-ns-{ns_name}", ns_name, opts=child_opts(self, provider, depends_on=first)
                )
            return ns_res[ns_name]

        self.cert_manager = None
        operator_deps: list[pulumi.Resource] = [*first, ns(nss.operator)]
        if args.install_cert_manager:
            self.cert_manager = install_chart(
                f"{name}-cert-manager",
                chart=v.cert_manager,
                release_name="cert-manager",
                namespace=nss.cert_manager,
                values={"crds": {"enabled": True, "keep": True}},
                install=args.charts,
                opts=child_opts(self, provider, depends_on=[*first, ns(nss.cert_manager)]),
            )
            operator_deps.append(self.cert_manager)
        self.operator_values = operator_chart_values()
        self.operator = install_chart(
            f"{name}-capi-operator",
            chart=v.capi_operator,
            release_name="capi-operator",
            namespace=nss.operator,
            values=self.operator_values,
            install=args.charts,
            opts=child_opts(self, provider, depends_on=operator_deps),
        )

        github: pulumi.Output[dict[str, str]] | None = None
        if args.github_token is not None:
            github = pulumi.Output.secret(args.github_token).apply(lambda t: {"github-token": t})

        def config_secret(key: str, ns_name: str, data: pulumi.Output[dict[str, str]]) -> dict[str, Any]:
            # Auto-named and replaced on change: the operator treats configSecret content as immutable.
            secret_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(data)
            secret = kubernetes.core.v1.Secret(
                f"{name}-{key}-variables",
                metadata={"namespace": ns_name},
                type="Opaque",
                string_data=secret_data,
                opts=pulumi.ResourceOptions.merge(
                    child_opts(
                        self,
                        provider,
                        depends_on=[ns(ns_name)],
                        additional_secret_outputs=["data", "stringData"],
                    ),
                    pulumi.ResourceOptions(replace_on_changes=["stringData"]),
                ),
            )
            if key == "capmox":
                self.capmox_secret = secret
            return {"name": secret.metadata.name, "namespace": ns_name}

        url = proxmox_base_url(args.proxmox_url)
        capmox_data = pulumi.Output.all(args.capmox_token_id, args.capmox_token_secret, github).apply(
            lambda parts: {
                "PROXMOX_URL": url,
                "PROXMOX_TOKEN": parts[0],
                "PROXMOX_SECRET": parts[1],
                **(parts[2] or {}),
            }
        )

        features = {"featureGates": {"ClusterTopology": True}} if args.cluster_topology else {}
        self.providers = {}

        def provider_cr(
            kind: str, provider_name: str, ns_name: str, spec: Mapping[str, Any], deps: Sequence[pulumi.Resource]
        ) -> kubernetes.apiextensions.CustomResource:
            full_spec = dict(spec)
            if github is not None and "configSecret" not in full_spec:
                full_spec["configSecret"] = config_secret(f"{provider_name}-{kind.lower()}", ns_name, github)
            cr = kubernetes.apiextensions.CustomResource(
                f"{name}-{kind.lower()}-{provider_name}",
                api_version=OPERATOR_API_VERSION,
                kind=kind,
                metadata={"name": provider_name, "namespace": ns_name, "annotations": dict(_WAIT_INSTALLED)},
                spec=full_spec,
                opts=child_opts(self, provider, depends_on=[self.operator, ns(ns_name), *deps]),
            )
            self.providers[f"{kind}/{provider_name}"] = cr
            return cr

        core_spec: dict[str, Any] = {"version": v.capi_core}
        if features:
            core_spec["manager"] = features
        core = provider_cr("CoreProvider", "cluster-api", nss.core, core_spec, ())
        provider_cr("BootstrapProvider", "kubeadm", nss.bootstrap, {"version": v.capi_core}, [core])
        if args.kubeadm_control_plane:
            provider_cr("ControlPlaneProvider", "kubeadm", nss.kubeadm_control_plane, {"version": v.capi_core}, [core])
        provider_cr(
            "ControlPlaneProvider",
            "kamaji",
            nss.kamaji_control_plane,
            {"version": v.kamaji_control_plane_provider},
            [core],
        )

        infra_deps: list[pulumi.Resource] = [core]
        container: dict[str, Any] = {
            "name": "manager",
            "env": [{"name": "PROXMOX_INSECURE", "value": "true" if args.tls_insecure else "false"}],
        }
        infra_spec: dict[str, Any] = {
            "version": v.capmox,
            "configSecret": config_secret("capmox", nss.infrastructure, capmox_data),
            "deployment": {"containers": [container]},
        }
        infra_deps.append(self.capmox_secret)
        if features:
            infra_spec["manager"] = features
        if args.proxmox_ca_bundle:
            infra_deps.append(
                kubernetes.core.v1.ConfigMap(
                    f"{name}-capmox-proxmox-ca",
                    metadata={"name": "capmox-proxmox-ca", "namespace": nss.infrastructure},
                    data={"ca.pem": args.proxmox_ca_bundle},
                    opts=child_opts(self, provider, depends_on=[ns(nss.infrastructure)]),
                )
            )
            container["args"] = {"--proxmox-root-cert-file": f"{CAPMOX_CA_DIR}/ca.pem"}
            infra_spec["patches"] = [capmox_ca_patch()]
        provider_cr("InfrastructureProvider", "proxmox", nss.infrastructure, infra_spec, infra_deps)
        provider_cr("IPAMProvider", "in-cluster", nss.ipam, {"version": v.ipam_in_cluster}, [core])
        # CAAPH: clusterctl's built-in "helm" add-on provider (fetched from its GitHub release by tag).
        provider_cr("AddonProvider", "helm", nss.addon, {"version": v.caaph}, [core])

        self.ready = list(self.providers.values())
        self.register_outputs(
            {
                "providers": sorted(self.providers),
                "operatorValues": self.operator_values,
            }
        )
