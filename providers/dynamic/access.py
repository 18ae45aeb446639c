"""Pulumi dynamic resources for Proxmox VE access control: ProxmoxRole, ProxmoxUser, ProxmoxApiToken, ProxmoxAcl.

Written like ``providers/dynamic/vm.py``: the provider classes are importable and hold no state, so dill
pickles them *by reference* and never captures a credential; the connection comes from the stack config
in ``configure()`` (``providers/dynamic/runtime.py``). All Proxmox work is in ``providers/proxmox/access.py``.

Each provider implements check (local validation, no Proxmox call), an explicit diff (replace on
identity changes, update in place otherwise), create, read (refresh and ``import_``), update and delete.

Secrets: the only secret is an API token's ``value``. It is returned by Proxmox once, at creation (or
rotation), lives only in the ``value`` output (marked with ``additional_secret_outputs``), and never in
the resource id, an exception or a log line. Refresh keeps the stored value (Proxmox cannot give it back).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import pulumi
from pulumi import dynamic

from providers.dynamic import runtime
from providers.dynamic.base import ProxmoxProvider
from providers.dynamic.inputs import has_unknown as _has_unknown
from providers.proxmox.access import (
    AccessApi,
    AccessSpecError,
    AclSpec,
    RoleSpec,
    TokenSpec,
    UserSpec,
)

log = logging.getLogger(__name__)

PROVIDER_KEY = "__provider"
TOKEN_SECRET_OUTPUT = "value"

ROLE_REPLACE_FIELDS = ("roleid",)
USER_REPLACE_FIELDS = ("userid",)
TOKEN_REPLACE_FIELDS = ("userid", "tokenid")
ACL_REPLACE_FIELDS = ("path",)

SpecT = TypeVar("SpecT", RoleSpec, UserSpec, TokenSpec, AclSpec)


def _api() -> AccessApi:
    client, _ = runtime.client()
    return AccessApi(client)


def _inputs_only(props: Mapping[str, Any], spec_fields: Sequence[str]) -> dict[str, Any]:
    return {k: props.get(k) for k in spec_fields}


def _spec_fields(spec_cls: type[SpecT]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(spec_cls))


def check_inputs(spec_cls: type[SpecT], news: Mapping[str, Any]) -> dynamic.CheckResult:
    """Validate inputs without calling Proxmox; canonical inputs on success, one CheckFailure per problem."""
    names = _spec_fields(spec_cls)
    inputs = _inputs_only(news, names)
    if _has_unknown(inputs):
        return dynamic.CheckResult(inputs, [])
    try:
        spec = spec_cls.from_inputs(inputs)
    except AccessSpecError as exc:
        return dynamic.CheckResult(inputs, [dynamic.CheckFailure(name, reason) for name, reason in exc.problems])
    return dynamic.CheckResult(spec.to_inputs(), [])


def _canonical(spec_cls: type[SpecT], props: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical inputs; state that no longer validates (say, a privilege a newer PVE added) is compared raw."""
    names = _spec_fields(spec_cls)
    try:
        return spec_cls.from_inputs(_inputs_only(props, names)).to_inputs()
    except AccessSpecError:
        return {k: sorted(v) if isinstance(v, list) else v for k, v in _inputs_only(props, names).items()}


def diff_inputs(
    spec_cls: type[SpecT], olds: Mapping[str, Any], news: Mapping[str, Any], replace_fields: Sequence[str]
) -> dynamic.DiffResult:
    """Compare canonical inputs: a change of a ``replace_fields`` entry replaces, anything else updates."""
    names = _spec_fields(spec_cls)
    new_inputs = _inputs_only(news, names)
    if _has_unknown(new_inputs):
        unknown: list[str] = [k for k, v in new_inputs.items() if _has_unknown(v)]
        old = _canonical(spec_cls, olds)
        known_changes: list[str] = [k for k, v in new_inputs.items() if k not in unknown and v != old.get(k)]
        replaces = [k for k in (*unknown, *known_changes) if k in replace_fields]
        return dynamic.DiffResult(changes=True, replaces=replaces, delete_before_replace=False)
    old, new = _canonical(spec_cls, olds), spec_cls.from_inputs(new_inputs).to_inputs()
    changed = [k for k in names if old.get(k) != new.get(k)]
    return dynamic.DiffResult(
        changes=bool(changed), replaces=[k for k in changed if k in replace_fields], delete_before_replace=False
    )


class _AccessProvider(ProxmoxProvider):
    """Shared by the access providers: the connection comes from the stack config, never from ``self``."""


# --------------------------------------------------------------------------- roles


