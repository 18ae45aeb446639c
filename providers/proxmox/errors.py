"""Typed errors of the Proxmox VE API, and the mapping from PVE's wording to them.

PVE reports almost everything as HTTP 500 with a human sentence, so the class of an error is decided
from its status *and* its message. The table of messages follows the reference of PVE's own sources
(qemu-server, pve-guest-common, pve-access-control); the retry policy in ``client.py`` keys off the
classes defined here, never off raw strings.
"""

from __future__ import annotations

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


class ProxmoxConnectionError(ProxmoxError):
    """The connection failed, dropped or timed out before PVE answered."""


class ProxmoxTlsError(ProxmoxConnectionError):
    """The server's certificate did not verify against the configured CA bundle."""


class ProxmoxAuthError(ProxmoxError):
    """HTTP 401: bad credentials or an expired/revoked ticket."""


class ProxmoxPermissionError(ProxmoxError):
    """HTTP 403: the token lacks a privilege on a path. Never retried."""


class ProxmoxValidationError(ProxmoxError):
    """HTTP 400 with per-field errors: a parameter PVE rejected."""


class ProxmoxNotFoundError(ProxmoxError):
    """The VM, task or object does not exist (or not on that node)."""


class ProxmoxAlreadyExistsError(ProxmoxError):
    """A VMID (or other id) is taken: the caller should pick a fresh one."""


class ProxmoxLockedError(ProxmoxError):
    """The VM carries a config lock (clone, backup, migrate, ...) or its lock file is contended."""


class ProxmoxChecksumError(ProxmoxError):
    """The config digest changed under us: re-read and re-plan."""


class ProxmoxQuorumError(ProxmoxError):
    """The cluster lost quorum; writes are impossible until an operator restores it. Fails fast."""


class ProxmoxNodeUnavailableError(ProxmoxError):
    """The node is offline or unknown. Fails fast."""


class ProxmoxStorageFullError(ProxmoxError):
    """The target storage has no space left."""


class ProxmoxAgentUnavailableError(ProxmoxError):
    """The QEMU guest agent is not configured, not running or not answering (yet)."""


class ProxmoxTransientError(ProxmoxError):
    """A server-side hiccup worth retrying (5xx without a known cause, worker spawn failure)."""


class ProxmoxTaskError(ProxmoxError):
    """A task (UPID) ended with an error exit status; carries the tail of the task log.

    ``kind`` is the class the same message would have as a synchronous answer (for example
    :class:`ProxmoxAlreadyExistsError` for a clone that lost a VMID race), so retry decisions treat a
    task failure and a synchronous failure alike; see :func:`is_kind`.
    """

    def __init__(
        self,
        message: str,
        *,
        upid: str,
        exitstatus: str,
        kind: type[ProxmoxError] = ProxmoxError,
        task_log: Sequence[str] = (),
    ) -> None:
        self.upid = upid
        self.exitstatus = exitstatus
        self.kind = kind
        super().__init__(message, task_log=task_log)


class ProxmoxTimeoutError(ProxmoxError):
    """An operation did not finish within its timeout."""


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


def task_error(upid: str, exitstatus: str, log_tail: Sequence[str]) -> ProxmoxTaskError:
    """Build the error of a failed task, classified by its exit status."""
    kind = classify(500, exitstatus)
    return ProxmoxTaskError(
        f"task {upid} failed: {exitstatus}", upid=upid, exitstatus=exitstatus, kind=kind, task_log=log_tail
    )


def is_kind(error: BaseException, cls: type[ProxmoxError]) -> bool:
    """True if the error is of class ``cls``, directly or as a task that failed that way."""
    if isinstance(error, cls):
        return True
    return isinstance(error, ProxmoxTaskError) and issubclass(error.kind, cls)
