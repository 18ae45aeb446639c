"""Access control for the local simulator: users, API tokens, roles, groups and ACL entries that persist.

fakepve stores nothing for ``/access/*``: every request there gets a synthetic answer, so on the local stack
``pulumi refresh`` sees every role, user, token and ACL entry as deleted. :class:`AccessControlApi` is a
fakepve route area (``fakepve.routing.StatefulRoutes``) that keeps them, with the answer shapes of the PVE 9
API schema and the messages of pve-access-control (``PVE/API2/{User,Role,Group,ACL}.pm``,
``PVE/AccessControl.pm``): a failure inside PVE's ``lock_user_config`` carries its prefix ("create user
failed: user 'x' already exists"), a failed check before the lock does not ("no such user ('x')").

What it models beyond storage, because PVE does it too:

* a created (or regenerated) API token is registered in ``apitokens``, so it authenticates; deleting the
  token or its user revokes it, and a disabled or expired user (or an expired token) cannot log in;
* ``user.cfg`` is re-read after every write, so ACL entries naming a deleted role, token or user vanish;
* the built-in roles (``Administrator``, ``NoAccess``, ``PVE*``) exist and cannot be changed or deleted;
* tokens put into ``apitokens`` directly (``tools.simulator.seed``) belong to a user: both are adopted into
  the store on first use (an enabled user, a ``privsep=0`` token), so the listings show them.

fakepve's own permission model (``pve.acl``) is left alone: ACL entries are stored and listed, never enforced.

:class:`LocalPve` is the simulator the local stack, the integration tests and the benchmarks serve.
"""

from __future__ import annotations

import copy
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from fakepve import schema as pve_schema
from fakepve.model import PveError
from fakepve.routing import StatefulRoutes, die, ok, param_error
from fakepve.routing import split_list as _split_list
from fakepve.server import USER, FakePve, params
from fakepve.shapes import PRIVILEGES

from tools.simulator_pending import PendingAppliedConfig

Handler = Callable[[dict[str, Any], Any], Coroutine[Any, Any, Any]]
Route = tuple[str, str, Handler]

ROOT = "root@pam"
PRINCIPAL_KINDS = ("user", "group", "token")
# Realms of a fresh PVE install (``domains.cfg``): the ``realm-type`` of the user listing.
REALM_TYPES = {"pam": "pam", "pve": "pve"}
# The token properties PUT .../token/{tokenid} can delete (its ``delete`` parameter).
TOKEN_DELETABLE = ("comment", "expire")

_REALM = r"[A-Za-z][A-Za-z0-9.\-_]+"
FULL_TOKENID = re.compile(rf"([^\s:/]+@{_REALM})!({_REALM})")
_ID = r"[A-Za-z0-9.\-_]+"
# PVE::AccessControl::check_path (PVE 9): the paths an ACL entry may be added on.
ACL_PATH = re.compile(
    rf"/|/access|/access/groups(?:/{_ID})?|/access/realm(?:/{_ID})?"
    rf"|/mapping(?:/{_ID}(?:/{_ID})?)?|/nodes(?:/{_ID})?|/pool(?:/{_ID}(?:/{_ID}){{0,2}})?"
    rf"|/sdn|/sdn/(?:controllers|dns|ipams|vnets)(?:/{_ID})?"
    rf"|/sdn/zones(?:/{_ID}(?:/{_ID}(?:/[1-9][0-9]{{0,3}})?)?)?"
    rf"|/storage(?:/{_ID})?|/vms(?:/[1-9][0-9]{{2,}})?"
)


