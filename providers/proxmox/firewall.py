"""Proxmox VE cluster firewall security groups over ProxmoxClient, and binding them to VM NICs.

Plain functions and classes, no pulumi import. A security group is a named, ordered list of rules kept
in the cluster firewall config (``/cluster/firewall/groups``). It filters nothing by itself: a guest
uses it through a rule ``type=group action=<group> iface=netN`` in its own firewall, and the guest's
firewall acts only when (1) the datacenter firewall is enabled, (2) the guest's firewall options say
``enable=1``, and (3) the NIC is created with ``firewall=1``. The guest's ``policy_in`` (``DROP`` by
default in PVE) then drops every inbound packet no rule accepted. :meth:`FirewallApi.bind_vm` adds the
group rules first and switches the guest's firewall on afterwards, so a VM is never cut off between
the two calls. A caller that manages a guest's bindings over time (``ProxmoxVm``'s ``firewall`` input,
``providers/proxmox/vm_ops.py``) gives every rule it adds a comment naming itself, and :meth:`FirewallApi.unbind_vm`
removes only rules it claims that way: rules someone else added to the guest are never touched.

PVE semantics this module relies on (pve-firewall ``API2/Firewall/Groups.pm`` and ``Rules.pm``):

* ``POST /cluster/firewall/groups`` ``group comment`` creates a group (2-18 characters); with
  ``rename=<same name>`` it only sets the comment. A group must be empty to be deleted.
* ``POST .../groups/{group}`` inserts a rule at the **top** (position 0), and a rule without
  ``enable`` is created **disabled**. Rules are therefore posted in reverse order, always with
  ``enable``.
* ``PUT|DELETE .../groups/{group}/{pos}`` take the ``digest`` of the rule list; a stale digest is
  refused ("detected modified configuration"), so concurrent edits are never overwritten.
* A missing group answers HTTP 500 "no such security group", which the client would classify as
  transient and retry: existence is read from the group listing instead.

Replacing a group's rules inserts the new list on top first and only then deletes the old rules from
the bottom up, so a VM behind ``policy_in=DROP`` never sees a moment without its ACCEPT rules.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import ProxmoxAlreadyExistsError, ProxmoxError, ProxmoxValidationError
from providers.proxmox.wire import plain_numbers

log = logging.getLogger(__name__)

GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]+")
GROUP_NAME_MAX = 18
RULE_TYPES = ("in", "out", "forward")
ACTIONS = ("ACCEPT", "DROP", "REJECT")
LOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog")
PORT_PROTOCOLS = frozenset({"tcp", "6", "udp", "17", "udplite", "136", "dccp", "33", "sctp", "132"})
ICMP_PROTOCOLS = frozenset({"icmp", "1", "icmpv6", "ipv6-icmp", "58"})
PROTOCOL_NAMES = frozenset(
    {
        "ip",
        "icmp",
        "igmp",
        "ipencap",
        "tcp",
        "egp",
        "udp",
        "dccp",
        "ipv6",
        "ipv6-route",
        "ipv6-frag",
        "gre",
        "esp",
        "ah",
        "icmpv6",
        "ipv6-icmp",
        "ipv6-nonxt",
        "ipv6-opts",
        "ospf",
        "ipip",
        "pim",
        "vrrp",
        "l2tp",
        "sctp",
        "udplite",
    }
)
MAX_PORT_NUMBERS = 15
_PORT_NAME = re.compile(r"[a-z][a-z0-9-]*")
_REFERENCE = re.compile(r"(?:\+(?:guest/|dc/|sdn/)?|(?:dc/|guest/)?)[A-Za-z][A-Za-z0-9_-]+")
_MACRO = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_NIC = re.compile(r"net\d+")
_MODIFIED = re.compile(r"modified configuration|checksum mismatch|digest", re.IGNORECASE)


class FirewallSpecError(ValueError):
    """Inputs of a security group that Proxmox VE would refuse; ``problems`` are (field, reason) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("invalid security group: " + "; ".join(f"{name}: {reason}" for name, reason in self.problems))


