"""ProxmoxVm: a Pulumi dynamic resource for a Proxmox VM cloned from a template.

The provider class is importable and holds no state, so dill pickles it *by reference* (a few dozen
bytes naming this module) and never captures a credential; connection details are read from the stack
config in ``configure()`` (see ``providers/dynamic/runtime.py``). Keep this module's path stable: state refers
to it by name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import pulumi
from pulumi import dynamic

from providers.dynamic import runtime
from providers.dynamic.base import ProxmoxProvider
from providers.dynamic.inputs import has_unknown as _has_unknown
from providers.proxmox.vm_ops import VmOperations
from providers.proxmox.vm_plan import REPLACE_FIELDS, PlanError, plan
from providers.proxmox.vm_spec import SpecError, VmSpec

log = logging.getLogger(__name__)

PASSWORD_FIELD = "cloud_init_password"
OUTPUT_FIELDS = (
    "vmid",
    "current_node",
    "status",
    "macs",
    "ip_addresses",
    "reboot_pending",
    "source_template_vmid",
    "warnings",
    "adopted",
)


# Inputs whose change may replace the VM. The ownership marker is derived from the owner and these,
# so a create that was interrupted (a killed ``pulumi up``) derives the same marker when it runs again
# and adopts its half-made VM, while a successor with different placement never shares the marker.
MARKER_RENEWING_FIELDS = (*REPLACE_FIELDS, "node", "allowed_nodes", "vmid_range")


def _marker(olds: Mapping[str, Any], news: Mapping[str, Any]) -> str:
    """The ownership marker: explicit in the inputs (tests), else derived deterministically."""
    if news.get("marker"):
        return str(news["marker"])
    if _has_unknown(news) or not news.get("owner"):
        return str(olds.get("marker") or uuid.uuid4().hex)
    identity = {"owner": news["owner"], **{f: _canonical(news, f) for f in MARKER_RENEWING_FIELDS}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _canonical(inputs: Mapping[str, Any], name: str) -> Any:
    value = inputs.get(name)
    if name in ("allowed_nodes", "template_tags") and isinstance(value, list):
        return sorted(str(v).lower() for v in value)
    if name == "vmid_range" and not value:
        return VmSpec.model_fields["vmid_range"].get_default(call_default_factory=True).model_dump()
    if name == "clone_mode" and value is None:
        return "full"
    return value


def _parse_id(id_: str) -> tuple[str, int]:
    node, _, vmid = id_.partition("/")
    if not node or not vmid.isdigit():
        raise ValueError(f"a ProxmoxVm id is '<node>/<vmid>', got {id_!r}")
    return node, int(vmid)


def _ops() -> VmOperations:
    client, slots = runtime.client()
    return VmOperations(client, clone_slots=slots)


def _outs(spec: VmSpec, password: str | None, state_outputs: Mapping[str, Any], adopted: bool) -> dict[str, Any]:
    """Outputs = the canonical inputs (diff compares against them) + what Proxmox computed."""
    return {**spec.to_inputs(), PASSWORD_FIELD: password, **state_outputs, "adopted": adopted}


class ProxmoxVmProvider(ProxmoxProvider):
    """CRUD of Proxmox VMs for the Pulumi engine; all Proxmox work is in ``VmOperations``."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate inputs without calling Proxmox, and fix the ownership marker once."""
        inputs = dict(news)
        inputs["marker"] = _marker(_olds, news)
        if _has_unknown(inputs):
            return dynamic.CheckResult(inputs, [])
        try:
            # Strict about top-level keys: an unknown one (a typo) is refused, not silently dropped.
            spec = VmSpec.from_inputs(inputs, known=(PASSWORD_FIELD, *OUTPUT_FIELDS))
        except SpecError as exc:
            return dynamic.CheckResult(inputs, [dynamic.CheckFailure(path, reason) for path, reason in exc.problems])
        problems = spec.declaration_problems()
        if problems:
            return dynamic.CheckResult(inputs, [dynamic.CheckFailure(path, reason) for path, reason in problems])
        canonical = spec.to_inputs()
        canonical[PASSWORD_FIELD] = inputs.get(PASSWORD_FIELD)
        return dynamic.CheckResult(canonical, [])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """Plan the change; refuse unsafe ones (disk shrink) with an error naming the field."""
        if _has_unknown(news):
            unknown = [k for k, v in news.items() if _has_unknown(v)]
            replaces = [k for k in unknown if k in REPLACE_FIELDS]
            return dynamic.DiffResult(changes=True, replaces=replaces)
        old, new = VmSpec.from_inputs(olds), VmSpec.from_inputs(news)
        _, vmid = _parse_id(id_)
        try:
            change = plan(
                old,
                new,
                current_node=olds.get("current_node"),
                current_vmid=vmid,
                old_password=olds.get(PASSWORD_FIELD),
                new_password=news.get(PASSWORD_FIELD),
            )
        except PlanError as exc:
            raise ValueError(f"ProxmoxVm {new.name}: {exc}") from None
        return dynamic.DiffResult(
            changes=change.has_changes,
            replaces=list(change.replaces),
            delete_before_replace=change.delete_before_replace,
        )

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Clone and configure; on failure nothing is left behind (or the error says what was)."""
        spec = VmSpec.from_inputs(props)
        password = props.get(PASSWORD_FIELD)
        state = _ops().create(spec, password)
        outputs = state.outputs()
        return dynamic.CreateResult(f"{state.node}/{state.vmid}", _outs(spec, password, outputs, False))

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``ResourceOptions(import_="<node>/<vmid>")``); drift comes back as inputs."""
        _, vmid = _parse_id(id_)
        importing = "vmid" not in props
        inputs = dict(props)
        inputs["marker"] = _marker({}, inputs)
        spec = VmSpec.from_inputs(inputs)
        adopted = bool(props.get("adopted")) or importing
        found = _ops().read(vmid, spec, adopt_unmarked=adopted)
        if found is None:
            return dynamic.ReadResult(None, {})
        state, refreshed = found
        password = props.get(PASSWORD_FIELD)
        outs = _outs(refreshed, password, state.outputs(), adopted)
        outs["source_template_vmid"] = props.get("source_template_vmid")
        new_inputs = refreshed.to_inputs()
        new_inputs[PASSWORD_FIELD] = password
        return dynamic.ReadResult(f"{state.node}/{state.vmid}", outs, new_inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Apply an in-place change (config, NICs, disk growth, cloud-init, power, opt-in migration)."""
        _, vmid = _parse_id(id_)
        old, new = VmSpec.from_inputs(olds), VmSpec.from_inputs(news)
        password = news.get(PASSWORD_FIELD)
        change = plan(
            old,
            new,
            current_node=olds.get("current_node"),
            current_vmid=vmid,
            old_password=olds.get(PASSWORD_FIELD),
            new_password=password,
        )
        state = _ops().update(vmid, old, new, change, password)
        outs = _outs(new, password, state.outputs(), bool(olds.get("adopted")))
        outs["source_template_vmid"] = olds.get("source_template_vmid")
        return dynamic.UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Stop and purge the VM if it is still ours; a VM that is gone or foreign is left as is."""
        _, vmid = _parse_id(id_)
        spec = VmSpec.from_inputs(props)
        _ops().delete(vmid, spec)


@dataclass
class ProxmoxVmArgs:
    """Inputs of a ProxmoxVm. Field meanings are documented on ``providers.proxmox.vm_spec.VmSpec``."""

    name: pulumi.Input[str]
    node: pulumi.Input[str] | None = None
    allowed_nodes: pulumi.Input[list[str]] = field(default_factory=list)
    template_vmid: pulumi.Input[int] | None = None
    template_tags: pulumi.Input[list[str]] = field(default_factory=list)
    clone_mode: pulumi.Input[str] = "full"
    storage: pulumi.Input[str] | None = None
    disk_format: pulumi.Input[str] | None = None
    vmid_range: pulumi.Input[Mapping[str, int]] | None = None
    description: pulumi.Input[str] = ""
    pool: pulumi.Input[str] | None = None
    tags: pulumi.Input[list[str]] = field(default_factory=list)
    cpu: pulumi.Input[Mapping[str, Any]] | None = None
    memory_mib: pulumi.Input[int] = 2048
    balloon_mib: pulumi.Input[int] | None = None
    disks: pulumi.Input[Mapping[str, Any]] = field(default_factory=dict)
    nics: pulumi.Input[Mapping[str, Any]] = field(default_factory=dict)
    cloud_init: pulumi.Input[Mapping[str, Any]] | None = None
    cloud_init_password: pulumi.Input[str] | None = None
    firewall: pulumi.Input[Mapping[str, Any]] | None = None
    """The guest firewall: ``{enabled, policy_in, policy_out, groups: {<nic slot>: [group, ...]}}``, applied
    before the first start and reconciled in place (``providers.proxmox.vm_spec.VmFirewall``). The groups must exist
    first: pass their resources in ``depends_on``. Filters only once the datacenter firewall is enabled."""
    agent: pulumi.Input[bool] = True
    wait_for_ip: pulumi.Input[Mapping[str, Any]] | None = None
    on_boot: pulumi.Input[bool] = False
    started: pulumi.Input[bool] = True
    reboot_after_update: pulumi.Input[bool] = False
    migrate_on_node_change: pulumi.Input[bool] = False
    timeouts: pulumi.Input[Mapping[str, int]] | None = None
    owner: pulumi.Input[str] | None = None


class ProxmoxVm(dynamic.Resource):
    """A Proxmox VM cloned from a template, configured, started, and removed cleanly."""

    vmid: pulumi.Output[int]
    current_node: pulumi.Output[str]
    status: pulumi.Output[str]
    macs: pulumi.Output[dict[str, str]]
    ip_addresses: pulumi.Output[list[str]]
    reboot_pending: pulumi.Output[bool]
    source_template_vmid: pulumi.Output[int]
    warnings: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ProxmoxVmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Not dataclasses.asdict: it deep-copies, and Outputs must be passed through untouched.
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props = {k: v for k, v in props.items() if v is not None}
        props.setdefault("owner", f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}")
        if args.cloud_init_password is not None:
            props[PASSWORD_FIELD] = pulumi.Output.secret(args.cloud_init_password)
        else:
            props[PASSWORD_FIELD] = None
        props["marker"] = None
        for out in OUTPUT_FIELDS:
            props.setdefault(out, None)
        # Replacements delete first: a successor reuses the name and static addresses, and an identical
        # successor (``pulumi up --replace``) derives the same ownership marker as the VM it replaces.
        defaults = pulumi.ResourceOptions(delete_before_replace=True, additional_secret_outputs=[PASSWORD_FIELD])
        opts = pulumi.ResourceOptions.merge(defaults, opts)
        super().__init__(ProxmoxVmProvider(), name, props, opts)
