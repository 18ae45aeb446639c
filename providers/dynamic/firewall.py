"""ProxmoxSecurityGroup: a Pulumi dynamic resource for a cluster firewall security group and its rules.

Written like ``providers/dynamic/vm.py``: the provider class is importable and holds no state, so dill
pickles it *by reference*; the connection comes from the stack config in ``configure()``
(``providers/dynamic/runtime.py``). All Proxmox work is in ``providers/proxmox/firewall.py``.

check() validates the group name and every rule locally (ports, addresses, protocols) so a typo fails
at ``pulumi preview``. diff() is explicit: a new group name replaces the group; the comment and the
rules change in place (new rules are inserted above the old ones before those are removed, so guests
never lose their ACCEPT rules for a moment). read() reports rules changed outside Pulumi as drift.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import pulumi
from pulumi import dynamic

from providers.dynamic import runtime
from providers.dynamic.base import ProxmoxProvider
from providers.dynamic.inputs import has_unknown as _has_unknown
from providers.proxmox.firewall import FirewallApi, FirewallSpecError, SecurityGroupSpec, same_rules

log = logging.getLogger(__name__)

REPLACE_FIELDS = ("group",)
INPUT_FIELDS = ("group", "comment", "rules")


def _api() -> FirewallApi:
    client, _ = runtime.client()
    return FirewallApi(client)


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: props.get(k) for k in INPUT_FIELDS}


def _canonical(props: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return SecurityGroupSpec.from_inputs(_inputs(props)).to_inputs()
    except FirewallSpecError:
        return _inputs(props)


class ProxmoxSecurityGroupProvider(ProxmoxProvider):
    """CRUD of cluster firewall security groups for the Pulumi engine."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate the group name and the rules without calling Proxmox."""
        inputs = _inputs(news)
        if _has_unknown(inputs):
            return dynamic.CheckResult(inputs, [])
        try:
            spec = SecurityGroupSpec.from_inputs(inputs)
        except FirewallSpecError as exc:
            return dynamic.CheckResult(inputs, [dynamic.CheckFailure(n, r) for n, r in exc.problems])
        return dynamic.CheckResult(spec.to_inputs(), [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A new group name replaces the group; comment and rules change in place."""
        new = _inputs(news) if _has_unknown(_inputs(news)) else _canonical(news)
        old = _canonical(olds)
        changed = [k for k in INPUT_FIELDS if _has_unknown(new[k]) or new[k] != old[k]]
        return dynamic.DiffResult(
            changes=bool(changed),
            replaces=[k for k in changed if k in REPLACE_FIELDS],
            delete_before_replace=False,
        )

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Create the group with its rules (adopting an identical existing group)."""
        spec = SecurityGroupSpec.from_inputs(props)
        adopted = _api().create_group(spec)
        log.info("ProxmoxSecurityGroup %s %s", spec.group, "adopted (identical)" if adopted else "created")
        return dynamic.CreateResult(spec.group, {**spec.to_inputs(), "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``import_="<group>"``): rules changed in Proxmox come back as drift."""
        found = _api().get_group(id_)
        if found is None:
            return dynamic.ReadResult(None, {})
        inputs = {"group": found.group, "comment": found.comment, "rules": [r.to_inputs() for r in found.rules]}
        adopted = bool(props.get("adopted")) or "adopted" not in props
        return dynamic.ReadResult(id_, {**inputs, "adopted": adopted}, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Set the comment and/or replace the rule list."""
        spec = SecurityGroupSpec.from_inputs(news)
        old = _canonical(olds)
        api = _api()
        if old.get("comment") != spec.comment:
            api.set_comment(spec.group, spec.comment)
        current = api.get_group(spec.group)
        if current is None or not same_rules(current.rules, spec.rules):
            api.set_rules(spec.group, spec.rules)
        return dynamic.UpdateResult({**spec.to_inputs(), "adopted": bool(olds.get("adopted"))})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Delete the rules and the group; a group that is already gone is fine."""
        _api().delete_group(id_)


@dataclass
class ProxmoxSecurityGroupArgs:
    """Inputs of a ProxmoxSecurityGroup.

    ``group``: 2-18 characters, a letter then letters, digits, ``-``, ``_`` (cluster-wide name).
    ``comment``: one line. ``rules``: ordered, first match wins; each a mapping with the fields of
    ``providers.proxmox.firewall.FirewallRule`` (``type``, ``action``, ``proto``, ``dport``, ``sport``,
    ``source``, ``dest``, ``macro``, ``icmp_type``, ``comment``, ``enable``, ``log``).
    """

    group: pulumi.Input[str]
    comment: pulumi.Input[str] = ""
    rules: pulumi.Input[Sequence[pulumi.Input[Mapping[str, Any]]]] = field(default_factory=list)


class ProxmoxSecurityGroup(dynamic.Resource):
    """A Proxmox VE cluster firewall security group. Guests use it via ``FirewallApi.bind_vm``."""

    group: pulumi.Output[str]
    comment: pulumi.Output[str]
    rules: pulumi.Output[list[dict[str, Any]]]
    adopted: pulumi.Output[bool]

    def __init__(self, name: str, args: ProxmoxSecurityGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props["adopted"] = None
        super().__init__(ProxmoxSecurityGroupProvider(), name, props, opts)


__all__ = ["ProxmoxSecurityGroup", "ProxmoxSecurityGroupArgs", "ProxmoxSecurityGroupProvider"]
