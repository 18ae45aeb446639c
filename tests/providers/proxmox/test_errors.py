"""Classification of PVE's answers into typed errors (what the retry policy keys off)."""

from __future__ import annotations

import pytest

from providers.proxmox import errors as e


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "authentication failure", e.ProxmoxAuthError),
        (403, "Permission check failed (/vms/100, VM.Allocate)", e.ProxmoxPermissionError),
        (500, "cluster not ready - no quorum?", e.ProxmoxQuorumError),
        (595, "No route to host", e.ProxmoxNodeUnavailableError),
        (500, "hostname lookup 'pve9' failed - failed to get address info", e.ProxmoxNodeUnavailableError),
        (500, "unable to create VM 101: config file already exists", e.ProxmoxAlreadyExistsError),
        (500, "VM is locked (backup)", e.ProxmoxLockedError),
        (500, "can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout", e.ProxmoxLockedError),
        (500, "checksum mismatch (file change by other user?)", e.ProxmoxChecksumError),
        (500, "Configuration file 'nodes/pve1/qemu-server/101.conf' does not exist", e.ProxmoxNotFoundError),
        (500, "no such user ('x@pve')", e.ProxmoxNotFoundError),
        (500, "no such security group 'k8s-mgmt'", e.ProxmoxNotFoundError),
        (500, "detected modified configuration - file changed by other user? Try again.", e.ProxmoxChecksumError),
        (500, "invalid privilege 'VM.Monitor'", e.ProxmoxValidationError),
        (500, "QEMU guest agent is not running", e.ProxmoxAgentUnavailableError),
        (500, "unable to write to storage 'local-lvm': No space left on device", e.ProxmoxStorageFullError),
        (500, "got no worker upid - start worker failed", e.ProxmoxTransientError),
        (500, "something unexpected", e.ProxmoxTransientError),
        (400, "Parameter verification failed.", e.ProxmoxValidationError),
        (404, "Not Found", e.ProxmoxNotFoundError),
    ],
)
def test_classification(status: int, message: str, expected: type[e.ProxmoxError]) -> None:
    assert e.classify(status, message) is expected


def test_api_error_carries_status_message_and_fields() -> None:
    err = e.api_error(
        400,
        "Parameter verification failed.",
        errors={"cores": "value must be >= 1"},
        method="POST",
        path="/nodes/pve1/qemu/101/config",
    )
    assert isinstance(err, e.ProxmoxValidationError)
    assert err.status == 400 and err.errors == {"cores": "value must be >= 1"}
    assert "POST /nodes/pve1/qemu/101/config" in str(err) and "cores: value must be >= 1" in str(err)


def test_task_errors_keep_the_kind_of_their_message() -> None:
    err = e.task_error("UPID:pve1:1:2:3:qmclone:9000:u:", "clone failed: VM 101 already exists", ["line"])
    assert e.is_kind(err, e.ProxmoxAlreadyExistsError)
    assert not e.is_kind(err, e.ProxmoxLockedError)
    assert err.task_log == ["line"] and "task log" in str(err)


# (task type, exit status, outcome, kind): PVE's wording from qemu-server, pve-storage and pve-guest-common.
TASK_OUTCOMES = [
    ("qmstart", "OK", e.Outcome.OK, None),
    ("qmconfig", "WARNINGS: 2", e.Outcome.OK, None),
    ("qmstart", "VM 101 already running", e.Outcome.ALREADY_DONE, None),
    ("vzstart", "CT 200 already running", e.Outcome.ALREADY_DONE, None),
    ("qmshutdown", "VM 101 not running", e.Outcome.ALREADY_DONE, None),
    ("qmstop", "VM 101 already stopped", e.Outcome.ALREADY_DONE, None),
    # The same words from another kind of task are no success: a migrate of a running VM is not "done".
    ("qmigrate", "VM 101 already running", e.Outcome.PERMANENT, e.ProxmoxPermanentError),
    (
        "qmconfig",
        "can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout",
        e.Outcome.TEMPORARY,
        e.ProxmoxLockedError,
    ),
    ("qmstart", "VM is locked (backup)", e.Outcome.TEMPORARY, e.ProxmoxLockedError),
    ("qmshutdown", "VM quit/powerdown failed - got timeout", e.Outcome.TEMPORARY, e.ProxmoxTransientError),
    ("qmstart", "timeout waiting on systemd", e.Outcome.TEMPORARY, e.ProxmoxTransientError),
    ("qmclone", "cluster not ready - no quorum?", e.Outcome.TEMPORARY, e.ProxmoxQuorumError),
    ("qmstart", "start failed: QEMU exited with code 1", e.Outcome.PERMANENT, e.ProxmoxGuestStartError),
    (
        "qmclone",
        "clone failed: storage 'ceph-pool' is not online",
        e.Outcome.PERMANENT,
        e.ProxmoxStorageUnavailableError,
    ),
    ("qmclone", "storage 'nfs' is not available on node 'pve2'", e.Outcome.PERMANENT, e.ProxmoxStorageUnavailableError),
    ("qmclone", "clone failed: VM 101 already exists", e.Outcome.PERMANENT, e.ProxmoxAlreadyExistsError),
    ("qmstart", "something nobody has seen before", e.Outcome.PERMANENT, e.ProxmoxPermanentError),
]


@pytest.mark.parametrize(("task_type", "exitstatus", "outcome", "kind"), TASK_OUTCOMES)
def test_task_outcome(task_type: str, exitstatus: str, outcome: e.Outcome, kind: type[e.ProxmoxError] | None) -> None:
    assert e.task_outcome(task_type, exitstatus) is outcome
    if kind is not None:
        err = e.task_error(f"UPID:pve1:1:2:3:{task_type}:101:u:", exitstatus, [])
        assert err.kind is kind
        temporary = outcome is e.Outcome.TEMPORARY
        assert isinstance(err, e.ProxmoxTemporaryTaskError) is temporary
        assert isinstance(err, e.ProxmoxPermanentTaskError) is not temporary
        assert isinstance(err, e.ProxmoxPermanentError) is not temporary


def test_task_error_names_the_resource_and_the_outcome() -> None:
    err = e.task_error(
        "UPID:pve1:1:2:3:qmclone:9000:u:", "clone failed: storage 'ceph-pool' is not online", ["TASK ERROR: x"]
    )
    assert err.resource == "storage 'ceph-pool'"
    assert str(err).startswith("qmclone of VM 9000 on node 'pve1' failed (permanent) [storage 'ceph-pool']: ")
    assert "TASK ERROR: x" in str(err)
    own = e.task_error("UPID:pve2:1:2:3:qmstart:101:u:", "start failed: QEMU exited with code 1", [])
    assert own.resource == "VM 101 on node 'pve2'"


def test_unknown_synchronous_5xx_stays_transient() -> None:
    # A synchronous 500 without a known cause was not executed; the client's bounded retry covers it. Only
    # task outcomes treat unknown wording as permanent (the task ran and said why it failed).
    assert e.classify(500, "something unexpected") is e.ProxmoxTransientError
    assert e.task_kind("something unexpected") is e.ProxmoxPermanentError
