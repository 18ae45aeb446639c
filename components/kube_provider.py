"""One explicit ``kubernetes.Provider`` per cluster (default providers are disabled in ``Pulumi.yaml``).

Two modes, never mixed:

* **live**: built from a kubeconfig Output, wrapped as a secret, with a ``cluster_identifier`` that
  is a plain string known at preview (derived from the cluster name, never from the kubeconfig). The
  kubernetes provider then plans no replacement of every Kubernetes resource just because the
  kubeconfig is unknown during a preview or its credentials rotated (``DiffConfig``: an unchanged
  identifier suppresses replacement; pulumi-kubernetes#1148, #2294). Server-side apply is on (field
  ownership, conflicts reported instead of overwritten; ``*Patch`` resources need it).
* **render** (the ``local`` stack): ``render_yaml_to_directory`` and no kubeconfig. Server-side apply
  stays on: the ``*Patch`` resources other components emit are refused by the provider otherwise,
  and it keeps the ``managed-by`` label out of the rendered manifests. ``kubeconfig`` is passed as
  an empty string: the SDK would otherwise fill it from ``$KUBECONFIG``, which the provider rejects
  next to ``renderYamlToDirectory`` (pulumi-kubernetes#3498).
"""

from __future__ import annotations

import re
from typing import Any, Final

import pulumi
import pulumi_kubernetes as kubernetes
import yaml

__all__ = ["cluster_provider", "kubeconfig_server", "require_plain_identifier"]

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
    if (kubeconfig is None) == (render_dir is None):
        raise ValueError(
            f"{resource_name}: give exactly one of kubeconfig (apply to a cluster) or render_dir (render manifests)"
        )
    if render_dir is not None:
        if not render_dir.strip() or "\0" in render_dir:
            raise ValueError(f"{resource_name}: render_dir must be a directory path")
        return kubernetes.Provider(
            resource_name,
            cluster_identifier=identifier,
            kubeconfig="",
            render_yaml_to_directory=render_dir,
            enable_server_side_apply=True,
            opts=opts,
        )
    return kubernetes.Provider(
        resource_name,
        cluster_identifier=identifier,
        kubeconfig=pulumi.Output.secret(kubeconfig),
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
