"""Access control (roles, users, API tokens, ACLs): request shapes, error handling, and the providers' logic.

Most tests run the real ProxmoxClient against the fakepve simulator, which checks every request against
the PVE 9 API schema (a wrong parameter name or format is a 400 naming it) and answers with PVE's
shapes. **The simulator does not store access-control objects** (reference section 2.10): its answers
for ``/access/roles``, ``/access/users``, ``/access/users/{u}/token/{t}`` and ``/access/acl`` are
synthetic and nothing is kept, and a created token cannot authenticate. So these tests prove the
request shapes (method, path, form body) and the handling of the errors PVE returns, never that
Proxmox persisted anything. Where a code path needs an object to exist (deleting a token, revoking an
ACL entry), existence is stubbed and the test says so.

The provider tests at the end drive check/diff with plain dicts (no engine) and create/read/update
through a stub client, to prove that the token secret reaches nothing but the ``value`` output.
"""

from __future__ import annotations

import logging
from typing import Any, cast
from urllib.parse import parse_qsl

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import rpc

from providers.dynamic import access as access_resource
from providers.dynamic.access import (
    ProxmoxAclProvider,
    ProxmoxApiTokenProvider,
    ProxmoxRoleProvider,
    ProxmoxUserProvider,
)
from providers.proxmox.access import (
    AccessApi,
    AccessConflictError,
    AccessSpecError,
    AclEntry,
    AclSpec,
    RoleSpec,
    Token,
    TokenSpec,
    User,
    UserSpec,
    check_full_tokenid,
    check_userid,
    is_gone,
    parse_acl,
    parse_role,
    parse_users,
)
from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import (
    ProxmoxAlreadyExistsError,
    ProxmoxError,
    ProxmoxNotFoundError,
    ProxmoxPermissionError,
    ProxmoxValidationError,
)
from providers.proxmox.privileges import PrivilegeError

PREFIX = "/api2/json"
SECRET = "0f7c9a52-6b1e-4d7e-9d4c-5e1f2a3b4c5d"


def sent(pve: Any, since: int) -> list[tuple[str, str, dict[str, str]]]:
    """Requests the simulator saw after index ``since``: method, API path, decoded form body."""
    out = []
    for method, path, body in pve.requests[since:]:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True)) if body else {}
        out.append((method, path.removeprefix(PREFIX), form))
    return out


@pytest.fixture
def api(client: ProxmoxClient) -> AccessApi:
    return AccessApi(client)


# --------------------------------------------------------------------------- roles


def test_create_role_posts_roleid_and_sorted_privileges(pve: Any, api: AccessApi) -> None:
    """Shape of POST /access/roles (the simulator stores no role: only the request is proven)."""
    spec = RoleSpec.from_inputs({"roleid": "PulumiVM", "privileges": ["VM.PowerMgmt", "VM.Audit", "VM.Audit"]})
    n = len(pve.requests)

    assert api.create_role(spec) is False

    assert sent(pve, n) == [("POST", "/access/roles", {"roleid": "PulumiVM", "privs": "VM.Audit,VM.PowerMgmt"})]


def test_role_ids_starting_with_pve_are_refused_locally(pve: Any, api: AccessApi) -> None:
    """PVE reserves PVE* ids; the refusal happens before any request (the simulator would accept it)."""
    n = len(pve.requests)
    with pytest.raises(AccessSpecError) as err:
        RoleSpec.from_inputs({"roleid": "PVEPulumi", "privileges": ["VM.Audit"]})
    assert err.value.problems[0][0] == "roleid" and "reserved" in str(err.value)
    with pytest.raises(PrivilegeError, match="PVEPulumi"):
        api.create_role(RoleSpec("PVEPulumi", ("VM.Audit",)))
    with pytest.raises(PrivilegeError, match="built-in"):
        api.delete_role("Administrator")
    assert sent(pve, n) == []


def test_unknown_privileges_are_named_before_any_request(pve: Any) -> None:
    """Privilege names are checked against privileges.py; the simulator does not check pve-priv-list itself."""
    with pytest.raises(AccessSpecError) as err:
        RoleSpec.from_inputs({"roleid": "X", "privileges": ["VM.Audit", "VM.Fly", "VM.Audti"]})
    assert "'VM.Fly'" in str(err.value) and "did you mean 'VM.Audit'" in str(err.value)
    with pytest.raises(AccessSpecError, match=r"PVE 9 removed VM\.Monitor"):
        RoleSpec.from_inputs({"roleid": "X", "privileges": ["VM.Monitor"], "pve_major_version": 9})
    with pytest.raises(AccessSpecError, match="from PVE 9 on"):
        RoleSpec.from_inputs({"roleid": "X", "privileges": ["VM.GuestAgent.Audit"], "pve_major_version": 8})
    assert RoleSpec.from_inputs({"roleid": "X", "privileges": ["VM.Monitor"]}).privileges == ("VM.Monitor",)