class ProxmoxRoleProvider(_AccessProvider):
    """CRUD of custom roles; built-in roles (``PVE*``, Administrator, NoAccess) are refused in check()."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate the role id and every privilege name."""
        return check_inputs(RoleSpec, news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A new roleid replaces the role; privileges change in place."""
        return diff_inputs(RoleSpec, olds, news, ROLE_REPLACE_FIELDS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Create the role (adopting an identical existing one)."""
        spec = RoleSpec.from_inputs(props)
        adopted = _api().create_role(spec)
        log.info("ProxmoxRole %s %s", spec.roleid, "adopted (identical)" if adopted else "created")
        return dynamic.CreateResult(spec.roleid, {**spec.to_inputs(), "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``import_="<roleid>"``): the privileges Proxmox reports become the inputs."""
        role = _api().get_role(id_)
        if role is None:
            return dynamic.ReadResult(None, {})
        inputs = {
            "roleid": id_,
            "privileges": sorted(role.privileges),
            "pve_major_version": props.get("pve_major_version"),
        }
        adopted = bool(props.get("adopted")) or "adopted" not in props
        return dynamic.ReadResult(id_, {**inputs, "adopted": adopted}, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Replace the role's privilege list."""
        spec = RoleSpec.from_inputs(news)
        _api().update_role(spec)
        return dynamic.UpdateResult({**spec.to_inputs(), "adopted": bool(olds.get("adopted"))})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Delete the role; one that is already gone is fine."""
        _api().delete_role(id_)


@dataclass
class ProxmoxRoleArgs:
    """Inputs of a ProxmoxRole.

    ``roleid``: letters, digits, ``.-_``; not starting with ``PVE`` (reserved). ``privileges``: names
    such as ``VM.Audit``, checked against PVE's list. ``pve_major_version`` (8 or 9) checks them against
    that version only, so ``VM.Monitor`` on 9 or ``VM.GuestAgent.*`` on 8 fails at preview.
    """

    roleid: pulumi.Input[str]
    privileges: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)
    pve_major_version: pulumi.Input[int] | None = None


class ProxmoxRole(dynamic.Resource):
    """A custom Proxmox VE role (a named set of privileges). Outputs ``adopted`` if it pre-existed identically."""

    roleid: pulumi.Output[str]
    privileges: pulumi.Output[list[str]]
    adopted: pulumi.Output[bool]

    def __init__(self, name: str, args: ProxmoxRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props["adopted"] = None
        super().__init__(ProxmoxRoleProvider(), name, props, opts)


# --------------------------------------------------------------------------- users


class ProxmoxUserProvider(_AccessProvider):
    """CRUD of Proxmox users (no password: API tokens are how automation authenticates)."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate ``name@realm`` and the attributes."""
        return check_inputs(UserSpec, news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A new userid replaces the user; comment, enable and expire change in place."""
        return diff_inputs(UserSpec, olds, news, USER_REPLACE_FIELDS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Create the user (adopting an identical existing one)."""
        spec = UserSpec.from_inputs(props)
        adopted = _api().create_user(spec)
        log.info("ProxmoxUser %s %s", spec.userid, "adopted (identical)" if adopted else "created")
        return dynamic.CreateResult(spec.userid, {**spec.to_inputs(), "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``import_="<user@realm>"``)."""
        user = _api().get_user(id_)
        if user is None:
            return dynamic.ReadResult(None, {})
        inputs = {"userid": id_, "comment": user.comment, "enable": user.enable, "expire": user.expire}
        adopted = bool(props.get("adopted")) or "adopted" not in props
        return dynamic.ReadResult(id_, {**inputs, "adopted": adopted}, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Set comment, enable and expire."""
        spec = UserSpec.from_inputs(news)
        _api().update_user(spec)
        return dynamic.UpdateResult({**spec.to_inputs(), "adopted": bool(olds.get("adopted"))})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Delete the user (Proxmox removes its tokens and ACL entries too)."""
        _api().delete_user(id_)


@dataclass
class ProxmoxUserArgs:
    """Inputs of a ProxmoxUser.

    ``userid``: ``name@realm`` (e.g. ``pulumi@pve``; the realm must exist). ``comment``: one line.
    ``enable``: False locks the user and every token of it out. ``expire``: Unix time, 0 = never.
    """

    userid: pulumi.Input[str]
    comment: pulumi.Input[str] = ""
    enable: pulumi.Input[bool] = True
    expire: pulumi.Input[int] = 0


class ProxmoxUser(dynamic.Resource):
    """A Proxmox VE user, the owner of API tokens. Deleting it deletes its tokens and ACL entries."""

    userid: pulumi.Output[str]
    comment: pulumi.Output[str]
    enable: pulumi.Output[bool]
    expire: pulumi.Output[int]
    adopted: pulumi.Output[bool]

    def __init__(self, name: str, args: ProxmoxUserArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props["adopted"] = None
        super().__init__(ProxmoxUserProvider(), name, props, opts)


# --------------------------------------------------------------------------- API tokens


def _split_full_tokenid(id_: str) -> tuple[str, str]:
    userid, bang, tokenid = id_.rpartition("!")
    if not bang or not userid or not tokenid:
        raise ValueError(f"a ProxmoxApiToken id is 'user@realm!tokenid', got {id_!r}")
    return userid, tokenid


class ProxmoxApiTokenProvider(_AccessProvider):
    """CRUD of API tokens; the secret ``value`` exists only in the output of create (and rotation)."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate user id and token id (never looks at the secret)."""
        return check_inputs(TokenSpec, news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A new userid or tokenid replaces the token (a new secret); the rest changes in place."""
        return diff_inputs(TokenSpec, olds, news, TOKEN_REPLACE_FIELDS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Create the token; an existing one is never adopted (its secret cannot be read back)."""
        spec = TokenSpec.from_inputs(props)
        created = _api().create_token(spec)
        log.info("ProxmoxApiToken %s created (privsep=%s)", created.full_tokenid, int(created.privsep))
        outs = {**spec.to_inputs(), "full_tokenid": created.full_tokenid, TOKEN_SECRET_OUTPUT: created.value}
        return dynamic.CreateResult(created.full_tokenid, outs)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``import_="user@realm!tokenid"``); the stored secret is kept as it is.

        An imported token has no ``value`` (Proxmox shows it only at creation); rotate it
        (``rotate_trigger``) to get one into state.
        """
        userid, tokenid = _split_full_tokenid(id_)
        token = _api().get_token(userid, tokenid)
        if token is None:
            return dynamic.ReadResult(None, {})
        inputs = {
            "userid": userid,
            "tokenid": tokenid,
            "privsep": token.privsep,
            "expire": None if props.get("expire") is None else token.expire,
            "comment": token.comment,
            "rotate_trigger": props.get("rotate_trigger"),
        }
        outs = {**inputs, "full_tokenid": id_, TOKEN_SECRET_OUTPUT: props.get(TOKEN_SECRET_OUTPUT)}
        return dynamic.ReadResult(id_, outs, inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Set privsep/expire/comment; a changed ``rotate_trigger`` regenerates the secret."""
        old = _canonical(TokenSpec, olds)
        spec = TokenSpec.from_inputs(news)
        api = _api()
        new = spec.to_inputs()
        if any(old.get(k) != new[k] for k in ("privsep", "expire", "comment")):
            api.update_token(spec)
        value = olds.get(TOKEN_SECRET_OUTPUT)
        if old.get("rotate_trigger") != spec.rotate_trigger:
            value = api.regenerate_token(spec.userid, spec.tokenid)
            log.info("ProxmoxApiToken %s: secret regenerated (rotate_trigger changed)", id_)
        return dynamic.UpdateResult({**new, "full_tokenid": spec.full_tokenid, TOKEN_SECRET_OUTPUT: value})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Delete the token (Proxmox removes its ACL entries too); one that is already gone is fine."""
        userid, tokenid = _split_full_tokenid(id_)
        _api().delete_token(userid, tokenid)


@dataclass
class ProxmoxApiTokenArgs:
    """Inputs of a ProxmoxApiToken.

    ``userid``: the owner, ``name@realm``. ``tokenid``: a letter then at least one letter, digit or
    ``.-_`` (the full id is ``userid!tokenid``). ``expire``: Unix time, 0 = never, unset = same as the
    user. ``comment``: one line. ``rotate_trigger``: any string; changing it regenerates the secret
    in place (the old value stops working at once).

    ``privsep`` (default **True**, as in PVE): **a privilege-separated token holds only the
    INTERSECTION of its user's privileges and its own ACL entries.** A role granted to the token
    alone gives it nothing unless the user holds that privilege on that path too, and a role granted to
    the user alone gives the token nothing either: grant every ACL to BOTH the user and the token.
    ``privsep=False`` makes the token carry ALL of the user's privileges (what the CAPMOX and CSI docs
    do); then grant to the user only, and keep that user dedicated to the token.
    """

    userid: pulumi.Input[str]
    tokenid: pulumi.Input[str]
    privsep: pulumi.Input[bool] = True
    expire: pulumi.Input[int] | None = None
    comment: pulumi.Input[str] = ""
    rotate_trigger: pulumi.Input[str] | None = None


class ProxmoxApiToken(dynamic.Resource):
    """A Proxmox VE API token. ``value`` (the secret) is a Pulumi secret, known only after create.

    Use ``full_tokenid`` in ACLs and as ``PVEAPIToken=<full_tokenid>=<value>``. See
    :class:`ProxmoxApiTokenArgs` for the privsep intersection semantics.
    """

    userid: pulumi.Output[str]
    tokenid: pulumi.Output[str]
    privsep: pulumi.Output[bool]
    full_tokenid: pulumi.Output[str]
    value: pulumi.Output[str]

    def __init__(self, name: str, args: ProxmoxApiTokenArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props["full_tokenid"] = None
        props[TOKEN_SECRET_OUTPUT] = None
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=[TOKEN_SECRET_OUTPUT])
        )
        super().__init__(ProxmoxApiTokenProvider(), name, props, opts)


# --------------------------------------------------------------------------- ACLs


def _acl_path_of(id_: str) -> str:
    return id_.split("#", 1)[0]


def _acl_from_state(id_: str, props: Mapping[str, Any]) -> AclSpec:
    """The ACL as last granted: declared roles plus ``granted_roles`` (which a refresh never shrinks)."""
    roles = sorted({*(props.get("roles") or []), *(props.get("granted_roles") or [])})
    return AclSpec.from_inputs({**props, "path": _acl_path_of(id_), "roles": roles})


class ProxmoxAclProvider(_AccessProvider):
    """ACL entries: every role of ``roles`` on ``path`` for every listed user, token and group.

    Besides its inputs the state keeps ``granted_roles``, the roles last granted by create or update.
    A refresh may shrink ``roles`` (an entry removed outside Pulumi shows as drift) but never
    ``granted_roles``, so update and delete still revoke every entry this resource ever granted.
    """

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate the path format, role ids and principal ids."""
        return check_inputs(AclSpec, news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A new path replaces; roles, principals and propagate change in place (grant, then revoke)."""
        return diff_inputs(AclSpec, olds, news, ACL_REPLACE_FIELDS)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Grant the entries in one ``PUT /access/acl``."""
        spec = AclSpec.from_inputs(props)
        _api().grant_acl(spec)
        log.info(
            "ProxmoxAcl on %s: granted %s to %d principal(s)", spec.path, ",".join(spec.roles), len(spec.principals())
        )
        outs = {**spec.to_inputs(), "granted_roles": list(spec.roles)}
        return dynamic.CreateResult(f"{spec.path}#{uuid.uuid4().hex[:8]}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh: a role missing for any principal drops out of ``roles`` (drift); none left means deleted.

        Import needs the program's inputs (``ResourceOptions(import_="<path>")`` with the args): an ACL
        has no id of its own in Proxmox.
        """
        if not props.get("roles") and not props.get("granted_roles"):
            raise ValueError(f"ProxmoxAcl {id_}: import it with its inputs (path, roles, principals) in the program")
        spec = _acl_from_state(id_, props)
        state = _api().acl_state(spec)
        if not state:
            return dynamic.ReadResult(None, {})
        principals = spec.principals()
        held = [r for r in spec.roles if all((r, kind, ugid) in state for kind, ugid in principals)]
        propagate = spec.propagate if all(p == spec.propagate for p in state.values()) else not spec.propagate
        inputs = {**spec.to_inputs(), "roles": held, "propagate": propagate}
        granted = props.get("granted_roles") or list(spec.roles)
        return dynamic.ReadResult(id_, {**inputs, "granted_roles": granted}, inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Grant the new entries, then revoke the ones no longer wanted."""
        old, new = _acl_from_state(id_, olds), AclSpec.from_inputs(news)
        _api().update_acl(old, new)
        return dynamic.UpdateResult({**new.to_inputs(), "granted_roles": list(new.roles)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Revoke every entry that still exists (Proxmox drops entries of deleted users/tokens itself)."""
        _api().delete_acl(_acl_from_state(id_, props))


@dataclass
class ProxmoxAclArgs:
    """Inputs of a ProxmoxAcl.

    ``path``: a normalised ACL path (``/``, ``/pool/k8s``, ``/storage/local-lvm``, ``/vms/100``,
    ``/sdn/zones/localnetwork/vmbr0``, ...). ``roles``: role ids (custom or built-in). ``users``,
    ``tokens`` (full ids, e.g. ``ProxmoxApiToken.full_tokenid``) and ``groups``: at least one in total.
    ``propagate``: also apply to everything below ``path`` (default True).

    Two ProxmoxAcl resources must not grant the same role to the same principal on the same path: the
    one deleted first would revoke the entry for both.
    """

    path: pulumi.Input[str]
    roles: pulumi.Input[Sequence[pulumi.Input[str]]]
    users: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)
    tokens: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)
    groups: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)
    propagate: pulumi.Input[bool] = True


class ProxmoxAcl(dynamic.Resource):
    """Proxmox VE ACL entries (path x roles x principals), granted together and revoked on delete."""

    path: pulumi.Output[str]
    roles: pulumi.Output[list[str]]
    propagate: pulumi.Output[bool]
    granted_roles: pulumi.Output[list[str]]

    def __init__(self, name: str, args: ProxmoxAclArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props["granted_roles"] = None
        super().__init__(ProxmoxAclProvider(), name, props, opts)
