"""Guardrails that stop an unsafe stack at ``pulumi preview`` (the policies of the pack in this directory).

Importing this module starts nothing: ``policy/__main__.py`` builds the ``PolicyPack`` from ``policies()``.
It imports no project code, so the pack runs in any environment with ``policy/requirements.txt``.

The policies (all MANDATORY by default: a violation fails ``pulumi preview`` and ``pulumi up``)

=========================================  =====  ===========================================================
name                                       kind   stops
=========================================  =====  ===========================================================
``proxmox-tls-verified``                   stack  Proxmox TLS verification turned off outside the exempt stacks
                                                  (``local``): ``proxmox.verifyTls: false`` in the stack file, or
                                                  the settings it produces (CAPMOX ``PROXMOX_INSECURE=true``, a
                                                  Proxmox CSI ``config.yaml`` with ``insecure: true``)
``no-plaintext-secrets-in-config``         stack  a secret-looking value stored as plain text in the stack file
``tenant-namespace-isolation``             stack  a tenant namespace without a default-deny NetworkPolicy or
                                                  without a ResourceQuota
``proxmox-vm-ownership-and-placement``     res.   a ProxmoxVm without its owner/marker, or outside the allowed
                                                  pools and storages
``proxmox-token-least-privilege``          res.   a controller API token owned by ``root@pam`` or with
                                                  privilege separation off
``helm-chart-version-pinned``              res.   a Helm Release/Chart without one exact chart version
=========================================  =====  ===========================================================

Why the two config guardrails are stack policies that read the stack FILE
    ``proxmox.verifyTls`` never reaches a resource the engine shows a policy (the dynamic providers read it
    in ``configure()``), and whether a config value is encrypted is only visible in ``Pulumi.<stack>.yaml``
    (``secure:``). The program's preflight cannot own the "outside local" rule either: it would need an
    ``if stack == "local"`` branch, which the project forbids (environment differences are typed config
    values). So these two policies read the stack file: stack name from the policy config ``stack``, else
    ``GUARDRAILS_STACK`` (exported by ``scripts/stack.sh``), else ``PULUMI_STACK`` / the Pulumi runtime;
    project directory from the policy config ``projectDir``, else ``GUARDRAILS_PROJECT_DIR``, else the
    parent of this directory. Without a stack file the secrets policy reports itself *not applicable* and
    the TLS policy checks only the resources; ``scripts/stack.sh`` runs both file checks itself before
    every preview and deploy, without the CLI: ``python -m policy.guardrails check-config --stack dev``.

Unknown values
    During a preview, values that depend on resources not created yet are unknown. Reading one would make
    the SDK skip the WHOLE policy ("can't run policy during preview"); the helpers here read values
    one at a time and skip only the check that needs the unknown value, so the other checks still run.
    ``pulumi up`` checks again with the values known.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from pulumi_policy import (
    Policy,
    PolicyConfigSchema,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PACK_NAME: Final = "proxmox-k8s-platform-guardrails"
POLICY_DIR: Final = Path(__file__).resolve().parent

DYNAMIC_TYPE: Final = "pulumi-python:dynamic:Resource"
"""Type token of every Python dynamic resource (ProxmoxVm, ProxmoxApiToken, ...): told apart by their inputs."""
NAMESPACE_TYPE: Final = "kubernetes:core/v1:Namespace"
NETWORK_POLICY_TYPE: Final = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RESOURCE_QUOTA_TYPE: Final = "kubernetes:core/v1:ResourceQuota"
SECRET_TYPE: Final = "kubernetes:core/v1:Secret"
HELM_TYPES: Final = frozenset(
    {"kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v3:Chart", "kubernetes:helm.sh/v4:Chart"}
)
INFRASTRUCTURE_PROVIDER: Final = re.compile(r"^kubernetes:operator\.cluster\.x-k8s\.io/[^:]+:InfrastructureProvider$")
TENANT_OBJECT: Final = re.compile(
    r"^kubernetes:(cluster\.x-k8s\.io/[^:]+:Cluster|controlplane\.cluster\.x-k8s\.io/[^:]+:KamajiControlPlane"
    r"|kamaji\.clastix\.io/[^:]+:TenantControlPlane)$"
)
"""Objects that make the namespace holding them a tenant namespace (a CAPI Cluster, a Kamaji control plane)."""

TENANT_LABEL: Final = "proxmox-k8s-platform/tenant"
"""Label that marks a Namespace as a tenant's (value: the tenant name)."""

