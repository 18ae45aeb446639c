"""ProxmoxClient against fakepve over HTTPS: task waiting, typed errors, retry rules, tickets and TLS."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from fakepve.certs import make_cert

from providers.proxmox.client import ProxmoxClient, RetryPolicy, TaskResult
from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import (
    ProxmoxAlreadyExistsError,
    ProxmoxAuthError,
    ProxmoxChecksumError,
    ProxmoxConnectionError,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxNodeUnavailableError,
    ProxmoxNotFoundError,
    ProxmoxPermissionError,
    ProxmoxQuorumError,
    ProxmoxTaskError,
    ProxmoxTimeoutError,
    ProxmoxTlsError,
    ProxmoxTransientError,
    ProxmoxValidationError,
    is_kind,
)
from tests.conftest import FAST
from tests.support.faults import Lose, lose_answers, on_sim, requests_matching, wait_until
from tests.support.simulator import TOKEN_ID, TOKEN_SECRET

VM = 1500
CONFIG = f"/nodes/pve1/qemu/{VM}/config"
# Lock waits short enough to see a lock error without waiting two minutes.
QUICK_LOCKS = RetryPolicy(attempts=5, initial_delay=0.01, max_delay=0.05, lock_wait=0.3)


@pytest.fixture
def vm(pve: Any) -> Any:
    """A plain, stopped VM to aim requests at."""
    return pve.add_vm(VM, "plain", node="pve1")


def password_settings(settings: ConnectionSettings, password: str = "secret") -> ConnectionSettings:
    return ConnectionSettings(
        endpoint=settings.endpoint,
        username="root@pam",
        password=password,
        allow_password_login=True,
        ca_bundle=settings.ca_bundle,
        http_timeout=30,
    )


def logins(pve: Any) -> int:
    return len(requests_matching(pve, "POST", r"/access/ticket$"))


# ====================================================================== tasks


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Parameter verification failed."), (500, "task 'UPID:...' does not exist")],
    ids=["400", "does-not-exist"],
)
def test_wait_task_polls_through_a_task_that_is_not_visible_yet(
    pve: Any, client: ProxmoxClient, vm: Any, status: int, message: str
) -> None:
    upid = client.post(CONFIG, description="hello")
    pve.fail("GET", f"/tasks/{upid}/status", status, message, times=2)

    result = client.wait_task(upid, timeout=10)

    assert result == TaskResult(upid, "OK")
    assert len(requests_matching(pve, "GET", r"/tasks/.*/status$")) == 3
    assert vm.config["description"] == "hello"


def test_wait_task_polls_through_a_network_outage_until_its_deadline(
    pve: Any, client: ProxmoxClient, vm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    upid = client.post(CONFIG, description="hello")
    outage = Lose("GET", r"/tasks/.*/status$", times=2 * FAST.attempts, executed=False)
    lose_answers(monkeypatch, client, outage)

    assert client.wait_task(upid, timeout=10).exitstatus == "OK"
    assert outage.lost == 2 * FAST.attempts

    # An outage that outlasts the deadline is reported as what it is, not as a slow task.
    endless = Lose("GET", r"/tasks/.*/status$", times=10**6, executed=False)
    lose_answers(monkeypatch, client, endless)
    with pytest.raises(ProxmoxConnectionError):
        client.wait_task(upid, timeout=0.3)


def test_wait_task_returns_warnings_as_success(pve: Any, client: ProxmoxClient, vm: Any) -> None:
    upid, pid, start = pve._upid("pve1", "qmconfig", VM, TOKEN_ID)
    lines = [
        "update VM 1500: -ciuser ubuntu",
        "WARN: cloud-init drive regenerated while the VM runs",
        "generating cloud-init ISO",
        "WARN: no efidisk configured! Using temporary efivars disk.",
        "TASK WARNINGS: 2",
    ]
    record = {
        "upid": upid,
        "node": "pve1",
        "pid": pid,
        "pstart": pid * 7,
        "starttime": start,
        "type": "qmconfig",
        "id": str(VM),
        "user": TOKEN_ID,
        "status": "stopped",
        "exitstatus": "WARNINGS: 2",
        "log": lines,
    }
    pve.tasks[upid] = record
    pve.tasklog.append(record)

    result = client.wait_task(upid, timeout=5)

    assert result.exitstatus == "WARNINGS: 2"
    assert result.warnings == [lines[1], lines[3], lines[4]]


def test_failed_task_raises_with_its_log_tail(pve: Any, client: ProxmoxClient, vm: Any) -> None:
    pve.fail("POST", f"/nodes/pve1/qemu/{VM}/status/start", error="qemu_exited_code", times=1)

    with pytest.raises(ProxmoxTaskError) as raised:
        client.call_task("POST", f"/nodes/pve1/qemu/{VM}/status/start", timeout=10)

    err = raised.value
    assert err.exitstatus == "QEMU exited with code 1"
    assert err.upid.startswith("UPID:pve1:") and ":qmstart:1500:" in err.upid
    assert err.task_log[-1] == "TASK ERROR: QEMU exited with code 1"
    assert "task log (last lines)" in str(err)
    assert vm.status == "stopped"


def test_task_timeout_leaves_the_task_running(pve: Any, client: ProxmoxClient, vm: Any) -> None:
    pve.time_scale = 0.01  # a 50 PVE-second backup lasts half a second
    upid = on_sim(pve, pve.backup(VM, secs=50))
    started = time.monotonic()

    with pytest.raises(ProxmoxTimeoutError, match=r"did not finish within 0\.1s"):
        client.wait_task(upid, timeout=0.1)

    assert time.monotonic() - started < 0.4
    assert pve.tasks[upid]["status"] == "running"
    wait_until(lambda: pve.tasks[upid]["status"] == "stopped", what="the backup to end")
    assert client.wait_task(upid, timeout=5).exitstatus == "OK"


# ====================================================================== typed errors and retries


@pytest.mark.parametrize(
    ("path", "error", "cls", "status", "attempts"),
    [
        (CONFIG, "no_quorum", ProxmoxQuorumError, 500, 1),
        (CONFIG, "no_route_to_host", ProxmoxNodeUnavailableError, 595, 1),
        (CONFIG, "hostname_lookup_failed", ProxmoxNodeUnavailableError, 500, 1),
        (CONFIG, "permission_denied", ProxmoxPermissionError, 403, 1),
        (CONFIG, "invalid_csrf", ProxmoxAuthError, 401, 1),
        (CONFIG, "checksum_mismatch_file_change_other", ProxmoxChecksumError, 500, 1),
        (CONFIG, "configuration_file_does_not_exist", ProxmoxNotFoundError, 500, 1),
        (CONFIG, "param_delete_unknown_option", ProxmoxValidationError, 400, 1),
        (CONFIG, "failed_update", ProxmoxTransientError, 500, FAST.attempts),
        (CONFIG, "locked", ProxmoxLockedError, 500, None),
        (CONFIG, "config_lock_timeout", ProxmoxLockedError, 500, None),
        ("/nodes/pve1/qemu/9000/clone", "unable_create_config_file_already", ProxmoxAlreadyExistsError, 500, 1),
    ],
)
def test_pve_errors_become_typed_errors_and_retry_only_when_safe(
    pve: Any,
    settings: ConnectionSettings,
    vm: Any,
    path: str,
    error: str,
    cls: type[ProxmoxError],
    status: int,
    attempts: int | None,
) -> None:
    client = ProxmoxClient(settings, retry=QUICK_LOCKS, task_poll_interval=0.05)
    expected = next(e for e in pve.errors_for("POST", path, {"newid": 1234}) if e["name"] == error)
    pve.fail("POST", path, error=error)

    with pytest.raises(ProxmoxError) as raised:
        client.post(path, newid=1234, description="x")

    err = raised.value
    assert type(err) is cls, repr(err)
    assert err.status == status
    assert err.message == expected["message"]
    assert err.errors == (expected.get("errors") or {})
    assert (err.method, err.path) == ("POST", path)
    for field, text in err.errors.items():
        assert f"{field}: {text}" in str(err)
    sent = len(requests_matching(pve, "POST", f"{path}$"))
    if attempts is None:  # locks: retried for the whole lock wait
        assert sent > 2
    else:
        assert sent == attempts


def test_field_errors_of_a_real_400(pve: Any, client: ProxmoxClient) -> None:
    with pytest.raises(ProxmoxValidationError) as raised:
        client.get("/cluster/nextid", vmid=9000)

    err = raised.value
    assert err.status == 400
    assert err.message == "Parameter verification failed."
    assert err.errors == {"vmid": "VM 9000 already exists"}
    assert "vmid: VM 9000 already exists" in str(err)
    assert len(requests_matching(pve, "GET", r"/cluster/nextid$")) == 1


def test_a_real_403_is_never_retried(pve: Any, client: ProxmoxClient, vm: Any) -> None:
    pve.grant("auditor@pve", "/", "VM.Audit")  # switches fakepve's ACLs on; the token holds nothing

    with pytest.raises(ProxmoxPermissionError, match=r"Permission check failed \(/vms/1500, VM.Config.Options\)"):
        client.put(CONFIG, description="x")
    with pytest.raises(ProxmoxPermissionError):
        client.get(f"/nodes/pve1/qemu/{VM}/status/current")

    assert len(requests_matching(pve, "PUT", f"{CONFIG}$")) == 1
    assert len(requests_matching(pve, "GET", r"/status/current$")) == 1
    assert "description" not in vm.config


def test_transient_errors_are_retried_until_success(pve: Any, client: ProxmoxClient) -> None:
    pve.fail("GET", "/version", 500, "got no worker upid - try again", times=2)

    assert client.get("/version")["version"]
    assert len(requests_matching(pve, "GET", r"/version$")) == 3


def test_lost_answers_are_replayed_only_for_idempotent_calls(
    pve: Any, client: ProxmoxClient, vm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pve.flaky_network(drop_rate=1.0)

    before = client.round_trips
    with pytest.raises(ProxmoxConnectionError):
        client.post(CONFIG, description="x")
    assert client.round_trips - before == 1, "a POST whose answer was lost was sent again"

    before = client.round_trips
    with pytest.raises(ProxmoxConnectionError):
        client.get("/version")
    assert client.round_trips - before == FAST.attempts

    before = client.round_trips
    with pytest.raises(ProxmoxConnectionError):
        client.request("POST", CONFIG, {"description": "x"}, idempotent=True)
    assert client.round_trips - before == FAST.attempts
    assert "description" not in vm.config


# ====================================================================== tickets


def test_expired_ticket_logs_in_again_once(pve: Any, settings: ConnectionSettings, vm: Any) -> None:
    client = ProxmoxClient(password_settings(settings), retry=FAST, task_poll_interval=0.05)
    assert client.get("/version")["version"]
    assert logins(pve) == 1

    pve.revoke_tickets()
    assert client.get("/version")["version"]
    assert logins(pve) == 2

    pve.revoke_tickets()  # a write needs the new ticket's CSRF token as well
    client.wait_task(client.post(CONFIG, description="after relogin"), timeout=5)
    assert logins(pve) == 3
    assert vm.config["description"] == "after relogin"


def test_ticket_past_its_lifetime_logs_in_again(pve: Any, settings: ConnectionSettings) -> None:
    pve.ticket_ttl = 0.2
    client = ProxmoxClient(password_settings(settings), retry=FAST, task_poll_interval=0.05)
    client.get("/version")
    time.sleep(0.3)

    assert client.get("/version")["version"]
    assert logins(pve) == 2


def test_a_ticket_rejected_again_after_relogin_is_an_error(pve: Any, settings: ConnectionSettings) -> None:
    client = ProxmoxClient(password_settings(settings), retry=FAST, task_poll_interval=0.05)
    client.get("/version")
    pve.fail("GET", "/version", error="invalid_ticket")

    with pytest.raises(ProxmoxAuthError, match="invalid PVE ticket"):
        client.get("/version")

    assert logins(pve) == 2, "exactly one new login"
    assert len(requests_matching(pve, "GET", r"/version$")) == 3


def test_wrong_password_is_an_auth_error(pve: Any, settings: ConnectionSettings) -> None:
    client = ProxmoxClient(password_settings(settings, "wrong"), retry=FAST, task_poll_interval=0.05)

    with pytest.raises(ProxmoxAuthError, match="login as root@pam failed") as raised:
        client.get("/version")

    assert raised.value.status == 401
    assert logins(pve) == 1


def test_rejected_token_is_not_retried(pve: Any, settings: ConnectionSettings) -> None:
    bad = ConnectionSettings(
        endpoint=settings.endpoint, token_id=TOKEN_ID, token_secret="not-" + TOKEN_SECRET, ca_bundle=settings.ca_bundle
    )
    client = ProxmoxClient(bad, retry=FAST, task_poll_interval=0.05)

    with pytest.raises(ProxmoxAuthError, match="authentication failure"):
        client.get("/version")

    assert len(requests_matching(pve, "GET", r"/version$")) == 1
    assert logins(pve) == 0


# ====================================================================== TLS


@pytest.fixture
def no_env_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a CA bundle from the environment out of requests' verification."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_env_ca")
def test_without_the_ca_bundle_the_certificate_is_refused(pve: Any, settings: ConnectionSettings) -> None:
    client = ProxmoxClient(
        ConnectionSettings(endpoint=settings.endpoint, token_id=TOKEN_ID, token_secret=TOKEN_SECRET),
        retry=FAST,
    )
    before = len(pve.requests)

    with pytest.raises(ProxmoxTlsError, match=r"TLS verification of https://127\.0\.0\.1"):
        client.get("/version")

    assert client.round_trips == 1, "a TLS failure was retried"
    assert len(pve.requests) == before, "a request got through unverified"


@pytest.mark.usefixtures("no_env_ca")
def test_password_login_without_the_ca_bundle_is_refused(pve: Any, settings: ConnectionSettings) -> None:
    client = ProxmoxClient(
        ConnectionSettings(
            endpoint=settings.endpoint, username="root@pam", password="secret", allow_password_login=True
        ),
        retry=FAST,
    )

    with pytest.raises(ProxmoxTlsError):
        client.get("/version")

    assert logins(pve) == 0, "the password was sent over an unverified connection"


@pytest.mark.usefixtures("no_env_ca")
def test_a_different_ca_is_refused(pve: Any, settings: ConnectionSettings, tmp_path: Any) -> None:
    other_ca = make_cert(str(tmp_path), name="other", hosts=("127.0.0.1",))[0]
    client = ProxmoxClient(
        ConnectionSettings(
            endpoint=settings.endpoint, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, ca_bundle=other_ca
        ),
        retry=FAST,
    )

    with pytest.raises(ProxmoxTlsError) as raised:
        client.get("/version")

    assert is_kind(raised.value, ProxmoxConnectionError)


def test_switching_verification_off_logs_a_warning(
    pve: Any, settings: ConnectionSettings, caplog: pytest.LogCaptureFixture
) -> None:
    insecure = ConnectionSettings(
        endpoint=settings.endpoint, token_id=TOKEN_ID, token_secret=TOKEN_SECRET, verify_tls=False
    )
    with caplog.at_level(logging.WARNING, logger="providers.proxmox.client"):
        client = ProxmoxClient(insecure, retry=FAST)

    warnings = [r for r in caplog.records if r.name == "providers.proxmox.client" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "TLS verification" in warnings[0].getMessage() and "DISABLED" in warnings[0].getMessage()
    assert settings.endpoint in warnings[0].getMessage()
    assert client.get("/version")["version"], "an unverified connection should still work"
