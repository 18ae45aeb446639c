"""What the program declared on a cluster (from the stack's state) and what the API server really holds.

``declared_objects`` reads the Kubernetes objects of a ``pulumi stack export`` (every custom resource of
a ``kubernetes:`` type, chart children included); ``missing_objects`` reads each one back from the API
server with the ``kubernetes`` Python client. The local stack's summary and the end-to-end tests use
both, so "applied" always means "read back from the server".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One Kubernetes object by API version, kind, namespace (empty when cluster-scoped) and name."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({self.api_version})"


def declared_objects(state: Mapping[str, Any]) -> list[ObjectRef]:
    """Every Kubernetes object in a stack export (``pulumi stack export`` JSON), sorted."""
    refs = set()
    for resource in state.get("deployment", {}).get("resources", []) or []:
        type_ = str(resource.get("type", ""))
        if not resource.get("custom") or not type_.startswith("kubernetes:") or type_.startswith("pulumi:providers"):
            continue
        outputs = resource.get("outputs") or {}
        metadata = outputs.get("metadata") or {}
        api_version, kind = outputs.get("apiVersion"), outputs.get("kind")
        if not (api_version and kind and metadata.get("name")):
            continue  # a helm.v3.Release is one resource, not an object on the server
        refs.add(ObjectRef(str(api_version), str(kind), str(metadata.get("namespace") or ""), str(metadata["name"])))
    return sorted(refs)


def by_kind(refs: Iterable[ObjectRef]) -> Counter[str]:
    """How many objects of each kind."""
    return Counter(ref.kind for ref in refs)


def server_objects(api_client: Any, refs: Iterable[ObjectRef]) -> dict[ObjectRef, dict[str, Any]]:
    """The server's copy of each object of ``refs`` that exists, as a plain dict."""
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    client = dynamic.DynamicClient(api_client)
    found: dict[ObjectRef, dict[str, Any]] = {}
    for ref in refs:
        api = client.resources.get(api_version=ref.api_version, kind=ref.kind)
        try:
            obj = api.get(name=ref.name, namespace=ref.namespace or None)
        except ApiException as exc:
            if exc.status != 404:
                raise
            continue
        found[ref] = obj.to_dict()
    return found


def missing_objects(api_client: Any, refs: Iterable[ObjectRef]) -> list[ObjectRef]:
    """The objects of ``refs`` that the API server does not hold."""
    wanted = list(refs)
    found = server_objects(api_client, wanted)
    return [ref for ref in wanted if ref not in found]