def test_role_that_exists_identically_is_adopted(pve: Any, api: AccessApi) -> None:
    """ "already exists" + identical privileges = adopt. The simulator stores nothing, so its synthetic answer
    to GET /access/roles/{id} stands in for the existing role; what is proven is the POST-then-GET sequence."""
    existing = api.get_role("PulumiAudit")
    assert existing is not None and existing.privileges
    pve.fail("POST", "/access/roles", 500, "role 'PulumiAudit' already exists")
    n = len(pve.requests)

    adopted = api.create_role(RoleSpec("PulumiAudit", tuple(sorted(existing.privileges))))

    assert adopted is True
    assert [(m, p) for m, p, _ in sent(pve, n)] == [("POST", "/access/roles"), ("GET", "/access/roles/PulumiAudit")]


def test_role_that_exists_differently_is_a_clear_conflict(pve: Any, api: AccessApi) -> None:
    """ "already exists" with other privileges is an error saying what differs (shape + error handling only)."""
    pve.fail("POST", "/access/roles", 500, "role 'PulumiVM' already exists")
    n = len(pve.requests)

    with pytest.raises(AccessConflictError) as err:
        api.create_role(RoleSpec("PulumiVM", ("VM.Allocate", "VM.Audit")))

    text = str(err.value)
    assert "PulumiVM already exists with different privileges" in text
    assert "missing: ['VM.Allocate']" in text and "extra:" in text
    assert isinstance(err.value, ProxmoxAlreadyExistsError)
    assert [m for m, _, _ in sent(pve, n)] == ["POST", "GET"]  # never retried, never overwritten


def test_update_role_replaces_privileges(pve: Any, api: AccessApi) -> None:
    """Shape of PUT /access/roles/{id}: append=0 replaces the list (nothing stored by the simulator)."""
    n = len(pve.requests)
    api.update_role(RoleSpec("PulumiVM", ("VM.Audit", "VM.Clone")))
    assert sent(pve, n) == [("PUT", "/access/roles/PulumiVM", {"privs": "VM.Audit,VM.Clone", "append": "0"})]


def test_get_and_delete_of_a_missing_role(pve: Any, api: AccessApi) -> None:
    """PVE's 500 "role 'x' does not exist" reads as gone, without retries (errors injected; nothing stored)."""
    pve.fail("GET", "/access/roles/Gone", 500, "role 'Gone' does not exist")
    pve.fail("DELETE", "/access/roles/Gone", 500, "role 'Gone' does not exist")
    n = len(pve.requests)

    assert api.get_role("Gone") is None
    assert api.delete_role("Gone") is False

    assert [(m, p) for m, p, _ in sent(pve, n)] == [("GET", "/access/roles/Gone"), ("DELETE", "/access/roles/Gone")]


def test_delete_role_shape(pve: Any, api: AccessApi) -> None:
    """Shape of DELETE /access/roles/{id} (the simulator answers null and keeps nothing)."""
    n = len(pve.requests)
    assert api.delete_role("PulumiVM") is True
    assert sent(pve, n) == [("DELETE", "/access/roles/PulumiVM", {})]


def test_missing_sys_modify_is_a_permission_error_not_retried(pve: Any, api: AccessApi) -> None:
    """A 403 on /access surfaces as ProxmoxPermissionError naming path and privilege (injected error)."""
    pve.fail("POST", "/access/roles", 403, "Permission check failed (/access, Sys.Modify)")
    n = len(pve.requests)

    with pytest.raises(ProxmoxPermissionError, match=r"/access, Sys\.Modify"):
        api.create_role(RoleSpec("PulumiVM", ("VM.Audit",)))

    assert len(sent(pve, n)) == 1


def test_role_read_parses_pve_shape(api: AccessApi) -> None:
    """GET /access/roles/{id} answers {privilege: 1}; the simulator's answer is synthetic but PVE-shaped."""
    role = api.get_role("Anything")
    assert role is not None and "VM.Audit" in role.privileges
    assert parse_role("R", {"VM.Audit": 1, "VM.Clone": 0, "Sys.Audit": "1"}).privileges == {"VM.Audit", "Sys.Audit"}


# --------------------------------------------------------------------------- users


def test_create_user_shape(pve: Any, api: AccessApi) -> None:
    """Shape of POST /access/users (userid comment enable expire); the simulator stores no user."""
    n = len(pve.requests)
    api.create_user(UserSpec.from_inputs({"userid": "pulumi@pve", "comment": "IaC", "expire": 1_900_000_000}))
    api.create_user(UserSpec.from_inputs({"userid": "csi@pve", "enable": False}))
    assert sent(pve, n) == [
        ("POST", "/access/users", {"userid": "pulumi@pve", "comment": "IaC", "enable": "1", "expire": "1900000000"}),
        ("POST", "/access/users", {"userid": "csi@pve", "enable": "0", "expire": "0"}),
    ]


