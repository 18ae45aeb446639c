"""Proxmox VE access control over ProxmoxClient: roles, users, API tokens and ACL entries.

Plain functions and classes, no pulumi import. Inputs are validated locally before any call (role ids
starting with ``PVE``, user and token id formats, privilege names from ``providers/proxmox/privileges.py``,
ACL path format), so a typo fails at ``pulumi preview`` instead of half-way through an apply.

Existence is read from the listing endpoints (``GET /access/users?full=1`` carries every user's tokens,
``GET /access/acl`` every ACL entry) rather than from the per-object GETs: PVE answers a missing user or
token with HTTP 500 "no such user (...)", which the client classifies as transient and retries. Roles
are read with ``GET /access/roles/{roleid}``, whose 500 "role 'x' does not exist" is a clean not-found.

"Already exists" on create is adopted only if the existing object is identical; otherwise
:class:`AccessConflictError` says what differs. An API token is never adopted: its secret is shown
once, at creation, and cannot be read back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import ProxmoxAlreadyExistsError, ProxmoxError, ProxmoxNotFoundError
from providers.proxmox.privileges import PrivilegeError, check_acl_path, check_custom_roleid, check_privileges
from providers.proxmox.wire import plain_numbers

PrincipalKind = Literal["user", "token", "group"]
PRINCIPAL_KINDS: tuple[PrincipalKind, ...] = ("user", "token", "group")
# The PUT /access/acl parameter that carries each kind of principal.
ACL_PARAM: dict[PrincipalKind, str] = {"user": "users", "token": "tokens", "group": "groups"}

# pve-access-control: user_regex [^\s:/]+, realm_regex [A-Za-z][A-Za-z0-9.\-_]+ (also the token name).
_REALM = r"[A-Za-z][A-Za-z0-9.\-_]+"
USERID = re.compile(rf"([^\s:/]+)@({_REALM})")
TOKEN_NAME = re.compile(_REALM)
FULL_TOKENID = re.compile(rf"([^\s:/]+@{_REALM})!({_REALM})")
GROUP_ID = re.compile(r"[A-Za-z0-9.\-_]+")
MAX_COMMENT = 2048

# PVE's wording for an object that is gone; some of them arrive as HTTP 500 (see the module doc).
_GONE = re.compile(r"does not exist|no such (?:user|token|group)", re.IGNORECASE)


class AccessSpecError(ValueError):
    """Inputs of an access object that Proxmox VE would refuse; ``problems`` are (field, reason)."""

    def __init__(self, what: str, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        text = "; ".join(f"{name}: {reason}" for name, reason in self.problems)
        super().__init__(f"invalid {what}: {text}")


class AccessConflictError(ProxmoxAlreadyExistsError):
    """The object already exists in Proxmox and differs from (or, for a token, cannot be matched to) ours."""


def is_gone(error: BaseException) -> bool:
    """True if a Proxmox error says the object (role, user, token, group) does not exist."""
    return isinstance(error, ProxmoxNotFoundError) or (
        isinstance(error, ProxmoxError) and bool(_GONE.search(error.message))
    )


# --------------------------------------------------------------------------- validation helpers


def check_userid(userid: Any) -> str:
    """``name@realm`` as PVE accepts it (3-64 characters); ValueError naming the value otherwise."""
    if not isinstance(userid, str) or not USERID.fullmatch(userid):
        raise ValueError(f"{userid!r} is not a Proxmox user id: expected 'name@realm' (e.g. 'pulumi@pve')")
    if not 3 <= len(userid) <= 64:
        raise ValueError(f"user id {userid!r} must be 3 to 64 characters long")
    return userid


def check_token_name(tokenid: Any) -> str:
    """The token part of ``user@realm!name``: a letter, then at least one of letters, digits, ``.-_``."""
    if not isinstance(tokenid, str) or not TOKEN_NAME.fullmatch(tokenid):
        raise ValueError(
            f"{tokenid!r} is not a token id: it must start with a letter and be followed by at least one "
            "letter, digit, '.', '-' or '_' (e.g. 'iac')"
        )
    return tokenid


def check_full_tokenid(full: Any) -> str:
    """A full token id ``user@realm!name``; ValueError naming the value otherwise."""
    if not isinstance(full, str) or not FULL_TOKENID.fullmatch(full):
        raise ValueError(f"{full!r} is not a full token id: expected 'user@realm!name'")
    check_userid(full.partition("!")[0])
    return full


def check_groupid(group: Any) -> str:
    """A group id (letters, digits, ``.-_``)."""
    if not isinstance(group, str) or not GROUP_ID.fullmatch(group):
        raise ValueError(f"{group!r} is not a group id: only letters, digits, '.', '-' and '_'")
    return group


def _problem(problems: list[tuple[str, str]], name: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except (ValueError, TypeError) as exc:
        problems.append((name, str(exc)))
        return value


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in ("0", "1"):
        return value == "1"
    raise TypeError(f"expected a boolean, got {value!r}")


def _epoch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected a Unix time in seconds (0 = never), got {value!r}")
    number = int(value)
    if number < 0:
        raise ValueError(f"expected a Unix time in seconds (0 = never), got {value!r}")
    return number


def _comment(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    if len(value) > MAX_COMMENT:
        raise ValueError(f"at most {MAX_COMMENT} characters")
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


def _str_list(value: Any, check: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"expected a list of strings, got {value!r}")
    items = [check(v) for v in value]
    return tuple(sorted(set(items)))


def _major(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or value not in (8, 9):
        raise ValueError(f"must be 8 or 9 (or unset), got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- specs (desired state)


@dataclass(frozen=True)
class RoleSpec:
    """A custom role: id and privileges (sorted); ``pve_major_version`` narrows the privilege check."""

    roleid: str
    privileges: tuple[str, ...] = ()
    pve_major_version: int | None = None

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> RoleSpec:
        """Validate resource inputs; AccessSpecError lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []
        roleid = _problem(problems, "roleid", check_custom_roleid, inputs.get("roleid"))
        major = _problem(problems, "pve_major_version", _major, inputs.get("pve_major_version"))
        raw = _problem(problems, "privileges", lambda v: _str_list(v, _name), inputs.get("privileges"))
        privileges: tuple[str, ...] = ()
        if isinstance(raw, tuple) and not any(n == "pve_major_version" for n, _ in problems):
            privileges = _problem(problems, "privileges", lambda v: check_privileges(v, major), raw)
        if problems:
            raise AccessSpecError("role", problems)
        return cls(roleid, privileges, major)

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs (what check() returns and diff() compares)."""
        return {"roleid": self.roleid, "privileges": list(self.privileges), "pve_major_version": self.pve_major_version}


@dataclass(frozen=True)
class UserSpec:
    """A Proxmox user (``name@realm``); tokens and ACLs are separate objects."""

    userid: str
    comment: str = ""
    enable: bool = True
    expire: int = 0

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> UserSpec:
        """Validate resource inputs; AccessSpecError lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []
        userid = _problem(problems, "userid", check_userid, inputs.get("userid"))
        comment = _problem(problems, "comment", _comment, inputs.get("comment"))
        enable = _problem(problems, "enable", lambda v: _bool(v, True), inputs.get("enable"))
        expire = _problem(problems, "expire", lambda v: _epoch(0 if v is None else v), inputs.get("expire"))
        if problems:
            raise AccessSpecError("user", problems)
        return cls(userid, comment, enable, expire)

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs."""
        return {"userid": self.userid, "comment": self.comment, "enable": self.enable, "expire": self.expire}


@dataclass(frozen=True)
class TokenSpec:
    """An API token of a user. ``expire=None`` means "same as the user" (PVE's default)."""

    userid: str
    tokenid: str
    privsep: bool = True
    expire: int | None = None
    comment: str = ""
    rotate_trigger: str | None = None

    @property
    def full_tokenid(self) -> str:
        """``user@realm!tokenid``: what ACLs and the ``Authorization`` header name."""
        return f"{self.userid}!{self.tokenid}"

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> TokenSpec:
        """Validate resource inputs; AccessSpecError lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []
        userid = _problem(problems, "userid", check_userid, inputs.get("userid"))
        tokenid = _problem(problems, "tokenid", check_token_name, inputs.get("tokenid"))
        privsep = _problem(problems, "privsep", lambda v: _bool(v, True), inputs.get("privsep"))
        raw_expire = inputs.get("expire")
        expire = None if raw_expire is None else _problem(problems, "expire", _epoch, raw_expire)
        comment = _problem(problems, "comment", _comment, inputs.get("comment"))
        trigger = inputs.get("rotate_trigger")
        if trigger is not None and not isinstance(trigger, str):
            problems.append(("rotate_trigger", f"expected a string, got {trigger!r}"))
        if problems:
            raise AccessSpecError("API token", problems)
        return cls(userid, tokenid, privsep, expire, comment, trigger)

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs (never the secret: that is an output only)."""
        return {
            "userid": self.userid,
            "tokenid": self.tokenid,
            "privsep": self.privsep,
            "expire": self.expire,
            "comment": self.comment,
            "rotate_trigger": self.rotate_trigger,
        }


Pair = tuple[str, PrincipalKind, str]
"""One ACL fact: (roleid, principal kind, principal id)."""


@dataclass(frozen=True)
class AclSpec:
    """ACL entries: every role of ``roles`` on ``path`` for every listed user, token and group."""

    path: str
    roles: tuple[str, ...]
    users: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    propagate: bool = True

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> AclSpec:
        """Validate resource inputs; AccessSpecError lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []
        path = _problem(problems, "path", check_acl_path, inputs.get("path"))
        roles = _problem(problems, "roles", lambda v: _str_list(v, _roleid), inputs.get("roles"))
        users = _problem(problems, "users", lambda v: _str_list(v, check_userid), inputs.get("users"))
        tokens = _problem(problems, "tokens", lambda v: _str_list(v, check_full_tokenid), inputs.get("tokens"))
        groups = _problem(problems, "groups", lambda v: _str_list(v, check_groupid), inputs.get("groups"))
        propagate = _problem(problems, "propagate", lambda v: _bool(v, True), inputs.get("propagate"))
        if isinstance(roles, tuple) and not roles:
            problems.append(("roles", "name at least one role"))
        if all(isinstance(x, tuple) and not x for x in (users, tokens, groups)):
            problems.append(("users", "name at least one user, token or group"))
        if problems:
            raise AccessSpecError("ACL", problems)
        return cls(path, roles, users, tokens, groups, propagate)

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs."""
        return {
            "path": self.path,
            "roles": list(self.roles),
            "users": list(self.users),
            "tokens": list(self.tokens),
            "groups": list(self.groups),
            "propagate": self.propagate,
        }

    def principals(self) -> tuple[tuple[PrincipalKind, str], ...]:
        """(kind, id) of every principal."""
        return (
            *(("user", u) for u in self.users),
            *(("token", t) for t in self.tokens),
            *(("group", g) for g in self.groups),
        )

    def pairs(self) -> frozenset[Pair]:
        """Every (role, kind, principal) this spec grants."""
        return frozenset((role, kind, ugid) for role in self.roles for kind, ugid in self.principals())


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _roleid(value: Any) -> str:
    if not isinstance(value, str) or not GROUP_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a role id")
    return value


# --------------------------------------------------------------------------- what Proxmox has


@dataclass(frozen=True)
class Role:
    """A role as Proxmox reports it."""

    roleid: str
    privileges: frozenset[str]


@dataclass(frozen=True)
class Token:
    """An API token as Proxmox reports it (never with its secret: PVE cannot give it back)."""

    userid: str
    tokenid: str
    privsep: bool
    expire: int
    comment: str

    @property
    def full_tokenid(self) -> str:
        """``user@realm!tokenid``."""
        return f"{self.userid}!{self.tokenid}"


@dataclass(frozen=True)
class User:
    """A user as Proxmox reports it, with its tokens."""

    userid: str
    comment: str
    enable: bool
    expire: int
    tokens: Mapping[str, Token] = field(default_factory=dict)


@dataclass(frozen=True)
class CreatedToken:
    """A token just created (or regenerated): the only moment PVE hands out its secret ``value``."""

    full_tokenid: str
    privsep: bool
    value: str = field(repr=False)


@dataclass(frozen=True)
class AclEntry:
    """One row of ``GET /access/acl``."""

    path: str
    roleid: str
    kind: PrincipalKind
    ugid: str
    propagate: bool


def parse_role(roleid: str, data: Any) -> Role:
    """A role from ``GET /access/roles/{roleid}`` (``{"VM.Audit": 1, ...}``)."""
    if not isinstance(data, Mapping):
        raise ProxmoxError(f"unexpected answer for role {roleid}: {type(data).__name__}")
    return Role(roleid, frozenset(str(k) for k, v in data.items() if _truthy(v)))


def parse_users(data: Any) -> dict[str, User]:
    """Users (and their tokens) from ``GET /access/users?full=1``."""
    users: dict[str, User] = {}
    for row in data or []:
        if not isinstance(row, Mapping) or not isinstance(row.get("userid"), str):
            continue
        userid = row["userid"]
        tokens: dict[str, Token] = {}
        for tok in row.get("tokens") or []:
            if isinstance(tok, Mapping) and isinstance(tok.get("tokenid"), str):
                tokens[tok["tokenid"]] = Token(
                    userid=userid,
                    tokenid=tok["tokenid"],
                    privsep=_truthy(tok.get("privsep", 1)),
                    expire=int(tok.get("expire") or 0),
                    comment=str(tok.get("comment") or ""),
                )
        users[userid] = User(
            userid=userid,
            comment=str(row.get("comment") or ""),
            enable=_truthy(row.get("enable", 1)),
            expire=int(row.get("expire") or 0),
            tokens=tokens,
        )
    return users


def parse_acl(data: Any) -> list[AclEntry]:
    """ACL entries from ``GET /access/acl`` (rows of path, roleid, type, ugid, propagate)."""
    out: list[AclEntry] = []
    for row in data or []:
        if not isinstance(row, Mapping) or row.get("type") not in PRINCIPAL_KINDS:
            continue
        out.append(
            AclEntry(
                path=str(row.get("path", "")),
                roleid=str(row.get("roleid", "")),
                kind=row["type"],
                ugid=str(row.get("ugid", "")),
                propagate=_truthy(row.get("propagate", 1)),
            )
        )
    return out


def _truthy(value: Any) -> bool:
    return value not in (None, 0, "0", False, "")


def _user_path(userid: str) -> str:
    return f"/access/users/{quote(userid, safe='@')}"


def _token_path(userid: str, tokenid: str) -> str:
    return f"{_user_path(userid)}/token/{quote(tokenid, safe='')}"


def _csv(values: Iterable[str]) -> str | None:
    items = sorted(values)
    return ",".join(items) if items else None


# --------------------------------------------------------------------------- the API


class AccessApi:
    """Create, read, update and delete roles, users, API tokens and ACL entries through one client."""

    def __init__(self, client: ProxmoxClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ roles

    def get_role(self, roleid: str) -> Role | None:
        """The role, or None if it does not exist (``GET /access/roles/{roleid}``)."""
        try:
            data = self.client.get(f"/access/roles/{quote(roleid, safe='')}")
        except ProxmoxError as exc:
            if is_gone(exc):
                return None
            raise
        return parse_role(roleid, data)

    def create_role(self, spec: RoleSpec) -> bool:
        """Create the role; True if an identical role already existed and was adopted."""
        check_custom_roleid(spec.roleid)
        try:
            self.client.post("/access/roles", roleid=spec.roleid, privs=_csv(spec.privileges))
        except ProxmoxAlreadyExistsError:
            existing = self.get_role(spec.roleid)
            wanted = frozenset(spec.privileges)
            if existing is not None and existing.privileges == wanted:
                return True
            have = existing.privileges if existing is not None else frozenset()
            raise AccessConflictError(
                f"role {spec.roleid} already exists with different privileges "
                f"(missing: {sorted(wanted - have) or '-'}; extra: {sorted(have - wanted) or '-'}); "
                "import it, delete it, or pick another roleid",
                method="POST",
                path="/access/roles",
            ) from None
        return False

    def update_role(self, spec: RoleSpec) -> None:
        """Replace the role's privileges with ``spec.privileges`` (``append=0``).

        With no privileges both parameters are left out (PVE's schema refuses ``append`` without ``privs``);
        PVE then empties the role, as ``append`` defaults to off.
        """
        check_custom_roleid(spec.roleid)
        privs = _csv(spec.privileges)
        self.client.put(
            f"/access/roles/{quote(spec.roleid, safe='')}", privs=privs, append=False if privs is not None else None
        )

    def delete_role(self, roleid: str) -> bool:
        """Delete the role; False if it was already gone."""
        check_custom_roleid(roleid)
        try:
            self.client.delete(f"/access/roles/{quote(roleid, safe='')}")
        except ProxmoxError as exc:
            if is_gone(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------------ users

    def list_users(self) -> dict[str, User]:
        """Every user the caller may see, with tokens (``GET /access/users?full=1``)."""
        return parse_users(self.client.get("/access/users", full=True))

    def get_user(self, userid: str) -> User | None:
        """The user, or None if it does not exist."""
        return self.list_users().get(check_userid(userid))

    def create_user(self, spec: UserSpec) -> bool:
        """Create the user; True if an identical user already existed and was adopted."""
        try:
            self.client.post(
                "/access/users",
                userid=spec.userid,
                comment=spec.comment or None,
                enable=spec.enable,
                expire=spec.expire,
            )
        except ProxmoxAlreadyExistsError:
            existing = self.get_user(spec.userid)
            if existing is not None and _user_matches(existing, spec):
                return True
            found = (
                f"comment={existing.comment!r}, enable={existing.enable}, expire={existing.expire}"
                if existing is not None
                else "not visible to this token"
            )
            raise AccessConflictError(
                f"user {spec.userid} already exists and differs ({found}); import it, delete it, or pick "
                "another userid",
                method="POST",
                path="/access/users",
            ) from None
        return False

    def update_user(self, spec: UserSpec) -> None:
        """Set comment, enable and expire (``PUT /access/users/{userid}``)."""
        self.client.put(_user_path(spec.userid), comment=spec.comment, enable=spec.enable, expire=spec.expire)

    def delete_user(self, userid: str) -> bool:
        """Delete the user (PVE drops its tokens and ACL entries with it); False if it was already gone."""
        if self.get_user(userid) is None:
            return False
        try:
            self.client.delete(_user_path(userid))
        except ProxmoxError as exc:
            if is_gone(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------------ tokens

    def get_token(self, userid: str, tokenid: str) -> Token | None:
        """The token (without secret), or None if it or its user does not exist."""
        user = self.get_user(userid)
        return None if user is None else user.tokens.get(tokenid)

    def create_token(self, spec: TokenSpec) -> CreatedToken:
        """Create the token and return its secret, which PVE shows this once only.

        A token that already exists is never adopted (its secret cannot be read back): that raises
        AccessConflictError with what to do instead.
        """
        path = _token_path(spec.userid, spec.tokenid)
        try:
            data = self.client.post(path, privsep=spec.privsep, expire=spec.expire, comment=spec.comment or None)
        except ProxmoxError as exc:
            if not _token_exists(exc):
                raise
            raise AccessConflictError(
                f"API token {spec.full_tokenid} already exists. Its secret is shown only once, at creation, "
                "so it cannot be adopted: delete it ('pveum user token remove "
                f"{spec.userid} {spec.tokenid}'), or import it (its value output then stays empty), or pick "
                "another tokenid",
                method="POST",
                path=path,
            ) from None
        return CreatedToken(spec.full_tokenid, spec.privsep, _token_value(data, "POST", path))

    def update_token(self, spec: TokenSpec) -> None:
        """Set privsep, expire (if given) and comment; the secret is unchanged."""
        self.client.put(
            _token_path(spec.userid, spec.tokenid), privsep=spec.privsep, expire=spec.expire, comment=spec.comment
        )

    def regenerate_token(self, userid: str, tokenid: str) -> str:
        """Rotate the secret (``regenerate=1``): the old value stops working; returns the new one."""
        path = _token_path(userid, tokenid)
        return _token_value(self.client.put(path, regenerate=True), "PUT", path)

    def delete_token(self, userid: str, tokenid: str) -> bool:
        """Delete the token (PVE drops its ACL entries with it); False if it was already gone."""
        if self.get_token(userid, tokenid) is None:
            return False
        try:
            self.client.delete(_token_path(userid, tokenid))
        except ProxmoxError as exc:
            if is_gone(exc):
                return False
            raise
        return True

    # ------------------------------------------------------------------ ACLs

    def list_acl(self) -> list[AclEntry]:
        """Every ACL entry the caller may see (``GET /access/acl``)."""
        return parse_acl(self.client.get("/access/acl"))

    def acl_state(self, spec: AclSpec) -> dict[Pair, bool]:
        """Which of the spec's (role, kind, principal) entries exist on its path, with their propagate flag."""
        wanted = spec.pairs()
        found: dict[Pair, bool] = {}
        for entry in self.list_acl():
            pair: Pair = (entry.roleid, entry.kind, entry.ugid)
            if entry.path == spec.path and pair in wanted:
                found[pair] = entry.propagate
        return found

    def grant_acl(self, spec: AclSpec) -> None:
        """Add (or re-set the propagate flag of) every entry of the spec in one ``PUT /access/acl``."""
        params: dict[str, Any] = {"path": spec.path, "roles": _csv(spec.roles), "propagate": spec.propagate}
        for kind in PRINCIPAL_KINDS:
            params[ACL_PARAM[kind]] = _csv(ugid for k, ugid in spec.principals() if k == kind)
        self.client.request("PUT", "/access/acl", params)

    def revoke_acl(self, path: str, pairs: Iterable[Pair]) -> int:
        """Remove these entries from ``path`` (``delete=1``), one call per role; returns the calls made.

        Only entries that still exist are removed: PVE refuses a removal naming a user, token or role
        that is gone, and deleting a user or token already dropped its entries.
        """
        check_acl_path(path)
        wanted = set(pairs)
        if not wanted:
            return 0
        present = {(e.roleid, e.kind, e.ugid) for e in self.list_acl() if e.path == path}
        by_role: dict[str, list[tuple[PrincipalKind, str]]] = {}
        for role, kind, ugid in sorted(wanted & present):
            by_role.setdefault(role, []).append((kind, ugid))
        for role, principals in by_role.items():
            params: dict[str, Any] = {"path": path, "roles": role, "delete": True}
            for kind in PRINCIPAL_KINDS:
                params[ACL_PARAM[kind]] = _csv(ugid for k, ugid in principals if k == kind)
            try:
                self.client.request("PUT", "/access/acl", params)
            except ProxmoxError as exc:
                if not is_gone(exc):
                    raise
        return len(by_role)

    def update_acl(self, old: AclSpec, new: AclSpec) -> None:
        """Move from ``old`` to ``new`` on the same path: grant first, then revoke what is no longer wanted.

        Granting first means a principal never loses a role it keeps, even for a moment.
        """
        if old.path != new.path:
            raise ValueError(f"an ACL cannot move from {old.path} to {new.path} in place")
        self.grant_acl(new)
        self.revoke_acl(old.path, old.pairs() - new.pairs())

    def delete_acl(self, spec: AclSpec) -> int:
        """Remove every entry of the spec that still exists; returns the calls made."""
        return self.revoke_acl(spec.path, spec.pairs())


def _token_exists(error: ProxmoxError) -> bool:
    """PVE refuses a duplicate token with HTTP 400 ``tokenid: Token already exists.`` (a 500 if it loses a race)."""
    return isinstance(error, ProxmoxAlreadyExistsError) or "already exists" in error.errors.get("tokenid", "").lower()


def _user_matches(user: User, spec: UserSpec) -> bool:
    return (user.comment, user.enable, user.expire) == (spec.comment, spec.enable, spec.expire)


def _token_value(data: Any, method: str, path: str) -> str:
    value = data.get("value") if isinstance(data, Mapping) else None
    if not isinstance(value, str) or not value:
        # Never echo the answer: it may hold a secret in an unexpected place.
        raise ProxmoxError("PVE answered without the token's secret 'value'", method=method, path=path)
    return value


__all__ = [
    "AccessApi",
    "AccessConflictError",
    "AccessSpecError",
    "AclEntry",
    "AclSpec",
    "CreatedToken",
    "PrivilegeError",
    "Role",
    "RoleSpec",
    "Token",
    "TokenSpec",
    "User",
    "UserSpec",
    "check_full_tokenid",
    "check_groupid",
    "check_token_name",
    "check_userid",
    "is_gone",
    "parse_acl",
    "parse_role",
    "parse_users",
]
