"""Typed errors of the Proxmox VE API, and the mapping from PVE's wording to them.

PVE reports almost everything as HTTP 500 with a human sentence, so the class of an error is decided
from its status *and* its message. The table of messages follows the reference of PVE's own sources
(qemu-server, pve-guest-common, pve-access-control, pve-storage); the retry policy in ``client.py`` and
``vm_ops.py`` keys off the classes and outcomes defined here, never off raw strings.

A finished task has one of four outcomes (:func:`task_outcome`): OK, *already done* (the task refused
because the goal already holds, such as "VM 101 already running" for a start), *temporary* (a lock, a
timeout, lost quorum or a worker that did not spawn: the same request can succeed later) or
*permanent* (everything else, including wording nobody has classified: repeating it only delays the
error).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence


class ProxmoxError(Exception):
    """Any failure talking to Proxmox VE: HTTP status (if any), PVE's message and per-field errors."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        errors: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str | None = None,
        task_log: Sequence[str] = (),
    ) -> None:
        self.message = message.strip()
        self.status = status
        self.errors: dict[str, str] = dict(errors or {})
        self.method = method
        self.path = path
        self.task_log: list[str] = list(task_log)
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        status = f"HTTP {self.status} " if self.status is not None else ""
        text = f"{where}{status}{self.message}"
        if self.errors:
            fields = "; ".join(f"{key}: {value.strip()}" for key, value in sorted(self.errors.items()))
            text += f" ({fields})"
        if self.task_log:
            text += "\n  task log (last lines):\n    " + "\n    ".join(self.task_log)
        return text


class ProxmoxPermanentError(ProxmoxError):
    """Repeating the same request cannot help: the input, the cluster or the guest must change first."""


class ProxmoxConnectionError(ProxmoxError):
    """The connection failed, dropped or timed out before PVE answered."""


class ProxmoxTlsError(ProxmoxConnectionError):
    """The server's certificate did not verify against the configured CA bundle."""


class ProxmoxAuthError(ProxmoxError):
    """HTTP 401: bad credentials or an expired/revoked ticket."""


class ProxmoxPermissionError(ProxmoxPermanentError):
    """HTTP 403: the token lacks a privilege on a path. Never retried."""


class ProxmoxValidationError(ProxmoxPermanentError):
    """HTTP 400 with per-field errors: a parameter PVE rejected."""


class ProxmoxNotFoundError(ProxmoxPermanentError):
    """The VM, task or object does not exist (or not on that node)."""


class ProxmoxAlreadyExistsError(ProxmoxPermanentError):
    """A VMID (or other id) is taken: the caller should pick a fresh one."""


class ProxmoxLockedError(ProxmoxError):
    """The VM carries a config lock (clone, backup, migrate, ...) or its lock file is contended."""


class ProxmoxChecksumError(ProxmoxError):
    """The config digest changed under us: re-read and re-plan."""


class ProxmoxQuorumError(ProxmoxError):
    """The cluster lost quorum; writes are impossible until an operator restores it. Fails fast."""


class ProxmoxNodeUnavailableError(ProxmoxPermanentError):
    """The node is offline or unknown. Fails fast."""


class ProxmoxStorageFullError(ProxmoxPermanentError):
    """The target storage has no space left."""


class ProxmoxStorageUnavailableError(ProxmoxPermanentError):
    """The storage is offline, disabled, missing, or not enabled on the node (pve-storage's wording)."""


class ProxmoxGuestStartError(ProxmoxPermanentError):
    """QEMU refused to start the guest ("start failed: QEMU exited with code 1"); its config must change."""


class ProxmoxGuestRunningError(ProxmoxPermanentError):
    """PVE refuses to destroy a running guest ("VM 101 is running - destroy failed"): stop it first."""


class ProxmoxAgentUnavailableError(ProxmoxError):
    """The QEMU guest agent is not configured, not running or not answering (yet)."""


class ProxmoxTransientError(ProxmoxError):
    """A server-side hiccup worth retrying (5xx without a known cause, worker spawn failure)."""


class ProxmoxTaskError(ProxmoxError):
    """A task (UPID) ended with an error exit status; carries the tail of the task log.

    ``kind`` is the class the same message would have as a synchronous answer (for example
    :class:`ProxmoxAlreadyExistsError` for a clone that lost a VMID race), so retry decisions treat a
    task failure and a synchronous failure alike; see :func:`is_kind`. ``resource`` is what the failure
    names (``storage 'ceph-pool'``, ``node 'pve3'``), else the task's own object (``VM 101 on pve1``).
    :func:`task_error` raises one of the two subclasses, so callers can tell at a glance whether waiting
    could help.
    """

    def __init__(
        self,
        message: str,
        *,
        upid: str,
        exitstatus: str,
        kind: type[ProxmoxError] = ProxmoxError,
        task_log: Sequence[str] = (),
        resource: str = "",
    ) -> None:
        self.upid = upid
        self.exitstatus = exitstatus
        self.kind = kind
        self.resource = resource
        super().__init__(message, task_log=task_log)