class FirewallConflictError(ProxmoxAlreadyExistsError):
    """The security group already exists in Proxmox with other rules or another comment."""


# --------------------------------------------------------------------------- validation


def check_group_name(name: Any) -> str:
    """A security group name: a letter, then letters, digits, ``-``, ``_``; 2 to 18 characters."""
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name) or len(name) > GROUP_NAME_MAX:
        raise ValueError(
            f"{name!r} is not a security group name: a letter, then letters, digits, '-' or '_', "
            f"2 to {GROUP_NAME_MAX} characters"
        )
    return name


def check_ports(text: str, *, icmp: bool = False) -> str:
    """A port list as PVE accepts it: ``22``, ``2379:2380``, ``80,443``, service names; at most 15 numbers."""
    items = text.split(",")
    if not text or any(not item for item in items):
        raise ValueError(f"{text!r}: empty entry in the port list")
    count = 0
    for item in items:
        found = re.fullmatch(r"(\d+):(\d+)", item)
        if found:
            first, last = int(found.group(1)), int(found.group(2))
            if max(first, last) > 65535:
                raise ValueError(f"{text!r}: port {max(first, last)} is above 65535")
            if first > last:
                raise ValueError(f"{text!r}: backwards range {first}:{last}, did you mean {last}:{first}?")
            count += 2
        elif item.isdigit():
            if int(item) > 65535:
                raise ValueError(f"{text!r}: port {item} is above 65535")
            count += 1
        elif icmp or not _PORT_NAME.fullmatch(item):
            raise ValueError(f"{text!r}: {item!r} is not a port, a range 'a:b' or a service name")
    if count > MAX_PORT_NUMBERS:
        raise ValueError(f"{text!r}: more than {MAX_PORT_NUMBERS} port numbers (a range counts as two)")
    return text


def check_address(text: str) -> str:
    """A rule's source or dest: a list of IPs/CIDRs, one range ``a-b``, an alias or an ``+ipset``."""
    if _REFERENCE.fullmatch(text):
        return text
    items = text.split(",")
    if not text or any(not item for item in items):
        raise ValueError(f"{text!r}: empty entry in the address list")
    versions: set[int] = set()
    for item in items:
        parts = item.split("-")
        if len(parts) > 2:
            raise ValueError(f"{text!r}: {item!r} is not an IP, a CIDR or a range")
        if len(parts) == 2:
            if len(items) > 1:
                raise ValueError(f"{text!r}: a range cannot be part of a list")
            try:
                first, last = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
            except ValueError:
                raise ValueError(f"{text!r}: both ends of a range must be single IP addresses") from None
            if first.version != last.version or last < first:  # type: ignore[operator]
                raise ValueError(f"{text!r}: the range must go up, within one IP version")
            versions.add(first.version)
            continue
        try:
            net = ipaddress.ip_network(item, strict=True)
        except ValueError:
            raise ValueError(
                f"{text!r}: {item!r} is not an IP address or a network (host bits must be zero, "
                "e.g. 10.0.0.0/24, not 10.0.0.1/24)"
            ) from None
        versions.add(net.version)
    if len(versions) > 1:
        raise ValueError(f"{text!r}: mixes IPv4 and IPv6")
    return text