def test_user_ids_are_validated_locally(pve: Any) -> None:
    """``name@realm`` is checked before any request; the simulator's schema agrees (see the ACL test below)."""
    for bad in ["pulumi", "pulumi@", "a b@pve", "x@1realm", "pu/lumi@pve", "@pve"]:
        with pytest.raises(ValueError):
            check_userid(bad)
    assert check_userid("first.last@company-ad") == "first.last@company-ad"
    with pytest.raises(AccessSpecError) as err:
        UserSpec.from_inputs({"userid": "pulumi", "expire": -1, "comment": "two\nlines"})
    assert [name for name, _ in err.value.problems] == ["userid", "comment", "expire"]


def test_existing_identical_user_is_adopted(pve: Any, api: AccessApi) -> None:
    """ "already exists" + identical attributes = adopt. Nothing is stored: the simulator's synthetic listing
    (root@pam, enabled, no expiry) stands in for the existing user; the POST-then-list sequence is proven."""
    pve.fail("POST", "/access/users", 500, "user 'root@pam' already exists")
    n = len(pve.requests)

    assert api.create_user(UserSpec("root@pam")) is True

    assert [(m, p) for m, p, _ in sent(pve, n)] == [("POST", "/access/users"), ("GET", "/access/users")]


def test_existing_different_user_is_a_clear_conflict(pve: Any, api: AccessApi) -> None:
    """A user that exists but differs (here: not even visible) is an error, never silently taken over."""
    pve.fail("POST", "/access/users", 500, "user 'pulumi@pve' already exists")
    with pytest.raises(AccessConflictError, match="user pulumi@pve already exists and differs"):
        api.create_user(UserSpec("pulumi@pve", comment="IaC"))
    pve.fail("POST", "/access/users", 500, "user 'root@pam' already exists")
    with pytest.raises(AccessConflictError, match="comment=''"):
        api.create_user(UserSpec("root@pam", comment="changed"))


def test_update_user_shape(pve: Any, api: AccessApi) -> None:
    """Shape of PUT /access/users/{userid}: an emptied comment is sent as '' (nothing stored)."""
    n = len(pve.requests)
    api.update_user(UserSpec("pulumi@pve", comment="", enable=False, expire=1_900_000_000))
    assert sent(pve, n) == [("PUT", "/access/users/pulumi@pve", {"comment": "", "enable": "0", "expire": "1900000000"})]


def test_delete_user_only_when_listed(pve: Any, api: AccessApi) -> None:
    """Delete checks the listing first (a missing user is PVE's HTTP 500 "no such user", retried as transient).
    The simulator's synthetic listing holds only root@pam: that one is deleted, any other is already gone."""
    n = len(pve.requests)
    assert api.delete_user("pulumi@pve") is False
    assert api.delete_user("root@pam") is True
    assert [(m, p) for m, p, _ in sent(pve, n)] == [
        ("GET", "/access/users"),
        ("GET", "/access/users"),
        ("DELETE", "/access/users/root@pam"),
    ]


def test_no_such_user_is_recognised_as_gone(pve: Any, api: AccessApi) -> None:
    """PVE answers a missing user with 500 "no such user ('x')" (injected); is_gone() recognises it."""
    pve.fail("PUT", "/access/users/ghost@pve", 500, "no such user ('ghost@pve')")
    with pytest.raises(ProxmoxError) as err:
        api.update_user(UserSpec("ghost@pve"))
    assert is_gone(err.value)


def test_users_listing_is_parsed_with_tokens() -> None:
    """The shape of GET /access/users?full=1 on a real PVE (the simulator's listing has no tokens)."""
    users = parse_users(
        [
            {
                "userid": "pulumi@pve",
                "enable": 1,
                "expire": 0,
                "comment": "IaC",
                "tokens": [{"tokenid": "iac", "privsep": 0, "expire": 1900000000, "comment": "ci"}],
            },
            {"userid": "root@pam", "enable": 1},
            {"no": "userid"},
        ]
    )
    assert users["pulumi@pve"] == User(
        "pulumi@pve", "IaC", True, 0, {"iac": Token("pulumi@pve", "iac", False, 1900000000, "ci")}
    )
    assert users["root@pam"].tokens == {} and len(users) == 2


# --------------------------------------------------------------------------- tokens


def test_create_token_shape_and_secret(pve: Any, api: AccessApi) -> None:
    """Shape of POST /access/users/{u}/token/{t}; the value comes from the answer (the simulator's synthetic
    'fake': such a token could not authenticate). The full id is built locally, not taken from the answer."""
    n = len(pve.requests)

    created = api.create_token(TokenSpec.from_inputs({"userid": "pulumi@pve", "tokenid": "iac", "comment": "CI"}))
    again = api.create_token(TokenSpec("csi@pve", "csi", privsep=False, expire=1_900_000_000))

    assert created.full_tokenid == "pulumi@pve!iac" and created.value == "fake"
    assert "fake" not in repr(created)
    assert again.full_tokenid == "csi@pve!csi" and again.privsep is False
    assert sent(pve, n) == [
        ("POST", "/access/users/pulumi@pve/token/iac", {"privsep": "1", "comment": "CI"}),
        ("POST", "/access/users/csi@pve/token/csi", {"privsep": "0", "expire": "1900000000"}),
    ]