class ProxmoxTemporaryTaskError(ProxmoxTaskError):
    """A task failed on a lock, a timeout, lost quorum or a worker hiccup: the same request may succeed later."""


class ProxmoxPermanentTaskError(ProxmoxTaskError, ProxmoxPermanentError):
    """A task failed for a reason repeating cannot fix, or one nobody has classified: fail fast."""


class ProxmoxTimeoutError(ProxmoxError):
    """An operation did not finish within its timeout; ``upid`` names the task still running, if any."""

    def __init__(self, message: str, *, upid: str | None = None, task_log: Sequence[str] = ()) -> None:
        self.upid = upid
        super().__init__(message, task_log=task_log)


_LOCK_FILE = re.compile(r"can't lock file .* got timeout", re.IGNORECASE)

# (pattern, class): first match wins. Patterns are PVE's own wording (see the reference, section 2.9).
_MESSAGE_CLASSES: tuple[tuple[re.Pattern[str], type[ProxmoxError]], ...] = (
    (re.compile(r"no quorum", re.IGNORECASE), ProxmoxQuorumError),
    # PVE's wording of a 403; a worker (or a node proxying the call) can report it inside a task or a 500.
    (re.compile(r"Permission check failed", re.IGNORECASE), ProxmoxPermissionError),
    (
        re.compile(r"guest agent is not running|no qemu guest agent|qmp command 'guest-", re.I),
        ProxmoxAgentUnavailableError,
    ),
    (
        re.compile(r"hostname lookup .* failed|no route to host|no such cluster node", re.I),
        ProxmoxNodeUnavailableError,
    ),
    (re.compile(r"no space left on device|not enough space", re.IGNORECASE), ProxmoxStorageFullError),
    # pve-storage: PVE::Storage::activate_storage, storage_check_enabled, storage_config.
    (
        re.compile(
            r"storage '[^']+' (is not online|is disabled|does not exist|is not available on node)"
            r"|storage '[^']+' does not support vm images",
            re.IGNORECASE,
        ),
        ProxmoxStorageUnavailableError,
    ),
    # qemu-server's destroy_vm, checked again inside the worker once it holds the config lock.
    (re.compile(r"\b(VM|CT) \d+ is running - destroy failed", re.IGNORECASE), ProxmoxGuestRunningError),
    # qemu-server: vm_start_nolock dies with "start failed: ..." once QEMU itself refused the config.
    (re.compile(r"start failed: |QEMU exited with code", re.IGNORECASE), ProxmoxGuestStartError),
    (re.compile(r"already exists", re.IGNORECASE), ProxmoxAlreadyExistsError),
    (re.compile(r"checksum mismatch|detected modified configuration", re.IGNORECASE), ProxmoxChecksumError),
    (re.compile(r"VM is locked|CT is locked", re.IGNORECASE), ProxmoxLockedError),
    (_LOCK_FILE, ProxmoxLockedError),
    (
        re.compile(r"does not exist|no such (VM|user|token|role|group|pool|security group)\b", re.IGNORECASE),
        ProxmoxNotFoundError,
    ),
    (re.compile(r"invalid privilege", re.IGNORECASE), ProxmoxValidationError),
    (re.compile(r"got no worker upid|got timeout", re.IGNORECASE), ProxmoxTransientError),
)


def classify(status: int | None, message: str) -> type[ProxmoxError]:
    """The error class for an HTTP status and PVE message."""
    if status == 401:
        return ProxmoxAuthError
    if status == 403:
        return ProxmoxPermissionError
    if status == 595:
        return ProxmoxNodeUnavailableError
    for pattern, cls in _MESSAGE_CLASSES:
        if pattern.search(message):
            return cls
    if status == 400:
        return ProxmoxValidationError
    if status == 404:
        return ProxmoxNotFoundError
    if status is not None and status >= 500:
        return ProxmoxTransientError
    return ProxmoxError


def api_error(
    status: int | None,
    message: str,
    *,
    errors: Mapping[str, str] | None = None,
    method: str | None = None,
    path: str | None = None,
) -> ProxmoxError:
    """Build the typed exception for an API answer."""
    cls = classify(status, message)
    return cls(message, status=status, errors=errors, method=method, path=path)


class Outcome(enum.Enum):
    """How a finished task ended, from its exit status and (for "already done") its type."""

    OK = "ok"
    ALREADY_DONE = "already done"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