SECRET_CONFIG_KEYS: Final = frozenset(
    {
        "proxmoxTokenSecret",
        "managementKubeconfig",
        "sshPrivateKey",
        "csiEncryptionPassphrase",
        "kamajiDatastorePassword",
    }
)
"""The program's secret config keys (config.SECRET_KEYS; a unit test keeps the two in step)."""

EXACT_CHART_VERSION: Final = re.compile(
    r"^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"
)
MARKER: Final = re.compile(r"^[0-9a-f]{32}$")

DEFAULT_EXEMPT_STACKS: Final = ("local",)
DEFAULT_ALLOWED_POOLS: Final = ("k8s-platform", "k8s-t-*")
"""The pools ``components/proxmox/cluster.py`` creates for VMs (prefix ``k8s``); templates live elsewhere."""


# --------------------------------------------------------------------------------------------------
# Reading values that may be unknown during a preview
# --------------------------------------------------------------------------------------------------


class _Unknown:
    """A value not known until the resources it depends on exist."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Final = _Unknown()
_UNKNOWN_SENTINELS: Final = frozenset(
    {UNKNOWN_STRING_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_OBJECT_VALUE}
)


def is_unknown(value: object) -> bool:
    """Whether ``value`` is ``UNKNOWN`` (a function, so that mypy does not narrow ``UNKNOWN`` itself)."""
    return value is UNKNOWN


def has_key(mapping: Any, key: str) -> bool:
    """Whether a mapping has ``key``, without reading its value (which may be unknown)."""
    return isinstance(mapping, Mapping) and key in set(iter(mapping))


def value_at(mapping: Any, *path: str | int) -> Any:
    """The value at ``path`` inside ``mapping``: None when absent, ``UNKNOWN`` when not known yet."""
    current = mapping
    for part in path:
        try:
            if isinstance(part, int):
                if not isinstance(current, Sequence) or isinstance(current, str) or part >= len(current):
                    return None
                current = current[part]
            else:
                if not has_key(current, part):
                    return None
                current = current[part]
        except UnknownValueError:
            return UNKNOWN
        if isinstance(current, str) and current in _UNKNOWN_SENTINELS:
            return UNKNOWN
    return current


def items_of(mapping: Any) -> Iterator[tuple[str, Any]]:
    """(key, value) pairs of a mapping; unknown values come back as ``UNKNOWN``."""
    if not isinstance(mapping, Mapping):
        return
    for key in list(mapping):
        yield str(key), value_at(mapping, str(key))


def elements_of(sequence: Any) -> Iterator[Any]:
    """Elements of a list; unknown elements come back as ``UNKNOWN``."""
    if isinstance(sequence, Sequence) and not isinstance(sequence, str):
        for index in range(len(sequence)):
            yield value_at(sequence, index)


def _is_empty(value: Any) -> bool:
    """None, an empty mapping or an empty list (proxies included)."""
    if value is None:
        return True
    if isinstance(value, Mapping) or (isinstance(value, Sequence) and not isinstance(value, str)):
        return len(value) == 0
    return False


def _string_list(value: Any, default: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(str(v) for v in value)
    return tuple(default)


# --------------------------------------------------------------------------------------------------
# The stack being checked: its name and its stack file
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackContext:
    """What the config guardrails know about the stack: its name and its parsed stack file."""

    stack: str | None
    """Stack name, when it could be determined."""
    project: str | None
    """Project name (namespace of the program's config keys)."""
    path: Path | None
    """The stack file, when it was found."""
    plain: Mapping[str, Any] | None
    """Plain config values by full key (``project:key``); None when the file was not found."""
    secure: frozenset[str] = frozenset()
    """Full keys whose values are ``secure:`` ciphertexts."""
    problem: str = ""
    """Why the stack file is not available (empty when it is)."""

    def domain(self, key: str) -> Any:
        """A plain value of the program's namespace, e.g. ``domain("proxmox")``."""
        if self.plain is None or self.project is None:
            return None
        return self.plain.get(f"{self.project}:{key}")

    def file_name(self) -> str:
        """The stack file's name for messages."""
        return self.path.name if self.path else f"Pulumi.{self.stack or '<stack>'}.yaml"


ContextLoader = Callable[[Mapping[str, Any]], StackContext]


def _runtime_stack() -> str | None:
    try:
        import pulumi

        stack = pulumi.get_stack()
    except Exception:  # the runtime is not configured outside the engine
        return None
    return stack or None


def parse_stack_context(text: str, *, stack: str, project: str, path: Path | None = None) -> StackContext:
    """Parse the text of a stack file into a StackContext."""
    document = yaml.safe_load(text) or {}
    config = document.get("config") or {} if isinstance(document, Mapping) else {}
    plain: dict[str, Any] = {}
    secure: set[str] = set()
    for key, value in config.items():
        full = str(key) if ":" in str(key) else f"{project}:{key}"
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            secure.add(full)
        else:
            plain[full] = value
    return StackContext(stack, project, path, plain, frozenset(secure))


def load_stack_context(policy_config: Mapping[str, Any]) -> StackContext:
    """Find the stack name and read its stack file (see the module docstring for where they come from)."""
    stack = (
        policy_config.get("stack")
        or os.environ.get("GUARDRAILS_STACK")
        or os.environ.get("PULUMI_STACK")
        or _runtime_stack()
    )
    candidates = [policy_config.get("projectDir"), os.environ.get("GUARDRAILS_PROJECT_DIR"), POLICY_DIR.parent, "."]
    project_dir = next((Path(str(c)) for c in candidates if c and (Path(str(c)) / "Pulumi.yaml").is_file()), None)
    if not stack:
        return StackContext(None, None, None, None, problem="the stack name is unknown (set GUARDRAILS_STACK)")
    if project_dir is None:
        return StackContext(str(stack), None, None, None, problem="no Pulumi.yaml found (set GUARDRAILS_PROJECT_DIR)")
    project_doc = yaml.safe_load((project_dir / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    project = str(project_doc.get("name", "")) if isinstance(project_doc, Mapping) else ""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return StackContext(str(stack), project, None, None, problem=f"{path} does not exist")
    return parse_stack_context(path.read_text(encoding="utf-8"), stack=str(stack), project=project, path=path)


# --------------------------------------------------------------------------------------------------
# proxmox-tls-verified
# --------------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


def tls_evidence(resource: PolicyResource) -> list[str]:
    """Where a resource turns off TLS verification toward Proxmox (empty when it does not, or is unknown)."""
    found: list[str] = []
    props = resource.props
    if INFRASTRUCTURE_PROVIDER.match(resource.resource_type):
        for container in elements_of(value_at(props, "spec", "deployment", "containers")):
            for env in elements_of(value_at(container, "env")):
                if value_at(env, "name") == "PROXMOX_INSECURE" and _truthy(value_at(env, "value")):
                    found.append("CAPMOX runs with PROXMOX_INSECURE=true")
    elif resource.resource_type == SECRET_TYPE:
        for field_name in ("stringData", "data"):
            text = value_at(props, field_name, "config.yaml")
            if not isinstance(text, str) or "insecure" not in text:
                continue
            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            clusters = document.get("clusters") if isinstance(document, Mapping) else None
            for cluster in clusters if isinstance(clusters, list) else []:
                if isinstance(cluster, Mapping) and cluster.get("insecure") is True:
                    found.append("the Proxmox CSI config.yaml has insecure: true")
    return found


def make_tls_policy(context_loader: ContextLoader = load_stack_context) -> StackValidationPolicy:
    """The ``proxmox-tls-verified`` stack policy."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config()
        exempt = _string_list(config.get("exemptStacks"), DEFAULT_EXEMPT_STACKS)
        context = context_loader(config)
        if context.stack is not None and context.stack in exempt:
            return
        where = f"stack {context.stack!r}" if context.stack else "this stack"
        proxmox = context.domain("proxmox")
        if isinstance(proxmox, Mapping) and proxmox.get("verifyTls") is False:
            report_violation(
                f"{context.file_name()}: proxmox.verifyTls is false in {where}; only {', '.join(exempt)} may "
                "skip TLS verification. Set verifyTls: true and give proxmox.caBundle (PEM or a path) for a "
                "private CA.",
                None,
            )
        for resource in args.resources:
            for evidence in tls_evidence(resource):
                message = f"{resource.name}: {evidence} in {where} (proxmox.verifyTls must stay true)"
                report_violation(message, resource.urn)

    return StackValidationPolicy(
        name="proxmox-tls-verified",
        description="Proxmox API TLS verification stays on outside the exempt stacks (local).",
        validate=validate,
        config_schema=PolicyConfigSchema(
            properties={
                "exemptStacks": {"type": "array", "items": {"type": "string"}, "default": list(DEFAULT_EXEMPT_STACKS)},
                "stack": {"type": "string"},
                "projectDir": {"type": "string"},
            }
        ),
    )


# --------------------------------------------------------------------------------------------------
# no-plaintext-secrets-in-config
# --------------------------------------------------------------------------------------------------

SENSITIVE_KEY: Final = re.compile(
    r"(secret|passw(or)?d|passphrase|private[-_]?key|api[-_]?key|access[-_]?key|credentials?|kubeconfig|token)$",
    re.IGNORECASE,
)
"""Leaf key names whose plain values are treated as secrets (``tokenId`` does not match: it ends in Id)."""
FILE_PATH: Final = re.compile(r"^(~|\.{1,2})?/[^\s]*$|^[A-Za-z]:\\")
SECRET_VALUE_PATTERNS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = (
    ("a PEM private key", re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")),
    ("a kubeconfig with credentials", re.compile(r"(client-key-data|client-certificate-data)\s*:|\btoken:\s*\S{16,}")),
    ("a Proxmox API token with its secret", re.compile(r"PVEAPIToken=[^=\s]+=[0-9a-fA-F-]{36}")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})\b")),
    ("an AWS access key", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("a JSON Web Token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")),
    ("a URL with a password", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
)


def _walk(value: Any, path: str, leaf: str) -> Iterator[tuple[str, str, Any]]:
    """(path, leaf key name, value) for every scalar under ``value``."""
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}", str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]", leaf)
    else:
        yield path, leaf, value


def plaintext_secret_findings(context: StackContext) -> list[tuple[str, str]]:
    """(config path, why) for every plain value of the stack file that looks like a secret."""
    findings: list[tuple[str, str]] = []
    for full_key, value in (context.plain or {}).items():
        namespace, _, key = full_key.rpartition(":")
        shown = key if namespace == context.project else full_key
        if namespace == context.project and key in SECRET_CONFIG_KEYS:
            findings.append((shown, "is one of the program's secret keys; set it with pulumi config set --secret"))
            continue
        for path, leaf, scalar in _walk(value, shown, key):
            if not isinstance(scalar, str) or not scalar.strip():
                continue
            pattern_hit = next((what for what, rx in SECRET_VALUE_PATTERNS if rx.search(scalar)), None)
            if pattern_hit is not None:
                findings.append((path, f"holds what looks like {pattern_hit}"))
            elif SENSITIVE_KEY.search(leaf) and not FILE_PATH.match(scalar.strip()):
                findings.append((path, f"has a secret-looking name ({leaf}) and a plain-text value"))
    return findings


def make_plaintext_secrets_policy(context_loader: ContextLoader = load_stack_context) -> StackValidationPolicy:
    """The ``no-plaintext-secrets-in-config`` stack policy."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        context = context_loader(args.get_config())
        if context.plain is None:
            args.not_applicable(f"stack file not available: {context.problem}")
            return
        for path, why in plaintext_secret_findings(context):
            report_violation(
                f"{context.file_name()}: {path} {why}. Store it encrypted: pulumi config set --secret --path "
                f"'{path}' <value> (the value is not shown here).",
                None,
            )

    return StackValidationPolicy(
        name="no-plaintext-secrets-in-config",
        description="Secrets in the stack configuration are stored encrypted (secure:), never as plain text.",
        validate=validate,
        config_schema=PolicyConfigSchema(properties={"stack": {"type": "string"}, "projectDir": {"type": "string"}}),
    )


# --------------------------------------------------------------------------------------------------
# tenant-namespace-isolation
# --------------------------------------------------------------------------------------------------


def _is_default_deny_ingress(props: Any) -> bool | _Unknown:
    """Whether a NetworkPolicy selects every pod and allows no ingress (egress may be allowed)."""
    spec = value_at(props, "spec")
    if is_unknown(spec):
        return UNKNOWN
    selector = value_at(spec, "podSelector")
    if is_unknown(selector):
        return UNKNOWN
    if selector is None or not isinstance(selector, Mapping):
        return False
    if not all(_is_empty(value) for _, value in items_of(selector)):
        return False
    types = value_at(spec, "policyTypes")
    ingress = value_at(spec, "ingress")
    if is_unknown(types) or is_unknown(ingress):
        return UNKNOWN
    declared = {str(t) for t in elements_of(types)} if types is not None else {"Ingress"}
    return bool("Ingress" in declared and _is_empty(ingress))


def _is_default_deny_egress(props: Any) -> bool | _Unknown:
    spec = value_at(props, "spec")
    types, egress = value_at(spec, "policyTypes"), value_at(spec, "egress")
    if any(is_unknown(value) for value in (spec, types, egress)):
        return UNKNOWN
    return bool(types is not None and "Egress" in {str(t) for t in elements_of(types)} and _is_empty(egress))


def _has_hard_limits(props: Any) -> bool | _Unknown:
    hard = value_at(props, "spec", "hard")
    if is_unknown(hard):
        return UNKNOWN
    return bool(isinstance(hard, Mapping) and len(hard) > 0)


def tenant_namespaces(resources: Iterable[PolicyResource], declared: Sequence[str]) -> dict[str, str]:
    """Tenant namespaces of the stack: name -> why it counts as one."""
    found = {name: "named in the policy config tenantNamespaces" for name in declared}
    for resource in resources:
        if resource.resource_type == NAMESPACE_TYPE:
            name = value_at(resource.props, "metadata", "name")
            label = value_at(resource.props, "metadata", "labels", TENANT_LABEL)
            if isinstance(name, str) and isinstance(label, str):
                found.setdefault(name, f"labelled {TENANT_LABEL}={label}")
        elif TENANT_OBJECT.match(resource.resource_type):
            ns = value_at(resource.props, "metadata", "namespace")
            if isinstance(ns, str):
                kind = resource.resource_type.rsplit(":", 1)[-1]
                found.setdefault(ns, f"holds {kind} {resource.name}")
    return found


def make_tenant_isolation_policy() -> StackValidationPolicy:
    """The ``tenant-namespace-isolation`` stack policy."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        config = args.get_config()
        require_egress = bool(config.get("requireEgressDeny", True))
        tenants = tenant_namespaces(args.resources, _string_list(config.get("tenantNamespaces"), ()))
        if not tenants:
            return
        deny: dict[str, bool | _Unknown] = {}
        quota: dict[str, bool | _Unknown] = {}
        unplaced = False  # a policy or quota whose namespace is not known yet might belong to any tenant

        def merge(table: dict[str, bool | _Unknown], ns: str, verdict: bool | _Unknown) -> None:
            current = table.get(ns, False)
            if current is True or verdict is True:
                table[ns] = True
            elif current is UNKNOWN or verdict is UNKNOWN:
                table[ns] = UNKNOWN
            else:
                table[ns] = False

        for resource in args.resources:
            if resource.resource_type not in (NETWORK_POLICY_TYPE, RESOURCE_QUOTA_TYPE):
                continue
            ns = value_at(resource.props, "metadata", "namespace")
            if not isinstance(ns, str):
                unplaced = unplaced or ns is UNKNOWN
                continue
            if resource.resource_type == NETWORK_POLICY_TYPE:
                ingress = _is_default_deny_ingress(resource.props)
                verdict = ingress
                if require_egress and ingress is True:
                    verdict = _is_default_deny_egress(resource.props)
                merge(deny, ns, verdict)
            else:
                merge(quota, ns, _has_hard_limits(resource.props))

        for ns, why in sorted(tenants.items()):
            missing = []
            if deny.get(ns, False) is False and not unplaced:
                what = "Ingress and Egress" if require_egress else "Ingress"
                missing.append(f"a default-deny NetworkPolicy (podSelector: {{}}, policyTypes with {what}, no rules)")
            if quota.get(ns, False) is False and not unplaced:
                missing.append("a ResourceQuota with spec.hard limits")
            if missing:
                report_violation(f"tenant namespace {ns!r} ({why}) has no {' and no '.join(missing)}", None)

    return StackValidationPolicy(
        name="tenant-namespace-isolation",
        description="Every tenant namespace has a default-deny NetworkPolicy and a ResourceQuota.",
        validate=validate,
        config_schema=PolicyConfigSchema(
            properties={
                "tenantNamespaces": {"type": "array", "items": {"type": "string"}, "default": []},
                "requireEgressDeny": {"type": "boolean", "default": True},
            }
        ),
    )


# --------------------------------------------------------------------------------------------------
# proxmox-vm-ownership-and-placement
# --------------------------------------------------------------------------------------------------


def is_proxmox_vm(args: ResourceValidationArgs | PolicyResource) -> bool:
    """A ProxmoxVm: the dynamic resource with a template reference and a ``marker`` (or ``clone_mode``) input.

    The engine shows policies the inputs after the provider's ``check``, which always sets ``marker``;
    ``clone_mode`` (always sent by ``ProxmoxVm``) also identifies a VM whose marker is missing, so that
    such a VM is reported instead of going unrecognised. No other dynamic resource has these inputs.
    """
    props = args.props
    return (
        args.resource_type == DYNAMIC_TYPE
        and (has_key(props, "template_tags") or has_key(props, "template_vmid"))
        and (has_key(props, "marker") or has_key(props, "clone_mode"))
    )


def vm_storages(props: Any) -> list[tuple[str, Any]]:
    """(input path, storage) of every storage a ProxmoxVm names: the clone target and each disk's."""
    found = [("storage", value_at(props, "storage"))]
    for slot, disk in items_of(value_at(props, "disks")):
        found.append((f"disks.{slot}.storage", value_at(disk, "storage")))
    return [(path, value) for path, value in found if value is not None]


def make_vm_policy(context_loader: ContextLoader = load_stack_context) -> ResourceValidationPolicy:
    """The ``proxmox-vm-ownership-and-placement`` resource policy."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not is_proxmox_vm(args):
            return
        config = args.get_config()
        context = context_loader(config)
        owner = value_at(args.props, "owner")
        if owner is not UNKNOWN:
            parts = owner.split("/") if isinstance(owner, str) else []
            if len(parts) != 3 or not all(parts):
                report_violation(
                    f"owner is {owner!r}: every VM carries its ownership '<project>/<stack>/<resource name>', "
                    "so a retried create adopts only its own VM and a delete never touches someone else's",
                    None,
                )
            elif context.stack is not None and parts[1] != context.stack:
                report_violation(f"owner {owner!r} names stack {parts[1]!r}, but this is stack {context.stack!r}", None)
        marker = value_at(args.props, "marker")
        if marker is not UNKNOWN and not (isinstance(marker, str) and MARKER.match(marker)):
            report_violation(f"marker is {marker!r}: the ownership marker must be 32 lowercase hex digits", None)

        pools = _string_list(config.get("allowedPools"), DEFAULT_ALLOWED_POOLS)
        pool = value_at(args.props, "pool")
        if pool is None:
            report_violation(f"the VM is in no resource pool; allowed pools: {', '.join(pools)}", None)
        elif pool is not UNKNOWN and not any(fnmatch.fnmatchcase(str(pool), p) for p in pools):
            report_violation(f"pool {pool!r} is not allowed; allowed pools: {', '.join(pools)}", None)

        storages = _string_list(config.get("allowedStorages"), ())
        source = "the policy config allowedStorages"
        if not storages:
            nodes = context.domain("nodes")
            storages = tuple(
                sorted({str(s) for n in nodes if isinstance(n, Mapping) for s in n.get("storages") or []})
                if isinstance(nodes, list)
                else ()
            )
            source = f"the storages of nodes in {context.file_name()}"
        if storages:
            for path, storage in vm_storages(args.props):
                if storage is not UNKNOWN and not any(fnmatch.fnmatchcase(str(storage), s) for s in storages):
                    report_violation(f"{path} {storage!r} is not allowed ({source}: {', '.join(storages)})", None)

    return ResourceValidationPolicy(
        name="proxmox-vm-ownership-and-placement",
        description="Every ProxmoxVm carries its owner and marker and stays in the allowed pools and storages.",
        validate=validate,
        config_schema=PolicyConfigSchema(
            properties={
                "allowedPools": {"type": "array", "items": {"type": "string"}, "default": list(DEFAULT_ALLOWED_POOLS)},
                "allowedStorages": {"type": "array", "items": {"type": "string"}, "default": []},
                "stack": {"type": "string"},
                "projectDir": {"type": "string"},
            }
        ),
    )


# --------------------------------------------------------------------------------------------------
# proxmox-token-least-privilege
# --------------------------------------------------------------------------------------------------


def is_proxmox_token(args: ResourceValidationArgs | PolicyResource) -> bool:
    """A ProxmoxApiToken: the dynamic resource with userid, tokenid and privsep inputs."""
    props = args.props
    return args.resource_type == DYNAMIC_TYPE and all(has_key(props, k) for k in ("userid", "tokenid", "privsep"))


def _token_privsep_violation(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_proxmox_token(args):
        return
    userid = value_at(args.props, "userid")
    tokenid = value_at(args.props, "tokenid")
    name = f"{userid}!{tokenid}" if isinstance(userid, str) and isinstance(tokenid, str) else args.name
    if isinstance(userid, str) and userid.strip().lower() == "root@pam":
        report_violation(
            f"token {name} belongs to root@pam: a controller's token must belong to its own dedicated user "
            "(components/proxmox/cluster.py creates <prefix>-<controller>@pve) so its privileges can be limited",
            None,
        )
    privsep = value_at(args.props, "privsep")
    if privsep is not UNKNOWN and privsep is not True:
        report_violation(
            f"token {name} has privilege separation off (privsep={privsep!r}): it would carry ALL of its user's "
            "privileges; keep privsep true and grant the token its own ACLs",
            None,
        )


def make_token_policy() -> ResourceValidationPolicy:
    """The ``proxmox-token-least-privilege`` resource policy."""
    return ResourceValidationPolicy(
        name="proxmox-token-least-privilege",
        description="Proxmox API tokens of controllers are privilege-separated and never belong to root@pam.",
        validate=_token_privsep_violation,
    )


# --------------------------------------------------------------------------------------------------
# helm-chart-version-pinned
# --------------------------------------------------------------------------------------------------


def _chart_pin_violation(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in HELM_TYPES:
        return
    if not has_key(args.props, "chart") and not has_key(args.props, "version"):
        # Every chart resource requires ``chart``: without both the engine has shown the policy no inputs,
        # which it does for component resources such as helm.v4.Chart (pulumi-kubernetes#2144). Their
        # versions are pinned by config.versions (ChartVersion accepts only one exact version).
        return
    chart = value_at(args.props, "chart")
    if isinstance(chart, str) and (chart.startswith(("./", "../", "/")) or "@sha256:" in chart):
        return  # a chart in this repository (pinned by the commit) or pinned by digest
    version = value_at(args.props, "version")
    if version is UNKNOWN:
        return
    what = chart if isinstance(chart, str) else args.name
    if not isinstance(version, str) or not version.strip():
        report_violation(f"chart {what} has no version: Helm would install whatever is newest at deploy time", None)
    elif not EXACT_CHART_VERSION.match(version.strip()):
        report_violation(
            f"chart {what} version {version!r} is not one exact version (a range or a tag floats); pin it, "
            "e.g. 1.19.5, in config/versions.py or the stack's versions key",
            None,
        )


def make_chart_policy() -> ResourceValidationPolicy:
    """The ``helm-chart-version-pinned`` resource policy."""
    return ResourceValidationPolicy(
        name="helm-chart-version-pinned",
        description="Every Helm chart is installed at one exact version.",
        validate=_chart_pin_violation,
    )


# --------------------------------------------------------------------------------------------------
# The pack and the command line
# --------------------------------------------------------------------------------------------------


def policies(context_loader: ContextLoader = load_stack_context) -> list[Policy]:
    """Every guardrail, as the pack registers them."""
    return [
        make_tls_policy(context_loader),
        make_plaintext_secrets_policy(context_loader),
        make_tenant_isolation_policy(),
        make_vm_policy(context_loader),
        make_token_policy(),
        make_chart_policy(),
    ]


CONFIG_POLICIES: Final = ("proxmox-tls-verified", "no-plaintext-secrets-in-config")
"""The guardrails that only need the stack file: ``check-config`` runs them without the engine."""


def check_config(stack: str, project_dir: Path) -> list[str]:
    """Run the config guardrails on one stack file; return the violations (empty: the file passes)."""
    violations: list[str] = []
    config = {"stack": stack, "projectDir": str(project_dir)}

    def loader(_: Mapping[str, Any]) -> StackContext:
        return load_stack_context(config)

    context = loader(config)
    if context.plain is None:
        return [f"cannot check stack {stack!r}: {context.problem}"]
    for policy in policies(loader):
        if policy.name not in CONFIG_POLICIES or not isinstance(policy, StackValidationPolicy):
            continue

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            violations.append(f"[{name}] {message}")

        policy.validate(StackValidationArgs([], {}), report)
    return violations


def empty_options() -> PolicyResourceOptions:
    """Resource options with nothing set (for building arguments outside the engine)."""
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def main(argv: Sequence[str] | None = None) -> int:
    """``check-config --stack NAME``: run the config guardrails on ``Pulumi.<stack>.yaml``."""
    parser = argparse.ArgumentParser(prog="python -m policy.guardrails", description="Run the config guardrails.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check-config", help="check Pulumi.<stack>.yaml: TLS verification, plain-text secrets")
    check.add_argument("--stack", required=True)
    check.add_argument("--project-dir", type=Path, default=POLICY_DIR.parent)
    args = parser.parse_args(argv)
    violations = check_config(args.stack, args.project_dir)
    for violation in violations:
        print(f"guardrails: {violation}", file=sys.stderr)
    if violations:
        return 1
    print(f"guardrails: Pulumi.{args.stack}.yaml passes {', '.join(CONFIG_POLICIES)}")
    return 0


__all__ = [
    "PACK_NAME",
    "SECRET_CONFIG_KEYS",
    "TENANT_LABEL",
    "UNKNOWN",
    "StackContext",
    "check_config",
    "empty_options",
    "load_stack_context",
    "main",
    "parse_stack_context",
    "plaintext_secret_findings",
    "policies",
    "value_at",
]

if __name__ == "__main__":
    raise SystemExit(main())