def _builtin_roles() -> dict[str, frozenset[str]]:
    """``create_roles`` of pve-access-control for PVE 9 (privilege groups: root, admin, user, audit)."""
    groups: dict[str, dict[str, tuple[str, ...]]] = {
        "VM": {
            "admin": (
                "VM.Config.Disk",
                "VM.Config.CPU",
                "VM.Config.Memory",
                "VM.Config.Network",
                "VM.Config.HWType",
                "VM.Config.Options",
                "VM.Allocate",
                "VM.Clone",
                "VM.GuestAgent.Unrestricted",
                "VM.Migrate",
                "VM.Replicate",
                "VM.Snapshot",
                "VM.Snapshot.Rollback",
            ),
            "user": (
                "VM.Config.CDROM",
                "VM.Config.Cloudinit",
                "VM.Console",
                "VM.Backup",
                "VM.GuestAgent.FileRead",
                "VM.GuestAgent.FileSystemMgmt",
                "VM.GuestAgent.FileWrite",
                "VM.PowerMgmt",
            ),
            "audit": ("VM.Audit", "VM.GuestAgent.Audit"),
        },
        "Sys": {"admin": ("Sys.Console", "Sys.Syslog"), "user": (), "audit": ("Sys.Audit",)},
        "Datastore": {
            "admin": ("Datastore.Allocate", "Datastore.AllocateTemplate"),
            "user": ("Datastore.AllocateSpace",),
            "audit": ("Datastore.Audit",),
        },
        "SDN": {"admin": ("SDN.Allocate", "SDN.Audit"), "user": ("SDN.Use",), "audit": ("SDN.Audit",)},
        "User": {"admin": ("User.Modify", "Group.Allocate", "Realm.AllocateUser"), "user": (), "audit": ()},
        "Pool": {"admin": ("Pool.Allocate",), "user": ("Pool.Audit",), "audit": ("Pool.Audit",)},
        "Mapping": {"admin": ("Mapping.Modify",), "user": ("Mapping.Use",), "audit": ("Mapping.Audit",)},
    }
    roles: dict[str, set[str]] = {"NoAccess": set(), "Administrator": set(PRIVILEGES)}
    for category, group in groups.items():
        everything = {*group["admin"], *group["user"], *group["audit"]}
        roles.setdefault(f"PVE{category}Admin", set()).update(everything)
        roles.setdefault("PVEAdmin", set()).update(everything)
        if group["user"]:
            roles[f"PVE{category}User"] = {*group["user"], *group["audit"]}
        roles.setdefault("PVEAuditor", set()).update(group["audit"])
    # Only Administrator, root@pam and PVEMappingAdmin may modify resource mappings.
    roles["PVEAdmin"].discard("Mapping.Modify")
    roles["PVETemplateUser"] = {"VM.Clone", "VM.Audit"}
    return {name: frozenset(privs) for name, privs in roles.items()}


BUILTIN_ROLES = _builtin_roles()


def normalize_acl_path(path: str | None) -> str | None:
    """``PVE::AccessControl::normalize_path``: collapse slashes, drop a trailing one; None if unusable."""
    if not path:
        return None
    path = re.sub(r"/+", "/", path)
    path = path[:-1] if path.endswith("/") else path
    path = path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path if re.fullmatch(r"[A-Za-z0-9.\-_/]+", path) else None


def split_list(text: Any) -> list[str]:
    """``PVE::Tools::split_list``: items separated by commas, semicolons or white space."""
    return [str(item) for item in _split_list(text)]


def _locked(prefix: str, error: PveError) -> PveError:
    """A ``die`` inside PVE's ``lock_user_config($code, $errmsg)``: ``"$errmsg: $err"``."""
    return PveError(error.status, f"{prefix}: {error.message}", error.errors)


def _flag(value: Any) -> int:
    return 1 if value else 0