def test_existing_token_is_never_adopted(pve: Any, api: AccessApi) -> None:
    """PVE's 500 "Token already exists." (injected) is a conflict: the secret cannot be read back."""
    pve.fail("POST", "/access/users/pulumi@pve/token/iac", 500, "Token already exists.")
    n = len(pve.requests)

    with pytest.raises(AccessConflictError) as err:
        api.create_token(TokenSpec("pulumi@pve", "iac"))

    assert "shown only once" in str(err.value) and "pulumi@pve!iac" in str(err.value)
    assert len(sent(pve, n)) == 1


def test_token_for_a_foreign_user_is_refused(pve: Any, api: AccessApi) -> None:
    """A 403 from the "self or User.Modify" rule surfaces as ProxmoxPermissionError (injected)."""
    pve.fail("POST", "/access/users/root@pam/token/iac", 403, "Permission check failed")
    with pytest.raises(ProxmoxPermissionError):
        api.create_token(TokenSpec("root@pam", "iac"))


def test_token_answer_without_value_is_an_error(pve: Any, api: AccessApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer without 'value' fails loudly and does not echo the answer."""
    monkeypatch.setattr(api.client, "post", lambda *_a, **_k: {"full-tokenid": "pulumi@pve!iac", "x": SECRET})
    with pytest.raises(ProxmoxError) as err:
        api.create_token(TokenSpec("pulumi@pve", "iac"))
    assert SECRET not in str(err.value)


def test_update_and_regenerate_token_shapes(pve: Any, api: AccessApi) -> None:
    """Shapes of PUT /access/users/{u}/token/{t}: attributes (no expire when unset) and regenerate=1.

    The schema marks the answer's ``value`` optional and the simulator leaves it out (it generates no
    secret), so the rotation ends in the "answered without value" error: that handling is what is proven
    here; a real PVE returns the new value (reference 3.5), which the stub-based provider test covers."""
    n = len(pve.requests)

    api.update_token(TokenSpec("pulumi@pve", "iac", privsep=True, comment=""))
    with pytest.raises(ProxmoxError, match="without the token's secret"):
        api.regenerate_token("pulumi@pve", "iac")

    assert sent(pve, n) == [
        ("PUT", "/access/users/pulumi@pve/token/iac", {"privsep": "1", "comment": ""}),
        ("PUT", "/access/users/pulumi@pve/token/iac", {"regenerate": "1"}),
    ]


def test_delete_token(pve: Any, api: AccessApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """DELETE shape. The simulator stores no token, so existence is stubbed for the first call; the second
    uses the real (synthetic, token-less) listing and sends no DELETE."""
    n = len(pve.requests)
    monkeypatch.setattr(api, "get_token", lambda u, t: Token(u, t, True, 0, ""))
    assert api.delete_token("pulumi@pve", "iac") is True
    monkeypatch.undo()
    assert api.delete_token("pulumi@pve", "iac") is False
    assert [(m, p) for m, p, _ in sent(pve, n)] == [
        ("DELETE", "/access/users/pulumi@pve/token/iac"),
        ("GET", "/access/users"),
    ]


def test_token_ids_are_validated_locally() -> None:
    """Token names need 2+ characters, starting with a letter (PVE's realm regex)."""
    for bad in ["t", "1ac", "i c", "ia!c", ""]:
        with pytest.raises(AccessSpecError) as err:
            TokenSpec.from_inputs({"userid": "pulumi@pve", "tokenid": bad})
        assert err.value.problems[0][0] == "tokenid"
    assert TokenSpec.from_inputs({"userid": "pulumi@pve", "tokenid": "iac"}).full_tokenid == "pulumi@pve!iac"
    with pytest.raises(ValueError):
        check_full_tokenid("pulumi@pve")


# --------------------------------------------------------------------------- ACLs


ACL = AclSpec.from_inputs(
    {
        "path": "/pool/k8s",
        "roles": ["PulumiVM"],
        "users": ["pulumi@pve"],
        "tokens": ["pulumi@pve!iac"],
    }
)


def test_grant_acl_shape(pve: Any, api: AccessApi) -> None:
    """Shape of PUT /access/acl: path, roles, users, tokens, propagate in one call (nothing stored)."""
    n = len(pve.requests)
    api.grant_acl(ACL)
    assert sent(pve, n) == [
        (
            "PUT",
            "/access/acl",
            {
                "path": "/pool/k8s",
                "roles": "PulumiVM",
                "propagate": "1",
                "users": "pulumi@pve",
                "tokens": "pulumi@pve!iac",
            },
        )
    ]


def test_local_validation_agrees_with_the_pve_schema(pve: Any, api: AccessApi) -> None:
    """A one-letter token name, refused locally, is also refused by the schema the simulator enforces:
    the 400 names the parameter. (Bypasses AclSpec.from_inputs on purpose.)"""
    with pytest.raises(AccessSpecError, match="tokens"):
        AclSpec.from_inputs({"path": "/pool/k8s", "roles": ["R"], "tokens": ["pulumi@pve!t"]})
    with pytest.raises(ProxmoxValidationError) as err:
        api.grant_acl(AclSpec("/pool/k8s", ("R",), tokens=("pulumi@pve!t",)))
    assert "tokens" in err.value.errors


def test_acl_paths_are_validated_locally(pve: Any) -> None:
    """Non-normalised or unknown ACL paths fail before any request (the simulator accepts 'pool/x')."""
    n = len(pve.requests)
    for bad in ["pool/k8s", "/pool/k8s/", "/vms/abc", "/vms/99", "/pool//k8s", "/nope", "/storage/a b"]:
        with pytest.raises(AccessSpecError) as err:
            AclSpec.from_inputs({"path": bad, "roles": ["R"], "users": ["u@pve"]})
        assert err.value.problems[0][0] == "path"
    with pytest.raises(AccessSpecError, match="at least one user, token or group"):
        AclSpec.from_inputs({"path": "/", "roles": ["R"]})
    assert sent(pve, n) == []


def test_grant_for_a_missing_role_is_not_found(pve: Any, api: AccessApi) -> None:
    """PVE's 500 "role 'x' does not exist" (injected) is ProxmoxNotFoundError, sent once."""
    pve.fail("PUT", "/access/acl", 500, "role 'PulumiVM' does not exist")
    n = len(pve.requests)
    with pytest.raises(ProxmoxNotFoundError):
        api.grant_acl(ACL)
    assert len(sent(pve, n)) == 1


def test_grant_without_permissions_modify(pve: Any, api: AccessApi) -> None:
    """403 naming the path and Permissions.Modify (injected) surfaces as ProxmoxPermissionError."""
    pve.fail("PUT", "/access/acl", 403, "Permission check failed (/pool/k8s, Permissions.Modify)")
    with pytest.raises(ProxmoxPermissionError, match=r"/pool/k8s, Permissions\.Modify"):
        api.grant_acl(ACL)


def test_grant_is_retried_on_a_transient_error(pve: Any, api: AccessApi) -> None:
    """PUT is idempotent: two injected 500s, then the synthetic success (retry policy, not persistence)."""
    pve.fail("PUT", "/access/acl", 500, "got no worker upid - fork failed", times=2)
    n = len(pve.requests)
    api.grant_acl(ACL)
    assert [m for m, _, _ in sent(pve, n)] == ["PUT", "PUT", "PUT"]


def _stub_acl(api: AccessApi, monkeypatch: pytest.MonkeyPatch, entries: list[AclEntry]) -> None:
    monkeypatch.setattr(api, "list_acl", lambda: entries)


def test_revoke_only_existing_entries_one_call_per_role(
    pve: Any, api: AccessApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shape of PUT /access/acl delete=1. The simulator stores no ACL, so GET /access/acl is stubbed."""
    spec = AclSpec("/pool/k8s", ("A", "B"), users=("pulumi@pve",), tokens=("pulumi@pve!iac",), groups=("ops",))
    _stub_acl(
        api,
        monkeypatch,
        [
            AclEntry("/pool/k8s", "A", "user", "pulumi@pve", True),
            AclEntry("/pool/k8s", "A", "token", "pulumi@pve!iac", True),
            AclEntry("/pool/k8s", "B", "group", "ops", True),
            AclEntry("/pool/other", "B", "user", "pulumi@pve", True),
        ],
    )
    n = len(pve.requests)

    assert api.delete_acl(spec) == 2

    assert sent(pve, n) == [
        (
            "PUT",
            "/access/acl",
            {"path": "/pool/k8s", "roles": "A", "delete": "1", "users": "pulumi@pve", "tokens": "pulumi@pve!iac"},
        ),
        ("PUT", "/access/acl", {"path": "/pool/k8s", "roles": "B", "delete": "1", "groups": "ops"}),
    ]


def test_revoke_with_nothing_left_sends_nothing(pve: Any, api: AccessApi) -> None:
    """The simulator's synthetic GET /access/acl lists none of ours: nothing to revoke, no PUT."""
    n = len(pve.requests)
    assert api.delete_acl(ACL) == 0
    assert sent(pve, n) == [("GET", "/access/acl", {})]


def test_update_acl_grants_before_it_revokes(pve: Any, api: AccessApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """Role swap on the same path: PUT grant (new set) first, then PUT delete=1 of the dropped role only."""
    old = AclSpec("/pool/k8s", ("Old", "Kept"), users=("pulumi@pve",))
    new = AclSpec("/pool/k8s", ("Kept", "New"), users=("pulumi@pve",), propagate=False)
    _stub_acl(
        api,
        monkeypatch,
        [AclEntry("/pool/k8s", r, "user", "pulumi@pve", True) for r in ("Old", "Kept")],
    )
    n = len(pve.requests)

    api.update_acl(old, new)

    assert sent(pve, n) == [
        ("PUT", "/access/acl", {"path": "/pool/k8s", "roles": "Kept,New", "propagate": "0", "users": "pulumi@pve"}),
        ("PUT", "/access/acl", {"path": "/pool/k8s", "roles": "Old", "delete": "1", "users": "pulumi@pve"}),
    ]


def test_acl_listing_is_parsed() -> None:
    """The shape of GET /access/acl on a real PVE (the simulator's rows are synthetic)."""
    rows = [
        {"path": "/pool/k8s", "roleid": "PulumiVM", "type": "token", "ugid": "pulumi@pve!iac", "propagate": 1},
        {"path": "/", "roleid": "X", "type": "group", "ugid": "ops", "propagate": 0},
        {"path": "/", "roleid": "X", "type": "weird", "ugid": "?"},
    ]
    assert parse_acl(rows) == [
        AclEntry("/pool/k8s", "PulumiVM", "token", "pulumi@pve!iac", True),
        AclEntry("/", "X", "group", "ops", False),
    ]


# --------------------------------------------------------------------------- providers: check and diff


def test_role_check_canonicalises_and_reports_failures() -> None:
    provider = ProxmoxRoleProvider()
    ok = provider.check({}, {"roleid": "PulumiVM", "privileges": ["VM.Clone", "VM.Audit"], "adopted": None})
    assert ok.failures == []
    assert ok.inputs == {"roleid": "PulumiVM", "privileges": ["VM.Audit", "VM.Clone"], "pve_major_version": None}

    bad = provider.check({}, {"roleid": "PVEX", "privileges": ["VM.Nope"]})
    assert [f.property for f in bad.failures] == ["roleid", "privileges"]

    unknown = provider.check({}, {"roleid": rpc.UNKNOWN, "privileges": ["VM.Audit"]})
    assert unknown.failures == [] and unknown.inputs["roleid"] == rpc.UNKNOWN


def test_role_diff() -> None:
    provider = ProxmoxRoleProvider()
    olds = {"roleid": "R", "privileges": ["VM.Audit", "VM.Clone"], "pve_major_version": None, "adopted": False}

    same = provider.diff("R", olds, {"roleid": "R", "privileges": ["VM.Clone", "VM.Audit"]})
    assert same.changes is False

    more = provider.diff("R", olds, {"roleid": "R", "privileges": ["VM.Audit", "VM.Clone", "VM.Allocate"]})
    assert more.changes is True and more.replaces == []

    renamed = provider.diff("R", olds, {"roleid": "R2", "privileges": ["VM.Audit", "VM.Clone"]})
    assert renamed.changes is True and renamed.replaces == ["roleid"]

    unknown = provider.diff("R", olds, {"roleid": rpc.UNKNOWN, "privileges": ["VM.Audit"]})
    assert unknown.changes is True and unknown.replaces == ["roleid"]


def test_role_diff_tolerates_state_with_a_privilege_we_do_not_know() -> None:
    """A refresh may bring back a privilege a newer PVE added; diff must not crash on the old state."""
    olds = {"roleid": "R", "privileges": ["VM.Audit", "VM.Future"], "pve_major_version": None}
    result = ProxmoxRoleProvider().diff("R", olds, {"roleid": "R", "privileges": ["VM.Audit"]})
    assert result.changes is True and result.replaces == []


def test_user_diff() -> None:
    provider = ProxmoxUserProvider()
    olds = {"userid": "u@pve", "comment": "", "enable": True, "expire": 0, "adopted": False}
    assert provider.diff("u@pve", olds, {"userid": "u@pve"}).changes is False
    update = provider.diff("u@pve", olds, {"userid": "u@pve", "comment": "IaC", "enable": False})
    assert update.changes is True and update.replaces == []
    replace = provider.diff("u@pve", olds, {"userid": "v@pve"})
    assert replace.replaces == ["userid"]


def test_token_diff_replaces_only_on_identity() -> None:
    provider = ProxmoxApiTokenProvider()
    olds = {
        **TokenSpec("u@pve", "iac").to_inputs(),
        "full_tokenid": "u@pve!iac",
        "value": SECRET,
    }
    assert provider.diff("u@pve!iac", olds, {"userid": "u@pve", "tokenid": "iac"}).changes is False
    for change in ({"privsep": False}, {"comment": "x"}, {"expire": 1}, {"rotate_trigger": "2025-q3"}):
        result = provider.diff("u@pve!iac", olds, {"userid": "u@pve", "tokenid": "iac", **change})
        assert result.changes is True and result.replaces == [], change
    assert provider.diff("u@pve!iac", olds, {"userid": "u@pve", "tokenid": "ci"}).replaces == ["tokenid"]
    assert provider.diff("u@pve!iac", olds, {"userid": "v@pve", "tokenid": "iac"}).replaces == ["userid"]
    unknown = provider.diff("u@pve!iac", olds, {"userid": rpc.UNKNOWN, "tokenid": "iac"})
    assert unknown.replaces == ["userid"]


def test_token_check_never_sees_the_secret() -> None:
    result = ProxmoxApiTokenProvider().check({}, {"userid": "u@pve", "tokenid": "iac", "value": SECRET})
    assert result.failures == [] and SECRET not in repr(result.inputs) and "value" not in result.inputs


def test_acl_diff() -> None:
    provider = ProxmoxAclProvider()
    olds = {**ACL.to_inputs(), "granted_roles": ["PulumiVM"]}
    reordered = {**ACL.to_inputs(), "tokens": ["pulumi@pve!iac"], "users": ["pulumi@pve", "pulumi@pve"]}
    assert provider.diff("/pool/k8s#1", olds, reordered).changes is False
    changes: list[dict[str, Any]] = [{"roles": ["PulumiVM", "X"]}, {"users": []}, {"groups": ["ops"]}]
    for change in [*changes, {"propagate": False}]:
        result = provider.diff("/pool/k8s#1", olds, {**ACL.to_inputs(), **change})
        assert result.changes is True and result.replaces == [], change
    moved = provider.diff("/pool/k8s#1", olds, {**ACL.to_inputs(), "path": "/pool/k8s-2"})
    assert moved.replaces == ["path"]
    assert provider.check({}, {**ACL.to_inputs(), "path": "pool/x"}).failures[0].property == "path"


# --------------------------------------------------------------------------- providers: create/read/update


class StubClient:
    """Answers by (method, path); records every call. Used where the simulator cannot hold state."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, path: str, params: Any = None, *, idempotent: bool | None = None) -> Any:
        self.calls.append((method, path, dict(params or {})))
        return self.answers.get((method, path))

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params)

    def post(self, path: str, **params: Any) -> Any:
        return self.request("POST", path, params)

    def put(self, path: str, **params: Any) -> Any:
        return self.request("PUT", path, params)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params)


def use(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    monkeypatch.setattr(access_resource, "_api", lambda: AccessApi(cast(ProxmoxClient, client)))


TOKEN_PATH = "/access/users/pulumi@pve/token/iac"
USERS_WITH_TOKEN = [
    {
        "userid": "pulumi@pve",
        "enable": 1,
        "expire": 0,
        "tokens": [{"tokenid": "iac", "privsep": 1, "expire": 0, "comment": "changed"}],
    }
]


def test_token_secret_reaches_only_the_value_output(monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    """create -> read -> update -> rotate -> delete: the secret is only ever in ``value``; never in the id,
    another output, an input, or a log line (every logger at DEBUG)."""
    caplog.set_level(logging.DEBUG)
    rotated = SECRET.replace("0f7c", "aaaa")
    stub = StubClient(
        {
            ("POST", TOKEN_PATH): {"full-tokenid": "pulumi@pve!iac", "info": {"privsep": 1}, "value": SECRET},
            ("GET", "/access/users"): USERS_WITH_TOKEN,
            ("PUT", TOKEN_PATH): {"full-tokenid": "pulumi@pve!iac", "value": rotated},
        }
    )
    use(monkeypatch, stub)
    provider = ProxmoxApiTokenProvider()
    inputs = provider.check({}, {"userid": "pulumi@pve", "tokenid": "iac", "value": None}).inputs

    created = provider.create(dict(inputs))
    assert created.id == "pulumi@pve!iac"
    outs = created.outs or {}
    assert outs["value"] == SECRET and outs["full_tokenid"] == "pulumi@pve!iac"
    assert all(SECRET not in repr(v) for k, v in outs.items() if k != "value")

    refreshed = provider.read(created.id, dict(outs))
    assert refreshed.outs is not None and refreshed.inputs is not None
    assert refreshed.outs["value"] == SECRET  # Proxmox cannot give it back: the stored value is kept
    assert refreshed.inputs["comment"] == "changed"  # drift comes back as inputs
    assert SECRET not in repr(refreshed.inputs)

    updated = provider.update(created.id, dict(outs), {**inputs, "comment": "ci"})
    assert (updated.outs or {})["value"] == SECRET
    rotated_outs = provider.update(created.id, dict(outs), {**inputs, "rotate_trigger": "2025-q3"}).outs or {}
    assert rotated_outs["value"] == rotated
    provider.delete(created.id, rotated_outs)

    assert [(m, p) for m, p, _ in stub.calls] == [
        ("POST", TOKEN_PATH),
        ("GET", "/access/users"),
        ("PUT", TOKEN_PATH),  # comment only, no regenerate
        ("PUT", TOKEN_PATH),  # regenerate
        ("GET", "/access/users"),
        ("DELETE", TOKEN_PATH),
    ]
    assert stub.calls[2][2] == {"privsep": True, "expire": None, "comment": "ci"}
    assert stub.calls[3][2] == {"regenerate": True}
    assert caplog.records, "the provider logs its actions"
    assert SECRET not in caplog.text and rotated not in caplog.text
    assert all(SECRET not in str(call) for call in stub.calls)


def test_token_read_of_a_deleted_token_and_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token gone from the listing reads as deleted; an import has no value (it was shown only once)."""
    use(monkeypatch, StubClient({("GET", "/access/users"): USERS_WITH_TOKEN}))
    provider = ProxmoxApiTokenProvider()
    assert provider.read("pulumi@pve!gone", {"userid": "pulumi@pve", "tokenid": "gone"}).id is None
    imported = provider.read("pulumi@pve!iac", {"userid": "pulumi@pve", "tokenid": "iac"})
    assert imported.id == "pulumi@pve!iac" and imported.outs is not None
    assert imported.outs["value"] is None and imported.outs["expire"] is None
    with pytest.raises(ValueError, match="user@realm!tokenid"):
        provider.read("no-bang", {})


def test_role_and_user_providers_against_the_simulator(pve: Any, client: ProxmoxClient, monkeypatch) -> None:
    """Provider create/update/delete drive the shapes proven above (the simulator stores nothing)."""
    monkeypatch.setattr(access_resource, "_api", lambda: AccessApi(client))
    n = len(pve.requests)

    role = ProxmoxRoleProvider().create({"roleid": "PulumiVM", "privileges": ["VM.Audit"]})
    ProxmoxRoleProvider().update("PulumiVM", role.outs or {}, {"roleid": "PulumiVM", "privileges": ["VM.Clone"]})
    user = ProxmoxUserProvider().create({"userid": "pulumi@pve", "comment": "IaC"})
    ProxmoxRoleProvider().delete("PulumiVM", role.outs or {})

    assert role.id == "PulumiVM" and (role.outs or {})["adopted"] is False
    assert user.id == "pulumi@pve"
    assert [(m, p) for m, p, _ in sent(pve, n)] == [
        ("POST", "/access/roles"),
        ("PUT", "/access/roles/PulumiVM"),
        ("POST", "/access/users"),
        ("DELETE", "/access/roles/PulumiVM"),
    ]


def test_acl_provider_lifecycle_and_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    """Create grants once; refresh turns a missing entry into drift in ``roles`` (``granted_roles`` stays);
    update then re-grants; delete revokes everything granted; nothing left reads as deleted."""
    stub = StubClient({})
    use(monkeypatch, stub)
    provider = ProxmoxAclProvider()
    spec = AclSpec("/pool/k8s", ("A", "B"), users=("pulumi@pve",), tokens=("pulumi@pve!iac",))

    created = provider.create(spec.to_inputs())
    assert created.id.startswith("/pool/k8s#")
    outs = created.outs or {}
    assert outs["granted_roles"] == ["A", "B"]

    # Someone removed B for the token outside Pulumi.
    stub.answers[("GET", "/access/acl")] = [
        {"path": "/pool/k8s", "roleid": "A", "type": "user", "ugid": "pulumi@pve", "propagate": 1},
        {"path": "/pool/k8s", "roleid": "A", "type": "token", "ugid": "pulumi@pve!iac", "propagate": 1},
        {"path": "/pool/k8s", "roleid": "B", "type": "user", "ugid": "pulumi@pve", "propagate": 1},
    ]
    refreshed = provider.read(created.id, dict(outs))
    assert refreshed.inputs is not None and refreshed.outs is not None
    assert refreshed.inputs["roles"] == ["A"] and refreshed.outs["granted_roles"] == ["A", "B"]
    assert provider.diff(created.id, refreshed.outs, spec.to_inputs()).changes is True

    provider.update(created.id, refreshed.outs, spec.to_inputs())
    provider.delete(created.id, refreshed.outs)

    puts = [params for m, _, params in stub.calls if m == "PUT"]
    assert (
        puts[0]
        == puts[1]
        == {
            "path": "/pool/k8s",
            "roles": "A,B",
            "propagate": True,
            "users": "pulumi@pve",
            "tokens": "pulumi@pve!iac",
            "groups": None,
        }
    )
    assert puts[2:] == [
        {
            "path": "/pool/k8s",
            "roles": "A",
            "delete": True,
            "users": "pulumi@pve",
            "tokens": "pulumi@pve!iac",
            "groups": None,
        },
        {"path": "/pool/k8s", "roles": "B", "delete": True, "users": "pulumi@pve", "tokens": None, "groups": None},
    ]

    stub.answers[("GET", "/access/acl")] = []
    assert provider.read(created.id, dict(outs)).id is None


def test_acl_import_needs_the_program_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch, StubClient({}))
    with pytest.raises(ValueError, match="import it with its inputs"):
        ProxmoxAclProvider().read("/pool/k8s", {})


@pytest.mark.parametrize(
    "provider", [ProxmoxRoleProvider(), ProxmoxUserProvider(), ProxmoxApiTokenProvider(), ProxmoxAclProvider()]
)
def test_providers_pickle_by_reference(provider: Any) -> None:
    """The blob that goes into state names the class; it holds no client, session or credential."""
    import base64

    blob = base64.b64decode(serialize_provider(provider))
    assert len(blob) < 200
    assert b"providers.dynamic.access" in blob
    assert type(provider).__name__.encode() in blob
