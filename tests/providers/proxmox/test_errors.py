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