class AccessControlApi(StatefulRoutes):  # type: ignore[misc]  # fakepve is untyped
    """Mixin of FakePve (put it first in the bases): ``/access/{users,roles,groups,acl}`` with state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # userid -> attributes as PVE re-reads them from user.cfg: enable, expire, comment, email, firstname,
        # lastname, keys, groups (a set) and tokens (tokenid -> {privsep, expire[, comment]}).
        self.access_users: dict[str, dict[str, Any]] = {ROOT: self._ac_new_user(enable=1)}
        # Custom roles only (the built-in ones are BUILTIN_ROLES): roleid -> privileges.
        self.access_roles: dict[str, set[str]] = {}
        # groupid -> {"comment": str | None, "users": set of userids}.
        self.access_groups: dict[str, dict[str, Any]] = {}
        # ACL tree flattened: path -> kind (user, group, token) -> ugid -> roleid -> propagate (0/1).
        self.access_acl: dict[str, dict[str, dict[str, dict[str, int]]]] = {}

    # ------------------------------------------------------------------ routes

    def _routes_access(self) -> list[Route]:
        """FakePve's own ``/access`` routes (``/access/permissions``), then users, tokens, roles, groups, ACL."""
        inherited = getattr(super(), "_routes_access", None)
        routes: list[Route] = list(inherited()) if inherited is not None else []
        users, user = "/access/users", "/access/users/{userid}"
        tokens, token = user + "/token", user + "/token/{tokenid}"
        roles, role = "/access/roles", "/access/roles/{roleid}"
        groups, group = "/access/groups", "/access/groups/{groupid}"
        return [
            *routes,
            ("GET", users, self._ac_user_index),
            ("POST", users, self._ac_user_create),
            ("GET", user, self._ac_user_read),
            ("PUT", user, self._ac_user_update),
            ("DELETE", user, self._ac_user_delete),
            ("GET", tokens, self._ac_token_index),
            ("GET", token, self._ac_token_read),
            ("POST", token, self._ac_token_create),
            ("PUT", token, self._ac_token_update),
            ("DELETE", token, self._ac_token_delete),
            ("GET", roles, self._ac_role_index),
            ("POST", roles, self._ac_role_create),
            ("GET", role, self._ac_role_read),
            ("PUT", role, self._ac_role_update),
            ("DELETE", role, self._ac_role_delete),
            ("GET", groups, self._ac_group_index),
            ("POST", groups, self._ac_group_create),
            ("GET", group, self._ac_group_read),
            ("PUT", group, self._ac_group_update),
            ("DELETE", group, self._ac_group_delete),
            ("GET", "/access/acl", self._ac_acl_read),
            ("PUT", "/access/acl", self._ac_acl_update),
        ]

    def _stateful_handler(self, template: str, handler: Handler) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        """fakepve's handler wrapper, but ``/access`` handlers see blank form values (``comment=``) as PVE does.

        fakepve drops them, and ``comment=`` is how a user's comment is cleared.
        """
        if not template.startswith("/access/"):
            wrapped: Callable[[Any], Coroutine[Any, Any, Any]] = super()._stateful_handler(template, handler)
            return wrapped

        async def serve(request: Any) -> Any:
            match = pve_schema.Match(template, dict(request.match_info), pve_schema.load().paths[template])
            user = request[USER]

            async def call(_match: Any, values: dict[str, Any]) -> Any:
                return await handler(values, user)

            return ok(await self.answer(request, match, await _params_with_blanks(request), user, call))

        return serve

    # ------------------------------------------------------------------ authentication

    def _authenticate(self, request: Any) -> Any:
        """fakepve's check, then PVE's ``verify_token``: the token's user must be enabled and unexpired."""
        who = super()._authenticate(request)
        found = FULL_TOKENID.fullmatch(who) if isinstance(who, str) else None
        if found is not None:
            userid, tokenid = found.groups()
            record = self._ac_users().get(userid)
            info = self._ac_token_info(userid, tokenid)
            if record is None or info is None or not self._ac_enabled(record) or _expired(info.get("expire")):
                raise PveError(401, "authentication failure")
        return who

    def check_password(self, user: str, password: str) -> bool:
        """A disabled or expired user cannot log in with a password either."""
        record = self.access_users.get(user)
        if record is not None and not self._ac_enabled(record):
            return False
        return bool(super().check_password(user, password))

    # ------------------------------------------------------------------ state helpers

    @staticmethod
    def _ac_new_user(enable: int = 1, expire: int = 0) -> dict[str, Any]:
        return {"enable": enable, "expire": expire, "groups": set(), "tokens": {}}

    @staticmethod
    def _ac_enabled(record: dict[str, Any]) -> bool:
        return bool(record.get("enable")) and not _expired(record.get("expire"))

    def _ac_adopt_tokens(self) -> None:
        """Tokens registered straight into ``apitokens`` (seed()) join the store with their user."""
        for full in list(self.apitokens):
            found = FULL_TOKENID.fullmatch(full)
            if found is None:
                continue
            userid, tokenid = found.groups()
            record = self.access_users.setdefault(userid, self._ac_new_user())
            record["tokens"].setdefault(tokenid, {"privsep": 0, "expire": 0})

    def _ac_users(self) -> dict[str, dict[str, Any]]:
        self._ac_adopt_tokens()
        return self.access_users

    def _ac_all_roles(self) -> dict[str, frozenset[str]]:
        return {**BUILTIN_ROLES, **{name: frozenset(privs) for name, privs in self.access_roles.items()}}

    def _ac_user(self, userid: str) -> dict[str, Any]:
        """``check_user_exist``."""
        record = self._ac_users().get(userid)
        if record is None:
            raise die(f"no such user ('{userid}')")
        return record

    def _ac_token_info(self, userid: str, tokenid: str) -> dict[str, Any] | None:
        """The stored token, or None if it or its user does not exist."""
        token: dict[str, Any] | None = self.access_users.get(userid, {}).get("tokens", {}).get(tokenid)
        return token

    def _ac_token(self, userid: str, tokenid: str) -> dict[str, Any]:
        """``check_token_exist``."""
        token: dict[str, Any] | None = self._ac_user(userid)["tokens"].get(tokenid)
        if token is None:
            raise die(f"no such token '{tokenid}' for user '{userid}'")
        return token

    def _ac_groups_of(self, values: dict[str, Any]) -> list[str]:
        groups = split_list(values.get("groups"))
        for name in groups:
            if name not in self.access_groups:
                raise die(f"no such group '{name}'")
        return groups

    def _ac_set_groups(self, userid: str, groups: list[str], *, append: bool) -> None:
        record = self.access_users[userid]
        if not append:
            for members in self.access_groups.values():
                members["users"].discard(userid)
            record["groups"] = set()
        for name in groups:
            self.access_groups[name]["users"].add(userid)
            record["groups"].add(name)

    def _ac_prune_acl(self) -> None:
        """What re-reading user.cfg does: drop entries naming a missing role, token, user or group."""
        roles = self._ac_all_roles()
        users = self.access_users
        for path in list(self.access_acl):
            node = self.access_acl[path]
            for kind, members in node.items():
                for ugid in list(members):
                    if kind == "user":
                        alive = ugid in users
                    elif kind == "group":
                        alive = ugid in self.access_groups
                    else:
                        found = FULL_TOKENID.fullmatch(ugid)
                        alive = found is not None and self._ac_token_info(*found.groups()) is not None
                    grants = {r: p for r, p in members[ugid].items() if r in roles} if alive else {}
                    if grants:
                        members[ugid] = grants
                    else:
                        del members[ugid]
            if not any(node.values()):
                del self.access_acl[path]

    def _ac_revoke_token(self, userid: str, tokenid: str) -> None:
        self.apitokens.pop(f"{userid}!{tokenid}", None)

    # ------------------------------------------------------------------ users

    def _ac_user_entry(self, userid: str, record: dict[str, Any], full: bool) -> dict[str, Any]:
        """``$extract_user_data``: the stored attributes, plus groups and tokens when ``full``."""
        entry = {
            k: record[k]
            for k in ("enable", "expire", "firstname", "lastname", "email", "comment", "keys")
            if record.get(k) is not None
        }
        if full:
            entry["groups"] = sorted(record["groups"])
            # PVE hands back its hash as is: a user without tokens has "tokens": null.
            entry["tokens"] = copy.deepcopy(record["tokens"]) or None
        return entry

    async def _ac_user_index(self, v: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        may_see_all = self.allowed(user, "/access/groups", "User.Modify") or self.allowed(
            user, "/access/groups", "Sys.Audit"
        )
        for userid, record in sorted(self._ac_users().items()):
            if not (may_see_all or userid == user):
                continue
            entry = self._ac_user_entry(userid, record, bool(v.get("full")))
            if v.get("enabled") is not None and bool(entry.get("enable")) != bool(v["enabled"]):
                continue
            if "groups" in entry:
                entry["groups"] = ",".join(entry["groups"])
            if entry.get("tokens") is not None:
                entry["tokens"] = [{"tokenid": t, **info} for t, info in sorted(entry["tokens"].items())]
            realm = userid.rpartition("@")[2]
            if realm in REALM_TYPES:
                entry["realm-type"] = REALM_TYPES[realm]
            entry["userid"] = userid
            out.append(entry)
        return out

    async def _ac_user_create(self, v: dict[str, Any], user: Any) -> None:
        userid = v["userid"]
        try:
            if userid in self._ac_users():
                raise die(f"user '{userid}' already exists")
            groups = self._ac_groups_of(v)
        except PveError as exc:
            raise _locked("create user failed", exc) from None
        record = self._ac_new_user(enable=1 if v.get("enable") is None else _flag(v["enable"]))
        record["expire"] = int(v.get("expire") or 0)
        for key in ("firstname", "lastname", "email", "comment", "keys"):
            if v.get(key):
                record[key] = v[key]
        self.access_users[userid] = record
        self._ac_set_groups(userid, groups, append=True)
        if v.get("password") is not None:
            self.users[userid] = v["password"]

    async def _ac_user_read(self, v: dict[str, Any], user: Any) -> dict[str, Any]:
        userid = v["userid"]
        return self._ac_user_entry(userid, self._ac_user(userid), True)

    async def _ac_user_update(self, v: dict[str, Any], user: Any) -> None:
        userid = v["userid"]
        try:
            record = self._ac_user(userid)
            groups = self._ac_groups_of(v)
        except PveError as exc:
            raise _locked("update user failed", exc) from None
        for key in ("enable", "expire"):
            if v.get(key) is not None:
                record[key] = int(v[key])
        if v.get("groups") is not None:
            self._ac_set_groups(userid, groups, append=bool(v.get("append")))
        for key in ("firstname", "lastname", "email", "comment", "keys"):
            if v.get(key) is not None:
                # An empty value is written as an empty field, which re-reads as unset.
                record[key] = v[key] or None

    async def _ac_user_delete(self, v: dict[str, Any], user: Any) -> None:
        # PVE does not check that the user exists: deleting a missing user succeeds.
        userid = v["userid"]
        record = self._ac_users().pop(userid, None)
        if record is not None:
            for tokenid in record["tokens"]:
                self._ac_revoke_token(userid, tokenid)
        for members in self.access_groups.values():
            members["users"].discard(userid)
        self.users.pop(userid, None)
        if userid == ROOT:  # userconfig_force_defaults puts root@pam back
            self.access_users[ROOT] = self._ac_new_user(enable=1)
        self._ac_prune_acl()

    # ------------------------------------------------------------------ tokens

    async def _ac_token_index(self, v: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        tokens = self._ac_user(v["userid"])["tokens"]
        return [{"tokenid": t, **copy.deepcopy(info)} for t, info in sorted(tokens.items())]

    async def _ac_token_read(self, v: dict[str, Any], user: Any) -> dict[str, Any]:
        return copy.deepcopy(self._ac_token(v["userid"], v["tokenid"]))

    async def _ac_token_create(self, v: dict[str, Any], user: Any) -> dict[str, Any]:
        userid, tokenid = v["userid"], v["tokenid"]
        record = self._ac_user(userid)
        if tokenid in record["tokens"]:
            raise param_error(tokenid="Token already exists.")
        info: dict[str, Any] = {"privsep": 1 if v.get("privsep") is None else _flag(v["privsep"])}
        if v.get("expire") is not None:
            info["expire"] = int(v["expire"])
        if v.get("comment"):
            info["comment"] = v["comment"]
        # Stored as user.cfg re-reads it: expire 0 when none was given.
        record["tokens"][tokenid] = {"expire": 0, **info}
        full = f"{userid}!{tokenid}"
        value = str(uuid.uuid4())
        self.apitokens[full] = value
        return {"full-tokenid": full, "info": info, "value": value}

    async def _ac_token_update(self, v: dict[str, Any], user: Any) -> dict[str, Any]:
        userid, tokenid = v["userid"], v["tokenid"]
        token = self._ac_token(userid, tokenid)
        deletes = split_list(v.get("delete"))
        for key in deletes:
            if key not in TOKEN_DELETABLE:
                raise param_error(delete=f"unknown option '{key}'")
        for key in deletes:
            token.pop(key, None)
        token.setdefault("expire", 0)
        if v.get("privsep") is not None:
            token["privsep"] = _flag(v["privsep"])
        if v.get("expire") is not None:
            token["expire"] = int(v["expire"])
        if v.get("comment"):  # PVE sets a comment only when it is non-empty; `delete=comment` clears it
            token["comment"] = v["comment"]
        answer = copy.deepcopy(token)
        if v.get("regenerate"):
            full = f"{userid}!{tokenid}"
            value = str(uuid.uuid4())
            self.apitokens[full] = value
            answer.update({"full-tokenid": full, "value": value})
        return answer

    async def _ac_token_delete(self, v: dict[str, Any], user: Any) -> None:
        userid, tokenid = v["userid"], v["tokenid"]
        self._ac_token(userid, tokenid)
        del self.access_users[userid]["tokens"][tokenid]
        self._ac_revoke_token(userid, tokenid)
        self._ac_prune_acl()

    # ------------------------------------------------------------------ roles

    @staticmethod
    def _ac_privileges(values: dict[str, Any]) -> list[str]:
        """The ``privs`` list; PVE's ``pve-priv-list`` format refuses an unknown name before the handler runs."""
        privs = split_list(values.get("privs"))
        for priv in privs:
            if priv not in PRIVILEGES:
                raise param_error(privs=f"invalid format - invalid privilege '{priv}'\n")
        return privs

    async def _ac_role_index(self, v: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        return [
            {"roleid": name, "privs": ",".join(sorted(privs)), "special": _flag(name in BUILTIN_ROLES)}
            for name, privs in sorted(self._ac_all_roles().items())
        ]

    async def _ac_role_read(self, v: dict[str, Any], user: Any) -> dict[str, int]:
        privs = self._ac_all_roles().get(v["roleid"])
        if privs is None:
            raise die(f"role '{v['roleid']}' does not exist")
        return dict.fromkeys(sorted(privs), 1)

    async def _ac_role_create(self, v: dict[str, Any], user: Any) -> None:
        roleid = v["roleid"]
        privs = self._ac_privileges(v)
        if roleid.lower().startswith("pve"):
            raise param_error(roleid="cannot use role ID starting with the (case-insensitive) 'PVE' namespace")
        if roleid in self._ac_all_roles():
            raise _locked("create role failed", die(f"role '{roleid}' already exists"))
        self.access_roles[roleid] = set(privs)

    async def _ac_role_update(self, v: dict[str, Any], user: Any) -> None:
        roleid = v["roleid"]
        privs = self._ac_privileges(v)
        if roleid in BUILTIN_ROLES:
            raise die(f"auto-generated role '{roleid}' cannot be modified")
        if roleid not in self.access_roles:
            raise _locked("update role failed", die(f"role '{roleid}' does not exist"))
        if not v.get("append"):
            self.access_roles[roleid] = set()
        self.access_roles[roleid].update(privs)

    async def _ac_role_delete(self, v: dict[str, Any], user: Any) -> None:
        roleid = v["roleid"]
        if roleid in BUILTIN_ROLES:
            raise die(f"auto-generated role '{roleid}' cannot be deleted")
        if roleid not in self.access_roles:
            raise _locked("delete role failed", die(f"role '{roleid}' does not exist"))
        del self.access_roles[roleid]
        self._ac_prune_acl()

    # ------------------------------------------------------------------ groups

    async def _ac_group_index(self, v: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, data in sorted(self.access_groups.items()):
            entry: dict[str, Any] = {"groupid": name, "users": ",".join(sorted(data["users"]))}
            if data["comment"] is not None:
                entry["comment"] = data["comment"]
            out.append(entry)
        return out

    async def _ac_group_read(self, v: dict[str, Any], user: Any) -> dict[str, Any]:
        data = self.access_groups.get(v["groupid"])
        if data is None:
            raise die(f"group '{v['groupid']}' does not exist")
        answer: dict[str, Any] = {"members": sorted(data["users"])}
        if data["comment"] is not None:
            answer["comment"] = data["comment"]
        return answer

    async def _ac_group_create(self, v: dict[str, Any], user: Any) -> None:
        name = v["groupid"]
        if name in self.access_groups:
            raise _locked("create group failed", die(f"group '{name}' already exists"))
        self.access_groups[name] = {"comment": v.get("comment") or None, "users": set()}

    async def _ac_group_update(self, v: dict[str, Any], user: Any) -> None:
        data = self.access_groups.get(v["groupid"])
        if data is None:
            raise _locked("update group failed", die(f"group '{v['groupid']}' does not exist"))
        if v.get("comment") is not None:
            data["comment"] = v["comment"] or None

    async def _ac_group_delete(self, v: dict[str, Any], user: Any) -> None:
        name = v["groupid"]
        if name not in self.access_groups:
            raise _locked("delete group failed", die(f"group '{name}' does not exist"))
        del self.access_groups[name]
        for record in self.access_users.values():
            record["groups"].discard(name)
        self._ac_prune_acl()

    # ------------------------------------------------------------------ ACL

    async def _ac_acl_read(self, v: dict[str, Any], user: Any) -> list[dict[str, Any]]:
        self._ac_adopt_tokens()
        audit = self.allowed(user, "/access", "Sys.Audit")
        out: list[dict[str, Any]] = []
        for path in sorted(self.access_acl):
            if not (audit or self.allowed(user, path, "Permissions.Modify")):
                continue
            node = self.access_acl[path]
            for kind in PRINCIPAL_KINDS:
                for ugid, grants in sorted(node.get(kind, {}).items()):
                    out.extend(
                        {"path": path, "type": kind, "ugid": ugid, "roleid": role, "propagate": grants[role]}
                        for role in sorted(grants)
                    )
        return out

    async def _ac_acl_update(self, v: dict[str, Any], user: Any) -> None:
        if not (v.get("users") or v.get("groups") or v.get("tokens")):
            message = "either 'users', 'groups' or 'tokens' is required."
            raise PveError(400, "Parameter verification failed.", dict.fromkeys(("users", "groups", "tokens"), message))
        path = normalize_acl_path(v.get("path"))
        if path is None or (not v.get("delete") and not ACL_PATH.fullmatch(path)):
            raise param_error(path=f"invalid ACL path '{v.get('path')}'")
        propagate = 1 if v.get("propagate") is None else _flag(v["propagate"])
        delete = bool(v.get("delete"))
        # PVE edits its parsed user.cfg and writes it at the end: a failure changes nothing.
        acl = copy.deepcopy(self.access_acl)
        node = acl.setdefault(path, {kind: {} for kind in PRINCIPAL_KINDS})
        users = self._ac_users()
        roles = self._ac_all_roles()
        try:
            for role in split_list(v.get("roles")):
                if role not in roles:
                    raise die(f"role '{role}' does not exist")
                principals: list[tuple[str, str]] = []
                for group in split_list(v.get("groups")):
                    if group not in self.access_groups:
                        raise die(f"group '{group}' does not exist")
                    principals.append(("group", group))
                for userid in split_list(v.get("users")):
                    if userid not in users:
                        raise die(f"user '{userid}' does not exist")
                    principals.append(("user", userid))
                for full in split_list(v.get("tokens")):
                    found = FULL_TOKENID.fullmatch(full)
                    if found is None:
                        raise die(f"'{full}' is not a valid token ID - not able to split into user and token parts")
                    self._ac_token(*found.groups())
                    principals.append(("token", full))
                for kind, ugid in principals:
                    grants = node[kind].setdefault(ugid, {})
                    if delete:
                        grants.pop(role, None)
                    else:
                        grants[role] = propagate
        except PveError as exc:
            raise _locked("ACL update failed", exc) from None
        # root@pam's entries are not written to user.cfg: it always has Administrator.
        node["user"].pop(ROOT, None)
        self.access_acl = acl
        self._ac_prune_acl()


async def _params_with_blanks(request: Any) -> dict[str, Any]:
    """fakepve's request parameters, plus the form fields it drops for having an empty value."""
    out: dict[str, Any] = await params(request)
    if request.content_type in ("application/json", "multipart/form-data"):
        return out
    body = await request.read()
    for key, value in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True):
        if value == "":
            out.setdefault(key, "")
    return out


def _expired(expire: Any) -> bool:
    return bool(expire) and int(expire) < time.time()


class LocalPve(AccessControlApi, PendingAppliedConfig, FakePve):  # type: ignore[misc]  # fakepve is untyped
    """The simulator of the local stack: fakepve plus stateful access control, and VM configs read with
    their pending changes applied as Proxmox reads them."""


__all__ = ["BUILTIN_ROLES", "AccessControlApi", "LocalPve", "normalize_acl_path"]