# Task refusals that mean the goal already holds, per task type (the UPID's type field). The wording is
# qemu-server's (vm_start: "VM $vmid already running"; vm_resume; vm_stop/vm_shutdown: "VM $vmid not
# running") and pve-container's ("CT $vmid already running", "CT $vmid not running"); fakepve's error
# catalogue, extracted from those sources, lists the same sentences.
_RUNNING = re.compile(r"^(VM|CT) \d+ already running$", re.IGNORECASE)
_NOT_RUNNING = re.compile(r"^(VM|CT) \d+ (not running|already stopped)$", re.IGNORECASE)
ALREADY_DONE: Mapping[str, re.Pattern[str]] = {
    "qmstart": _RUNNING,
    "qmresume": _RUNNING,
    "vzstart": _RUNNING,
    "vzresume": _RUNNING,
    "qmstop": _NOT_RUNNING,
    "qmshutdown": _NOT_RUNNING,
    "vzstop": _NOT_RUNNING,
    "vzshutdown": _NOT_RUNNING,
}

# The error classes whose cause goes away by itself; a task failing with one of these is worth repeating.
TEMPORARY_KINDS: tuple[type[ProxmoxError], ...] = (ProxmoxLockedError, ProxmoxTransientError, ProxmoxQuorumError)

# Timeouts that do not say "got timeout" (pve-guest-common, qemu-server's QMP and systemd scope waits).
_TIMEOUT = re.compile(r"got timeout|timeout waiting|timed out|\btimeout\b.*\bexpired", re.IGNORECASE)

_NAMED_RESOURCE = re.compile(
    r"\b(storage|node|pool|bridge|volume|snapshot|disk|drive|template) '([^']+)'"
    r"|\b(VM|CT) (\d+)\b",
    re.IGNORECASE,
)


def already_done(task_type: str, message: str) -> bool:
    """True if a task of this type refused with ``message`` only because its goal already holds."""
    pattern = ALREADY_DONE.get(task_type)
    return pattern is not None and pattern.match(message.strip().removeprefix("TASK ERROR: ")) is not None


def task_kind(exitstatus: str) -> type[ProxmoxError]:
    """The error class of a task's exit status; wording nobody has classified is permanent, never temporary."""
    for pattern, cls in _MESSAGE_CLASSES:
        if pattern.search(exitstatus):
            return cls
    if _TIMEOUT.search(exitstatus):
        return ProxmoxTransientError
    return ProxmoxPermanentError


def task_outcome(task_type: str, exitstatus: str) -> Outcome:
    """Classify a finished task: OK (``WARNINGS: n`` included), already done, temporary or permanent."""
    if exitstatus == "OK" or (exitstatus.startswith("WARNINGS") and "ERROR" not in exitstatus):
        return Outcome.OK
    if already_done(task_type, exitstatus):
        return Outcome.ALREADY_DONE
    if issubclass(task_kind(exitstatus), TEMPORARY_KINDS):
        return Outcome.TEMPORARY
    return Outcome.PERMANENT


def named_resource(message: str, *, fallback: str = "") -> str:
    """The object a PVE message names first (``storage 'ceph-pool'``), else ``fallback``.

    Storages, nodes and the like are preferred over a VM number: "clone failed: storage 'x' is not
    online" is about the storage, not the VM being made.
    """
    found = list(_NAMED_RESOURCE.finditer(message))
    for match in found:
        if match.group(1):
            return f"{match.group(1).lower()} '{match.group(2)}'"
    for match in found:
        return f"{match.group(3).upper()} {match.group(4)}"
    return fallback


def task_error(upid: str, exitstatus: str, log_tail: Sequence[str]) -> ProxmoxTaskError:
    """Build the error of a failed task: temporary or permanent by its exit status, naming what it concerns."""
    parts = upid.split(":")
    task_type, task_id, node = (parts[5], parts[6], parts[1]) if len(parts) >= 8 else ("", "", "")
    kind = task_kind(exitstatus)
    own = f"{'CT' if task_type.startswith('vz') else 'VM'} {task_id} on node '{node}'" if task_id else ""
    resource = named_resource(exitstatus, fallback=own)
    temporary = issubclass(kind, TEMPORARY_KINDS)
    cls = ProxmoxTemporaryTaskError if temporary else ProxmoxPermanentTaskError
    what = f"{task_type} of {own}" if own else f"task {upid}"
    about = f" [{resource}]" if resource and not own.startswith(resource) else ""
    message = f"{what} failed ({'temporary' if temporary else 'permanent'}){about}: {exitstatus} ({upid})"
    return cls(message, upid=upid, exitstatus=exitstatus, kind=kind, task_log=log_tail, resource=resource)


def is_kind(error: BaseException, cls: type[ProxmoxError]) -> bool:
    """True if the error is of class ``cls``, directly or as a task that failed that way."""
    if isinstance(error, cls):
        return True
    return isinstance(error, ProxmoxTaskError) and issubclass(error.kind, cls)