def _check_comment(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    if len(value) > 512:
        raise ValueError("at most 512 characters")
    return value


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class FirewallRule:
    """One firewall rule inside a security group (group rules take no interface)."""

    type: str = "in"
    """Direction: ``in``, ``out`` or ``forward``."""
    action: str = "ACCEPT"
    """``ACCEPT``, ``DROP`` or ``REJECT`` (not REJECT on ``forward``)."""
    proto: str | None = None
    """Protocol name or number (``tcp``, ``udp``, ``icmp``, ...); needed for ports."""
    dport: str | None = None
    """Destination ports: ``22``, ``2379:2380``, ``80,443``."""
    sport: str | None = None
    """Source ports, same syntax."""
    source: str | None = None
    """Source addresses: CIDR list, one range ``a-b``, an alias or ``+ipset``; None = anywhere."""
    dest: str | None = None
    """Destination addresses, same syntax."""
    macro: str | None = None
    """A PVE macro (``SSH``, ``Ping``, ...) instead of proto/ports."""
    icmp_type: str | None = None
    """ICMP type (with ``proto=icmp``), e.g. ``echo-request``."""
    comment: str = ""
    """Shown in the UI; say why the rule exists."""
    enable: bool = True
    """A disabled rule is kept but ignored."""
    log: str | None = None
    """Log level for matches (``nolog`` .. ``emerg``); None = PVE's default (no logging)."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FirewallRule:
        """A rule from resource inputs (snake_case keys; ``icmp-type`` also accepted); ValueError if invalid."""
        known = {f for f in cls.__dataclass_fields__}
        values = {str(k).replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown rule keys {unknown}; allowed: {sorted(known)}")
        values = {k: (None if v == "" and k not in ("comment",) else v) for k, v in values.items()}
        for key in ("type", "action", "proto", "dport", "sport", "source", "dest", "macro", "icmp_type", "log"):
            if values.get(key) is not None and not isinstance(values[key], str):
                raise ValueError(f"{key}: expected a string, got {values[key]!r}")
        enable = values.get("enable", True)
        if not isinstance(enable, bool) and enable not in (0, 1):
            raise ValueError(f"enable: expected a boolean, got {enable!r}")
        values["enable"] = bool(enable)
        values["comment"] = _check_comment(values.get("comment"))
        rule = cls(**{k: v for k, v in values.items() if v is not None or k not in ("type", "action")})
        rule.validate()
        return rule

    def validate(self) -> None:
        """PVE's ``verify_rule`` for the parts that need no cluster state; ValueError naming the field."""
        if self.type not in RULE_TYPES:
            raise ValueError(f"type: must be one of {RULE_TYPES} in a security group, got {self.type!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action: must be one of {ACTIONS}, got {self.action!r}")
        if self.type == "forward" and self.action == "REJECT":
            raise ValueError("action: REJECT is not allowed on the forward chain")
        if self.macro is not None and not _MACRO.fullmatch(self.macro):
            raise ValueError(f"macro: {self.macro!r} is not a macro name")
        proto = self.proto
        if proto is not None and proto not in PROTOCOL_NAMES and not (proto.isdigit() and int(proto) <= 255):
            raise ValueError(f"proto: unknown protocol {proto!r}")
        is_icmp = proto in ICMP_PROTOCOLS
        for name in ("dport", "sport"):
            ports = getattr(self, name)
            if ports is None:
                continue
            if proto is None:
                raise ValueError(f"{name}: needs proto (tcp, udp, ...)")
            if proto not in PORT_PROTOCOLS:
                raise ValueError(f"{name}: protocol {proto!r} has no ports")
            try:
                check_ports(ports)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if self.icmp_type is not None:
            if not is_icmp:
                raise ValueError("icmp_type: needs proto icmp or icmpv6")
            if self.dport is not None:
                raise ValueError("icmp_type: cannot be combined with dport")
        for name in ("source", "dest"):
            value = getattr(self, name)
            if value is not None:
                try:
                    check_address(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        if self.log is not None and self.log not in LOG_LEVELS:
            raise ValueError(f"log: must be one of {LOG_LEVELS}, got {self.log!r}")

    def to_inputs(self) -> dict[str, Any]:
        """The rule as canonical resource inputs (snake_case, None for unset)."""
        return {
            "type": self.type,
            "action": self.action,
            "proto": self.proto,
            "dport": self.dport,
            "sport": self.sport,
            "source": self.source,
            "dest": self.dest,
            "macro": self.macro,
            "icmp_type": self.icmp_type,
            "comment": self.comment,
            "enable": self.enable,
            "log": self.log,
        }

    def to_params(self) -> dict[str, Any]:
        """The rule as ``POST .../groups/{group}`` parameters (PVE names; ``enable`` always sent)."""
        params: dict[str, Any] = {"type": self.type, "action": self.action, "enable": 1 if self.enable else 0}
        for key, value in (
            ("proto", self.proto),
            ("dport", self.dport),
            ("sport", self.sport),
            ("source", self.source),
            ("dest", self.dest),
            ("macro", self.macro),
            ("icmp-type", self.icmp_type),
            ("log", self.log),
        ):
            if value is not None:
                params[key] = value
        if self.comment:
            params["comment"] = self.comment
        return params

    def key(self) -> tuple[Any, ...]:
        """What makes two rules the same for PVE (macro names are case-insensitive there)."""
        return (
            self.type,
            self.action,
            self.proto,
            self.dport,
            self.sport,
            self.source,
            self.dest,
            self.macro.lower() if self.macro else None,
            self.icmp_type,
            self.comment,
            self.enable,
            self.log,
        )


def parse_rule(row: Mapping[str, Any]) -> FirewallRule:
    """A rule from ``GET .../groups/{group}`` (ignores ``pos``, ``digest``, ``ipversion``)."""

    def text(key: str) -> str | None:
        value = row.get(key)
        return None if value in (None, "") else str(value)

    return FirewallRule(
        type=str(row.get("type", "in")),
        action=str(row.get("action", "")),
        proto=text("proto"),
        dport=text("dport"),
        sport=text("sport"),
        source=text("source"),
        dest=text("dest"),
        macro=text("macro"),
        icmp_type=text("icmp-type"),
        comment=str(row.get("comment") or ""),
        enable=str(row.get("enable", 0)) not in ("0", "", "None"),
        log=text("log"),
    )


def same_rules(a: Sequence[FirewallRule], b: Sequence[FirewallRule]) -> bool:
    """True if both lists hold the same rules in the same order."""
    return [r.key() for r in a] == [r.key() for r in b]


# --------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class SecurityGroupSpec:
    """A security group as declared: name, comment and the ordered rules (first match wins)."""

    group: str
    comment: str = ""
    rules: tuple[FirewallRule, ...] = ()

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> SecurityGroupSpec:
        """Validate resource inputs; FirewallSpecError lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []
        group = inputs.get("group")
        try:
            check_group_name(group)
        except ValueError as exc:
            problems.append(("group", str(exc)))
        try:
            comment = _check_comment(inputs.get("comment"))
        except (TypeError, ValueError) as exc:
            problems.append(("comment", str(exc)))
            comment = ""
        raw = inputs.get("rules")
        rules: list[FirewallRule] = []
        if raw is None:
            raw = []
        if not isinstance(raw, list | tuple):
            problems.append(("rules", f"expected a list of rules, got {raw!r}"))
            raw = []
        for index, item in enumerate(raw):
            if isinstance(item, FirewallRule):
                rules.append(item)
                continue
            if not isinstance(item, Mapping):
                problems.append((f"rules[{index}]", f"expected a mapping, got {item!r}"))
                continue
            try:
                rules.append(FirewallRule.from_mapping(item))
            except (TypeError, ValueError) as exc:
                problems.append((f"rules[{index}]", str(exc)))
        if problems:
            raise FirewallSpecError(problems)
        return cls(str(group), comment, tuple(rules))

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs (what check() returns and diff() compares)."""
        return {"group": self.group, "comment": self.comment, "rules": [r.to_inputs() for r in self.rules]}


@dataclass(frozen=True)
class SecurityGroup:
    """A security group as Proxmox reports it."""

    group: str
    comment: str
    rules: tuple[FirewallRule, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class VmGroupBinding:
    """A security group applied to one NIC of a guest (``iface=None``: to every NIC)."""

    group: str
    iface: str | None = "net0"


@dataclass(frozen=True)
class GuestRule:
    """One rule of a guest's firewall as PVE reports it (only what binding code needs)."""

    pos: int
    type: str
    action: str
    iface: str | None
    enable: bool
    comment: str


@dataclass(frozen=True)
class GuestFirewall:
    """A guest's firewall: its options (``enable``, default policies) and its rules in order."""

    enable: bool
    policy_in: str
    policy_out: str
    rules: tuple[GuestRule, ...] = ()


def _group_path(group: str) -> str:
    return f"/cluster/firewall/groups/{quote(group, safe='')}"


class FirewallApi:
    """Create, read, update and delete security groups; bind them to guests."""

    def __init__(self, client: ProxmoxClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ groups

    def list_groups(self) -> dict[str, str]:
        """Every security group, as name -> comment."""
        rows = self.client.get("/cluster/firewall/groups") or []
        return {str(r["group"]): str(r.get("comment") or "") for r in rows if isinstance(r, Mapping)}

    def _rules(self, group: str) -> tuple[list[FirewallRule], str | None]:
        rows = self.client.get(_group_path(group)) or []
        digest = str(rows[0]["digest"]) if rows and rows[0].get("digest") else None
        return [parse_rule(r) for r in rows], digest

    def get_group(self, group: str) -> SecurityGroup | None:
        """The group with its rules, or None if there is none of that name."""
        check_group_name(group)
        groups = self.list_groups()
        if group not in groups:
            return None
        rules, _ = self._rules(group)
        return SecurityGroup(group, groups[group], tuple(rules))

    def create_group(self, spec: SecurityGroupSpec) -> bool:
        """Create the group with its rules; True if an identical group already existed and was adopted.

        If adding a rule fails, the group created by this call is removed again before the error is
        raised, so no half-filled group is left behind.
        """
        existing = self.get_group(spec.group)
        if existing is not None:
            if existing.comment == spec.comment and same_rules(existing.rules, spec.rules):
                return True
            raise FirewallConflictError(
                f"security group {spec.group} already exists with "
                + ("another comment" if existing.comment != spec.comment else "other rules")
                + f" ({len(existing.rules)} rule(s)); delete or rename it, or pick another group name",
                method="POST",
                path="/cluster/firewall/groups",
            )
        try:
            self.client.post("/cluster/firewall/groups", group=spec.group, comment=spec.comment or None)
        except ProxmoxValidationError as exc:
            if "already exists" in str(exc.errors.get("group", "")):
                raise FirewallConflictError(
                    f"security group {spec.group} was created by someone else meanwhile; run again to compare",
                    method="POST",
                    path="/cluster/firewall/groups",
                ) from None
            raise
        try:
            self._post_rules(spec.group, spec.rules)
        except BaseException as exc:
            note = self._remove_quietly(spec.group)
            if note and isinstance(exc, ProxmoxError):
                exc.message += f" ({note})"
                exc.args = (exc._render(),)
            raise
        return False

    def _post_rules(self, group: str, rules: Sequence[FirewallRule]) -> None:
        # Each POST inserts at position 0: post the last rule first to end up in declared order.
        for rule in reversed(rules):
            self.client.post(_group_path(group), **rule.to_params())

    def set_comment(self, group: str, comment: str) -> None:
        """Change the group's comment (``POST .../groups group=<g> rename=<g> comment=...``)."""
        self.client.post("/cluster/firewall/groups", group=group, rename=group, comment=comment)

    def set_rules(self, group: str, rules: Sequence[FirewallRule]) -> int:
        """Make the group's rules exactly ``rules``; returns the number of API writes (0 if nothing changed).

        The new rules go on top first; then the old ones are deleted from the bottom up, each with the
        digest of the list it was read from.
        """
        current, _ = self._rules(group)
        if same_rules(current, rules):
            return 0
        self._post_rules(group, rules)
        writes = len(rules)
        writes += self._delete_rules(group, keep=len(rules), expected=current)
        return writes

    def _delete_rules(self, group: str, *, keep: int, expected: Sequence[FirewallRule] | None = None) -> int:
        """Delete every rule below position ``keep``, bottom first; check they are the ones expected."""
        rules, digest = self._rules(group)
        old = rules[keep:]
        if expected is not None and not same_rules(old, expected):
            raise ProxmoxError(
                f"security group {group} changed while its rules were replaced; the new rules are at the top, "
                f"{len(old)} old rule(s) remain below them. Run the update again",
                method="DELETE",
                path=_group_path(group),
            )
        writes = 0
        for pos in range(len(rules) - 1, keep - 1, -1):
            try:
                self.client.delete(f"{_group_path(group)}/{pos}", digest=digest)
            except ProxmoxError as exc:
                if _MODIFIED.search(exc.message):
                    raise ProxmoxError(
                        f"security group {group} was modified by someone else while rules were removed; run again",
                        method="DELETE",
                        path=f"{_group_path(group)}/{pos}",
                    ) from None
                raise
            writes += 1
            if pos > keep:
                _, digest = self._rules(group)
        return writes

    def delete_group(self, group: str) -> bool:
        """Delete the group's rules, then the group; False if it was already gone.

        PVE does not check whether guests still reference the group: their ``type=group`` rules then
        point at nothing and are skipped by the firewall. Unbind guests first (or let them be deleted
        first: Pulumi deletes dependents before what they depend on).
        """
        if group not in self.list_groups():
            return False
        self._delete_rules(group, keep=0)
        self.client.delete(_group_path(group))
        return True

    def _remove_quietly(self, group: str) -> str | None:
        try:
            self.delete_group(group)
            return None
        except Exception as cleanup_error:  # the original error matters more; say what was left behind
            log.error("could not remove the half-made security group %s: %s", group, cleanup_error)
            return f"the half-made security group {group} could not be removed: {cleanup_error}"

    # ------------------------------------------------------------------ guests

    def bind_vm(
        self,
        node: str,
        vmid: int,
        bindings: Iterable[VmGroupBinding],
        *,
        policy_in: str = "DROP",
        policy_out: str = "ACCEPT",
        enable: bool = True,
        comment: str | None = None,
    ) -> int:
        """Apply security groups to a VM's NICs and switch its firewall on with a default inbound policy.

        The group rules are added first (missing ones only) and the guest firewall is enabled last, so
        the VM is never behind ``policy_in=DROP`` without its ACCEPT rules. The NICs must carry
        ``firewall=1`` (``ProxmoxVm`` NIC option ``firewall``) for any of this to filter. Returns the
        number of rules added.

        With ``comment`` every rule added carries it, and only *enabled* group rules carrying exactly
        that comment count as already present: a caller that marks its rules this way never mistakes a
        rule someone else added (or disabled) for its own. ``enable=False`` writes the policies but
        switches the guest firewall off (the rules stay).
        """
        for policy in (policy_in, policy_out):
            if policy not in ACTIONS:
                raise ValueError(f"policy: must be one of {ACTIONS}, got {policy!r}")
        if comment is not None:
            _check_comment(comment)
        base = f"/nodes/{node}/qemu/{vmid}/firewall"
        existing = {
            (str(r.get("action")), r.get("iface") or None)
            for r in self.client.get(f"{base}/rules") or []
            if r.get("type") == "group"
            and (comment is None or (str(r.get("comment") or "") == comment and _enabled(r)))
        }
        added = 0
        for binding in bindings:
            check_group_name(binding.group)
            if binding.iface is not None and not _NIC.fullmatch(binding.iface):
                raise ValueError(f"iface: {binding.iface!r} is not a NIC slot like net0")
            if (binding.group, binding.iface) in existing:
                continue
            params: dict[str, Any] = {"type": "group", "action": binding.group, "enable": 1}
            if binding.iface is not None:
                params["iface"] = binding.iface
            if comment:
                params["comment"] = comment
            self.client.post(f"{base}/rules", **params)
            existing.add((binding.group, binding.iface))
            added += 1
        self.client.put(f"{base}/options", enable=1 if enable else 0, policy_in=policy_in, policy_out=policy_out)
        return added

    def vm_firewall(self, node: str, vmid: int) -> GuestFirewall:
        """A guest's firewall options and rules, as PVE reports them (PVE's defaults filled in)."""
        base = f"/nodes/{node}/qemu/{vmid}/firewall"
        options = self.client.get(f"{base}/options") or {}
        rows = self.client.get(f"{base}/rules") or []
        return GuestFirewall(
            enable=_enabled(options),
            policy_in=str(options.get("policy_in") or "DROP"),
            policy_out=str(options.get("policy_out") or "ACCEPT"),
            rules=tuple(_guest_rule(pos, row) for pos, row in enumerate(rows)),
        )

    def unbind_vm(
        self,
        node: str,
        vmid: int,
        *,
        keep: Iterable[VmGroupBinding],
        owned: Callable[[GuestRule], bool],
        comment: str,
    ) -> int:
        """Remove the guest's group rules that ``owned`` claims, except one enabled rule per binding in ``keep``
        that carries ``comment``; returns the number of rules removed.

        Rules ``owned`` does not claim are never touched. Each delete names the rule's position and the
        digest of the list it was read from, and the list is read again after every delete, so a rule
        someone added or moved meanwhile is never deleted in place of ours (PVE refuses the stale digest).
        """
        wanted = {(b.group, b.iface) for b in keep}
        base = f"/nodes/{node}/qemu/{vmid}/firewall/rules"
        removed = 0
        budget: int | None = None
        while True:
            rows = self.client.get(base) or []
            digest = str(rows[0]["digest"]) if rows and rows[0].get("digest") else None
            stale = _stale_positions([_guest_rule(pos, row) for pos, row in enumerate(rows)], wanted, owned, comment)
            if not stale:
                return removed
            if budget is None:
                budget = len(stale) + 3
            if removed >= budget:
                raise ProxmoxError(
                    f"VM {vmid}: stale security group rules keep reappearing after {removed} deletes",
                    method="DELETE",
                    path=base,
                )
            pos = stale[-1]  # bottom first: the positions above it stay valid
            try:
                self.client.delete(f"{base}/{pos}", digest=digest)
            except ProxmoxError as exc:
                if _MODIFIED.search(exc.message):
                    raise ProxmoxError(
                        f"the firewall rules of VM {vmid} were modified by someone else while stale bindings "
                        "were removed; run again",
                        method="DELETE",
                        path=f"{base}/{pos}",
                    ) from None
                raise
            removed += 1


def _enabled(row: Mapping[str, Any]) -> bool:
    return str(row.get("enable", 0)) not in ("0", "", "None")


def _guest_rule(pos: int, row: Mapping[str, Any]) -> GuestRule:
    return GuestRule(
        pos=int(row.get("pos", pos)),
        type=str(row.get("type", "")),
        action=str(row.get("action", "")),
        iface=str(row["iface"]) if row.get("iface") else None,
        enable=_enabled(row),
        comment=str(row.get("comment") or ""),
    )


def _stale_positions(
    rules: Sequence[GuestRule],
    wanted: set[tuple[str, str | None]],
    owned: Callable[[GuestRule], bool],
    comment: str,
) -> list[int]:
    kept: set[tuple[str, str | None]] = set()
    stale: list[int] = []
    for rule in rules:
        if rule.type != "group" or not owned(rule):
            continue
        key = (rule.action, rule.iface)
        if key in wanted and key not in kept and rule.enable and rule.comment == comment:
            kept.add(key)
            continue
        stale.append(rule.pos)
    return sorted(stale)


__all__ = [
    "ACTIONS",
    "FirewallApi",
    "FirewallConflictError",
    "FirewallRule",
    "FirewallSpecError",
    "GuestFirewall",
    "GuestRule",
    "SecurityGroup",
    "SecurityGroupSpec",
    "VmGroupBinding",
    "check_address",
    "check_group_name",
    "check_ports",
    "parse_rule",
    "same_rules",
]
