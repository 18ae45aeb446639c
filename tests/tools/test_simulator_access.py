"""Access control (roles, users, API tokens, groups, ACL entries) against the local simulator over verified TLS.

``tools.simulator.ServedSimulator`` serves ``tools.simulator_access.LocalPve``: fakepve plus a stateful
``/access`` area, so what ``providers.proxmox.access.AccessApi`` creates is there when it reads back, a created
token really authenticates, and the errors carry PVE's wording (which decides the client's classification:
"already exists" adopts or conflicts, "does not exist"/"no such" reads as gone, and neither is retried).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from providers.proxmox.access import (
    AccessApi,
    AccessConflictError,
    AclSpec,
    Role,
    RoleSpec,
    TokenSpec,
    UserSpec,
    is_gone,
)
from providers.proxmox.client import ProxmoxClient
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import (
    ProxmoxAuthError,
    ProxmoxError,
    ProxmoxNotFoundError,
    ProxmoxValidationError,
)
from tests.conftest import FAST
from tests.support.faults import requests_matching
from tools.simulator import TOKEN_ID, TOKEN_SECRET, ServedSimulator, seed
from tools.simulator_access import BUILTIN_ROLES, LocalPve

pytestmark = pytest.mark.integration

USER = "capmox@pve"
ROLE = "PulumiVmRead"


@pytest.fixture
def sim(tmp_path: Any) -> Iterator[ServedSimulator]:
    served = ServedSimulator(str(tmp_path))
    try:
        seed(served.pve)
        yield served
    finally:
        served.stop()


def connect(sim: ServedSimulator, token_id: str, secret: str) -> ProxmoxClient:
    settings = ConnectionSettings(
        endpoint=sim.pve.url, token_id=token_id, token_secret=secret, ca_bundle=sim.cafile, http_timeout=30
    )
    return ProxmoxClient(settings, retry=FAST, task_poll_interval=0.05)


@pytest.fixture
def admin(sim: ServedSimulator) -> ProxmoxClient:
    """The seeded IaC token (``pulumi@pve!iac``)."""
    return connect(sim, TOKEN_ID, TOKEN_SECRET)


@pytest.fixture
def api(admin: ProxmoxClient) -> AccessApi:
    return AccessApi(admin)


def sent(sim: ServedSimulator, method: str, pattern: str, since: int) -> int:
    return len(requests_matching(sim.pve, method, pattern, since=since))


# --------------------------------------------------------------------------- wiring


def test_served_simulator_is_local_pve_with_access_routes_ahead_of_the_catch_all(sim: ServedSimulator) -> None:
    assert isinstance(sim.pve, LocalPve)
    routes = [(r.method, r.resource.canonical) for r in sim.pve._build_app().router.routes() if r.resource]
    catch_all = routes.index(("*", "/api2/json/{tail}"))
    for method, path in [
        ("GET", "/api2/json/access/users"),
        ("PUT", "/api2/json/access/users/{userid}/token/{tokenid}"),
        ("DELETE", "/api2/json/access/roles/{roleid}"),
        ("PUT", "/api2/json/access/acl"),
        ("GET", "/api2/json/access/permissions"),  # fakepve's own route of the area is kept
    ]:
        assert routes.index((method, path)) < catch_all, (method, path)


def test_the_mixin_overrides_only_what_it_means_to() -> None:
    """FakePve is one class of many mixins: a same-named helper would silently replace one of fakepve's
    (``_group_index`` once replaced the firewall's, breaking every firewall group listing)."""
    from fakepve.server import FakePve

    from tools.simulator_access import AccessControlApi

    mine = {name for name in vars(AccessControlApi) if not name.startswith("__")}
    assert mine & set(dir(FakePve)) == {"_authenticate", "_routes_access", "_stateful_handler", "check_password"}
    state = set(vars(LocalPve())) - set(vars(FakePve()))
    assert state == {"access_users", "access_roles", "access_groups", "access_acl"}


def test_firewall_groups_are_still_fakepves(admin: ProxmoxClient) -> None:
    admin.post("/cluster/firewall/groups", group="mgmt")
    assert [g["group"] for g in admin.get("/cluster/firewall/groups")] == ["mgmt"]


def test_fakepve_permissions_route_still_answers(admin: ProxmoxClient) -> None:
    held = admin.get("/access/permissions")
    assert set(held) == {"/"}
    assert held["/"]["Permissions.Modify"] == 1


def test_seeded_token_and_root_are_users(admin: ProxmoxClient) -> None:
    rows = {row["userid"]: row for row in admin.get("/access/users", full=1)}
    assert set(rows) == {"root@pam", "pulumi@pve"}
    assert rows["pulumi@pve"]["tokens"] == [{"tokenid": "iac", "privsep": 0, "expire": 0}]
    assert rows["pulumi@pve"]["realm-type"] == "pve"
    # PVE hands back its hash as is: no tokens is null, no groups an empty list joined.
    assert rows["root@pam"]["tokens"] is None
    assert rows["root@pam"]["groups"] == ""
    assert "tokens" not in admin.get("/access/users")[0]


# --------------------------------------------------------------------------- roles


def test_role_create_read_update_delete(api: AccessApi, admin: ProxmoxClient) -> None:
    assert api.create_role(RoleSpec(ROLE, ("VM.Audit", "Sys.Audit"))) is False
    role = api.get_role(ROLE)
    assert role is not None and role.privileges == {"VM.Audit", "Sys.Audit"}
    assert admin.get(f"/access/roles/{ROLE}") == {"Sys.Audit": 1, "VM.Audit": 1}
    listed = {r["roleid"]: r for r in admin.get("/access/roles")}
    assert listed[ROLE] == {"roleid": ROLE, "privs": "Sys.Audit,VM.Audit", "special": 0}

    api.update_role(RoleSpec(ROLE, ("VM.PowerMgmt",)))
    assert api.get_role(ROLE) == Role(ROLE, frozenset({"VM.PowerMgmt"}))
    admin.put(f"/access/roles/{ROLE}", privs="VM.Console", append=1)
    assert admin.get(f"/access/roles/{ROLE}") == {"VM.Console": 1, "VM.PowerMgmt": 1}
    api.update_role(RoleSpec(ROLE, ()))  # no privileges left: PUT with append=0 and no privs
    assert admin.get(f"/access/roles/{ROLE}") == {}

    assert api.delete_role(ROLE) is True
    assert api.get_role(ROLE) is None
    assert api.delete_role(ROLE) is False
    assert ROLE not in {r["roleid"] for r in admin.get("/access/roles")}


def test_role_already_exists_adopts_identical_and_refuses_different(api: AccessApi) -> None:
    api.create_role(RoleSpec(ROLE, ("VM.Audit",)))
    assert api.create_role(RoleSpec(ROLE, ("VM.Audit",))) is True
    with pytest.raises(AccessConflictError, match=r"missing: \['Sys.Audit'\]; extra: -"):
        api.create_role(RoleSpec(ROLE, ("Sys.Audit", "VM.Audit")))
    assert api.get_role(ROLE) == Role(ROLE, frozenset({"VM.Audit"}))


def test_role_errors_have_pve_wording_and_are_sent_once(sim: ServedSimulator, admin: ProxmoxClient) -> None:
    admin.post("/access/roles", roleid=ROLE)
    with pytest.raises(ProxmoxError, match=rf"create role failed: role '{ROLE}' already exists"):
        admin.post("/access/roles", roleid=ROLE)
    before = len(sim.pve.requests)
    with pytest.raises(ProxmoxNotFoundError, match="update role failed: role 'Gone' does not exist"):
        admin.put("/access/roles/Gone", privs="VM.Audit")
    with pytest.raises(ProxmoxNotFoundError, match="delete role failed: role 'Gone' does not exist"):
        admin.delete("/access/roles/Gone")
    with pytest.raises(ProxmoxNotFoundError) as err:
        admin.get("/access/roles/Gone")
    assert err.value.message == "role 'Gone' does not exist"  # outside PVE's lock: no prefix
    assert sent(sim, "PUT", r"/access/roles/Gone$", before) == 1  # not retried as transient
    assert sent(sim, "GET", r"/access/roles/Gone$", before) == 1


def test_builtin_roles_exist_read_only(admin: ProxmoxClient) -> None:
    vm_admin = admin.get("/access/roles/PVEVMAdmin")
    assert {"VM.Allocate", "VM.GuestAgent.Unrestricted", "VM.Audit"} <= set(vm_admin)
    assert "VM.Monitor" not in vm_admin  # gone in PVE 9
    assert admin.get("/access/roles/PVETemplateUser") == {"VM.Audit": 1, "VM.Clone": 1}
    assert admin.get("/access/roles/NoAccess") == {}
    listed = {r["roleid"]: r for r in admin.get("/access/roles")}
    assert set(BUILTIN_ROLES) <= set(listed)
    assert all(listed[name]["special"] == 1 for name in BUILTIN_ROLES)
    with pytest.raises(ProxmoxError, match="auto-generated role 'PVEVMAdmin' cannot be modified"):
        admin.put("/access/roles/PVEVMAdmin", privs="Sys.Modify", append=1)
    with pytest.raises(ProxmoxError, match="auto-generated role 'Administrator' cannot be deleted"):
        admin.delete("/access/roles/Administrator")
    with pytest.raises(ProxmoxError, match="create role failed: role 'NoAccess' already exists"):
        admin.post("/access/roles", roleid="NoAccess")


@pytest.mark.parametrize("roleid", ["PVEMine", "pveMine"])
def test_role_ids_in_the_pve_namespace_are_refused(admin: ProxmoxClient, roleid: str) -> None:
    with pytest.raises(ProxmoxValidationError) as err:
        admin.post("/access/roles", roleid=roleid, privs="VM.Audit")
    assert err.value.errors == {"roleid": "cannot use role ID starting with the (case-insensitive) 'PVE' namespace"}
    with pytest.raises(ProxmoxNotFoundError):
        admin.get(f"/access/roles/{roleid}")


def test_unknown_privilege_is_a_parameter_error(admin: ProxmoxClient) -> None:
    with pytest.raises(ProxmoxValidationError) as err:
        admin.post("/access/roles", roleid=ROLE, privs="VM.Audit,VM.Monitor")
    assert err.value.errors == {"privs": "invalid format - invalid privilege 'VM.Monitor'\n"}
    with pytest.raises(ProxmoxNotFoundError):
        admin.get(f"/access/roles/{ROLE}")


# --------------------------------------------------------------------------- users


def test_user_create_read_update_delete(api: AccessApi, admin: ProxmoxClient) -> None:
    assert api.create_user(UserSpec(USER, comment="CAPMOX", enable=True, expire=0)) is False
    user = api.get_user(USER)
    assert user is not None
    assert (user.comment, user.enable, user.expire, dict(user.tokens)) == ("CAPMOX", True, 0, {})
    assert admin.get(f"/access/users/{USER}") == {
        "enable": 1,
        "expire": 0,
        "comment": "CAPMOX",
        "groups": [],
        "tokens": None,
    }

    api.update_user(UserSpec(USER, comment="", enable=False, expire=4102444800))
    user = api.get_user(USER)
    assert user is not None and (user.comment, user.enable, user.expire) == ("", False, 4102444800)
    assert "comment" not in admin.get(f"/access/users/{USER}")  # an empty comment re-reads as unset
    assert [r["userid"] for r in admin.get("/access/users", enabled=0)] == [USER]
    assert USER not in {r["userid"] for r in admin.get("/access/users", enabled=1)}

    assert api.delete_user(USER) is True
    assert api.get_user(USER) is None
    assert api.delete_user(USER) is False


def test_user_already_exists_adopts_identical_and_refuses_different(api: AccessApi) -> None:
    api.create_user(UserSpec(USER, comment="CAPMOX"))
    assert api.create_user(UserSpec(USER, comment="CAPMOX")) is True
    with pytest.raises(AccessConflictError, match=f"user {USER} already exists and differs"):
        api.create_user(UserSpec(USER, comment="someone else's"))
    user = api.get_user(USER)
    assert user is not None and user.comment == "CAPMOX"


def test_missing_user_errors_have_pve_wording(sim: ServedSimulator, admin: ProxmoxClient) -> None:
    before = len(sim.pve.requests)
    with pytest.raises(ProxmoxNotFoundError) as err:
        admin.get("/access/users/ghost@pve")
    assert err.value.message == "no such user ('ghost@pve')"
    assert is_gone(err.value)
    with pytest.raises(ProxmoxNotFoundError, match=r"update user failed: no such user \('ghost@pve'\)") as err:
        admin.put("/access/users/ghost@pve", comment="x")
    assert is_gone(err.value)
    with pytest.raises(ProxmoxNotFoundError) as err:
        admin.get("/access/users/ghost@pve/token")
    assert err.value.message == "no such user ('ghost@pve')"
    assert sent(sim, "GET", r"/access/users/ghost@pve$", before) == 1
    # PVE does not check that a user exists before deleting it.
    assert admin.delete("/access/users/ghost@pve") is None
    with pytest.raises(ProxmoxError, match="create user failed: user 'root@pam' already exists"):
        admin.post("/access/users", userid="root@pam")


def test_user_password_logs_in_until_the_user_is_disabled(sim: ServedSimulator, admin: ProxmoxClient) -> None:
    admin.post("/access/users", userid="alice@pve", password="correct-horse")
    login = ConnectionSettings(
        endpoint=sim.pve.url,
        username="alice@pve",
        password="correct-horse",
        allow_password_login=True,
        ca_bundle=sim.cafile,
    )
    assert ProxmoxClient(login, retry=FAST).get("/version")["release"] == sim.pve.release_version
    admin.put("/access/users/alice@pve", enable=0)
    with pytest.raises(ProxmoxAuthError):
        ProxmoxClient(login, retry=FAST).get("/version")


# --------------------------------------------------------------------------- tokens


def test_token_create_authenticate_regenerate_delete(sim: ServedSimulator, api: AccessApi) -> None:
    api.create_user(UserSpec(USER))
    created = api.create_token(TokenSpec(USER, "capi", privsep=True, comment="cluster api"))
    assert created.full_tokenid == f"{USER}!capi"
    assert str(uuid.UUID(created.value)) == created.value
    assert sim.pve.apitokens[created.full_tokenid] == created.value

    token = api.get_token(USER, "capi")
    assert token is not None and (token.privsep, token.expire, token.comment) == (True, 0, "cluster api")
    tokens = api.client.get(f"/access/users/{USER}/token")
    assert tokens == [{"tokenid": "capi", "privsep": 1, "expire": 0, "comment": "cluster api"}]
    assert api.client.get(f"/access/users/{USER}/token/capi") == {"privsep": 1, "expire": 0, "comment": "cluster api"}

    as_token = connect(sim, created.full_tokenid, created.value)
    assert as_token.get("/version")["version"] == sim.pve.version
    assert as_token.get("/access/users/" + USER)["tokens"]["capi"]["privsep"] == 1

    api.update_token(TokenSpec(USER, "capi", privsep=False, expire=4102444800, comment="rotated"))
    token = api.get_token(USER, "capi")
    assert token is not None and (token.privsep, token.expire, token.comment) == (False, 4102444800, "rotated")
    assert as_token.get("/version")  # an update keeps the secret

    new_value = api.regenerate_token(USER, "capi")
    assert new_value != created.value and str(uuid.UUID(new_value)) == new_value
    with pytest.raises(ProxmoxAuthError):
        connect(sim, created.full_tokenid, created.value).get("/version")
    rotated = connect(sim, created.full_tokenid, new_value)
    assert rotated.get("/version")

    assert api.delete_token(USER, "capi") is True
    assert api.get_token(USER, "capi") is None
    assert created.full_tokenid not in sim.pve.apitokens
    with pytest.raises(ProxmoxAuthError):
        connect(sim, created.full_tokenid, new_value).get("/version")
    assert api.delete_token(USER, "capi") is False


def test_token_post_answer_has_the_schema_shape(admin: ProxmoxClient) -> None:
    admin.post("/access/users", userid=USER)
    answer = admin.post(f"/access/users/{USER}/token/capi")
    assert set(answer) == {"full-tokenid", "info", "value"}
    assert answer["info"] == {"privsep": 1}  # what PVE had before writing user.cfg
    again = admin.post(f"/access/users/{USER}/token/csi", privsep=0, expire=0, comment="csi")
    assert again["info"] == {"privsep": 0, "expire": 0, "comment": "csi"}


def test_duplicate_token_is_a_conflict_and_keeps_the_secret(sim: ServedSimulator, api: AccessApi) -> None:
    api.create_user(UserSpec(USER))
    created = api.create_token(TokenSpec(USER, "capi"))
    # PVE refuses with 400 "Parameter verification failed." (tokenid: Token already exists.)
    with pytest.raises(ProxmoxValidationError) as raw:
        api.client.post(f"/access/users/{USER}/token/capi")
    assert raw.value.errors == {"tokenid": "Token already exists."}
    with pytest.raises(AccessConflictError, match="cannot be adopted"):
        api.create_token(TokenSpec(USER, "capi"))
    assert sim.pve.apitokens[created.full_tokenid] == created.value


def test_token_of_missing_user_or_missing_token(sim: ServedSimulator, api: AccessApi) -> None:
    with pytest.raises(ProxmoxNotFoundError) as missing_user:
        api.create_token(TokenSpec("ghost@pve", "capi"))
    assert missing_user.value.message == "no such user ('ghost@pve')"
    api.create_user(UserSpec(USER))
    with pytest.raises(ProxmoxNotFoundError) as err:
        api.client.put(f"/access/users/{USER}/token/nope", comment="x")
    assert err.value.message == f"no such token 'nope' for user '{USER}'"
    assert is_gone(err.value)
    with pytest.raises(ProxmoxNotFoundError, match="no such token 'nope'"):
        api.regenerate_token(USER, "nope")
    assert not any(key.startswith(USER) for key in sim.pve.apitokens)


def test_token_delete_option_clears_and_refuses_unknown(admin: ProxmoxClient) -> None:
    admin.post("/access/users", userid=USER)
    admin.post(f"/access/users/{USER}/token/capi", comment="x", expire=4102444800)
    # PVE sets a token comment only when the new one is non-empty; `delete` clears it.
    assert admin.put(f"/access/users/{USER}/token/capi", comment="")["comment"] == "x"
    assert admin.put(f"/access/users/{USER}/token/capi", delete="comment,expire") == {"privsep": 1, "expire": 0}
    with pytest.raises(ProxmoxValidationError) as err:
        admin.put(f"/access/users/{USER}/token/capi", delete="privsep")
    assert err.value.errors == {"delete": "unknown option 'privsep'"}


def test_disabled_or_deleted_user_revokes_its_tokens(sim: ServedSimulator, api: AccessApi) -> None:
    api.create_user(UserSpec(USER))
    created = api.create_token(TokenSpec(USER, "capi"))
    as_token = connect(sim, created.full_tokenid, created.value)
    assert as_token.get("/version")
    api.update_user(UserSpec(USER, enable=False))
    with pytest.raises(ProxmoxAuthError):
        connect(sim, created.full_tokenid, created.value).get("/version")
    api.update_user(UserSpec(USER, enable=True))
    assert connect(sim, created.full_tokenid, created.value).get("/version")
    api.delete_user(USER)
    assert created.full_tokenid not in sim.pve.apitokens
    with pytest.raises(ProxmoxAuthError):
        connect(sim, created.full_tokenid, created.value).get("/version")


def test_expired_token_cannot_log_in(sim: ServedSimulator, api: AccessApi) -> None:
    api.create_user(UserSpec(USER))
    current = api.create_token(TokenSpec(USER, "current", expire=4102444800))  # 2100
    expired = api.create_token(TokenSpec(USER, "old", expire=1))  # 1970
    assert sim.pve.apitokens[expired.full_tokenid] == expired.value  # registered, yet refused
    assert connect(sim, current.full_tokenid, current.value).get("/version")
    with pytest.raises(ProxmoxAuthError):
        connect(sim, expired.full_tokenid, expired.value).get("/version")


# --------------------------------------------------------------------------- ACL


@pytest.fixture
def principals(api: AccessApi) -> str:
    """A role, a user and a token of that user; returns the full token id."""
    api.create_role(RoleSpec(ROLE, ("VM.Audit",)))
    api.create_user(UserSpec(USER))
    return api.create_token(TokenSpec(USER, "capi")).full_tokenid


def test_acl_grant_list_update_revoke(api: AccessApi, principals: str) -> None:
    spec = AclSpec("/vms", (ROLE, "PVEAuditor"), users=(USER,), tokens=(principals,), propagate=False)
    api.grant_acl(spec)
    assert api.acl_state(spec) == dict.fromkeys(spec.pairs(), False)
    rows = api.client.get("/access/acl")
    assert {"path": "/vms", "type": "token", "ugid": principals, "roleid": ROLE, "propagate": 0} in rows
    assert len(rows) == 4

    propagating = AclSpec("/vms", (ROLE,), users=(USER,), tokens=(principals,), propagate=True)
    api.update_acl(spec, propagating)
    assert api.acl_state(spec) == {(ROLE, "user", USER): True, (ROLE, "token", principals): True}
    assert {(e.path, e.roleid, e.kind, e.ugid) for e in api.list_acl()} == {
        ("/vms", ROLE, "user", USER),
        ("/vms", ROLE, "token", principals),
    }

    assert api.delete_acl(propagating) == 1
    assert api.list_acl() == []
    assert api.delete_acl(propagating) == 0  # nothing left to remove: no call


def test_acl_entries_are_per_path(api: AccessApi, principals: str) -> None:
    api.grant_acl(AclSpec("/", (ROLE,), users=(USER,)))
    api.grant_acl(AclSpec("/pool/capi", (ROLE,), users=(USER,)))
    api.revoke_acl("/", [(ROLE, "user", USER)])
    assert [(e.path, e.ugid) for e in api.list_acl()] == [("/pool/capi", USER)]


def test_acl_errors_have_pve_wording(api: AccessApi, principals: str) -> None:
    with pytest.raises(ProxmoxNotFoundError, match="ACL update failed: role 'Nope' does not exist") as err:
        api.grant_acl(AclSpec("/", ("Nope",), users=(USER,)))
    assert is_gone(err.value)
    with pytest.raises(ProxmoxNotFoundError, match="ACL update failed: user 'ghost@pve' does not exist"):
        api.grant_acl(AclSpec("/", (ROLE,), users=(USER, "ghost@pve")))
    with pytest.raises(ProxmoxNotFoundError, match=f"ACL update failed: no such token 'nope' for user '{USER}'"):
        api.grant_acl(AclSpec("/", (ROLE,), tokens=(f"{USER}!nope",)))
    with pytest.raises(ProxmoxNotFoundError, match="ACL update failed: group 'ops' does not exist"):
        api.grant_acl(AclSpec("/", (ROLE,), groups=("ops",)))
    assert api.list_acl() == []  # a failed update changes nothing, not even the entries before the error

    with pytest.raises(ProxmoxValidationError) as bad:
        api.client.request("PUT", "/access/acl", {"path": "/nope", "roles": ROLE, "users": USER})
    assert bad.value.errors == {"path": "invalid ACL path '/nope'"}
    with pytest.raises(ProxmoxValidationError) as nobody:
        api.client.request("PUT", "/access/acl", {"path": "/", "roles": ROLE})
    assert set(nobody.value.errors) == {"users", "groups", "tokens"}


def test_acl_entries_go_with_their_role_token_or_user(api: AccessApi, principals: str) -> None:
    api.create_role(RoleSpec("Other", ("Sys.Audit",)))
    api.grant_acl(AclSpec("/", (ROLE, "Other"), users=(USER,), tokens=(principals,)))
    assert len(api.list_acl()) == 4
    api.delete_role("Other")
    assert {e.roleid for e in api.list_acl()} == {ROLE}
    api.delete_token(USER, "capi")
    assert [(e.kind, e.ugid) for e in api.list_acl()] == [("user", USER)]
    api.delete_user(USER)
    assert api.list_acl() == []
    # revoking what is already gone is not an error: the entries are simply not there any more
    assert api.revoke_acl("/", [(ROLE, "user", USER), (ROLE, "token", principals)]) == 0


def test_acl_path_is_normalised_and_root_is_never_stored(api: AccessApi, principals: str) -> None:
    api.client.request("PUT", "/access/acl", {"path": "//vms//", "roles": ROLE, "users": f"{USER},root@pam"})
    assert [(e.path, e.ugid) for e in api.list_acl()] == [("/vms", USER)]


def test_groups_hold_members_and_acl_entries(admin: ProxmoxClient, api: AccessApi, principals: str) -> None:
    admin.post("/access/groups", groupid="ops", comment="operators")
    with pytest.raises(ProxmoxError, match="create group failed: group 'ops' already exists"):
        admin.post("/access/groups", groupid="ops")
    admin.put(f"/access/users/{USER}", groups="ops")
    assert admin.get("/access/groups/ops") == {"members": [USER], "comment": "operators"}
    assert admin.get(f"/access/users/{USER}")["groups"] == ["ops"]
    with pytest.raises(ProxmoxError, match="update user failed: no such group 'nope'"):
        admin.put(f"/access/users/{USER}", groups="nope")

    api.grant_acl(AclSpec("/", (ROLE,), groups=("ops",)))
    assert [(e.kind, e.ugid) for e in api.list_acl()] == [("group", "ops")]
    admin.delete("/access/groups/ops")
    assert api.list_acl() == []
    assert admin.get(f"/access/users/{USER}")["groups"] == []
    with pytest.raises(ProxmoxNotFoundError, match=re.escape("group 'ops' does not exist")):
        admin.get("/access/groups/ops")
