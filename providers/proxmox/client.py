"""A plain, thread-safe Proxmox VE API client: typed errors, bounded retries, task waiting.

proxmoxer supplies authentication (token header, or ticket cookie + CSRF with renewal) and the HTTP
session; this module adds what a provider that must never orphan a VM needs on top: classification of
PVE's errors, retries only where they are safe, waiting on tasks by UPID with the task log attached to
failures, and a round-trip counter for the benchmarks. It has no pulumi import and is tested alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from proxmoxer.backends.https import Backend
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from providers.proxmox.connection import ConnectionSettings
from providers.proxmox.errors import (
    Outcome,
    ProxmoxAuthError,
    ProxmoxConnectionError,
    ProxmoxError,
    ProxmoxLockedError,
    ProxmoxNotFoundError,
    ProxmoxTimeoutError,
    ProxmoxTlsError,
    ProxmoxTransientError,
    ProxmoxValidationError,
    api_error,
    task_error,
    task_outcome,
)

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "PUT"})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry transient failures. Permission, validation, quorum and node errors never retry."""

    attempts: int = 5
    """Attempts for transient errors (5xx, worker spawn failures, dropped connections on idempotent calls)."""
    initial_delay: float = 0.5
    """First backoff delay in seconds; doubles with jitter."""
    max_delay: float = 8.0
    """Cap of one backoff delay."""
    lock_wait: float = 120.0
    """Seconds to keep retrying while a VM config lock is held by someone else."""


@dataclass(frozen=True)
class Upid:
    """The parts of a task id ``UPID:node:pid:pstart:starttime:type:id:user:`` that matter to us."""

    node: str
    type: str
    id: str
    user: str

    @classmethod
    def parse(cls, upid: str) -> Upid:
        """Split a UPID; raise ValueError for anything that is not one."""
        parts = upid.split(":")
        if len(parts) < 8 or parts[0] != "UPID" or not parts[1]:
            raise ValueError(f"not a Proxmox task id: {upid!r}")
        return cls(node=parts[1], type=parts[5], id=parts[6], user=parts[7])


@dataclass(frozen=True)
class TaskResult:
    """A finished task: its exit status, and the WARN lines when it ended with ``WARNINGS: n``.

    ``already_done`` is set when the task refused only because its goal already held ("VM 101 already
    running" for a start): the caller's intent is met, so it is a success.
    """

    upid: str
    exitstatus: str
    warnings: list[str] = field(default_factory=list)
    already_done: bool = False


def is_upid(value: Any) -> bool:
    """True for a task id as PVE returns it from asynchronous calls."""
    return isinstance(value, str) and value.startswith("UPID:")


class ProxmoxClient:
    """Talks to one Proxmox VE cluster. Safe to share between threads (one HTTP session per thread)."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        task_poll_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._task_poll_interval = task_poll_interval
        self._local = threading.local()
        self._count_lock = threading.Lock()
        self._round_trips = 0
        if not settings.verify_tls:
            log.warning(
                "TLS verification toward Proxmox %s is DISABLED (verify_tls=false): the API token can be "
                "intercepted by anyone on the path. Use ca_bundle with the cluster's CA instead.",
                settings.base_url,
            )
            requests.packages.urllib3.disable_warnings()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ counters

    @property
    def round_trips(self) -> int:
        """HTTP requests sent so far by this client (logins included)."""
        return self._round_trips

    def _count(self) -> None:
        with self._count_lock:
            self._round_trips += 1

    # ------------------------------------------------------------------ sessions

    def _session(self) -> tuple[requests.Session, str]:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._login()
            self._local.session = session
        return session, self._local.base_url

    def _login(self) -> requests.Session:
        s = self.settings
        host, port = s.host_port
        kwargs: dict[str, Any] = {
            "port": port,
            "verify_ssl": s.verify,
            "timeout": s.http_timeout,
            "service": "PVE",
        }
        if s.token_id:
            user, _, token_name = s.token_id.partition("!")
            kwargs.update(user=user, token_name=token_name, token_value=s.token_secret)
        else:
            kwargs.update(user=s.username, password=s.password)
            self._count()  # the ticket request
        try:
            backend = Backend(host, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise ProxmoxTlsError(f"TLS verification of {s.base_url} failed: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise ProxmoxConnectionError(f"cannot reach {s.base_url}: {exc}") from None
        except Exception as exc:  # proxmoxer's AuthenticationError and friends
            if "401" in str(exc) or "authentication" in type(exc).__name__.lower():
                raise ProxmoxAuthError(f"login as {s.principal} failed: {exc}", status=401) from None
            raise
        self._local.base_url = backend.base_url
        session: requests.Session = backend.get_session()
        return session

    def _drop_session(self) -> None:
        self._local.session = None

    # ------------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> Any:
        """Send one API call with the retry policy; return the ``data`` of the answer.

        ``idempotent`` says whether a request whose answer was lost may be sent again; it defaults to
        True for GET and PUT. Errors PVE answered with were not executed, so those retry regardless.
        """
        method = method.upper()
        replay_lost = method in IDEMPOTENT_METHODS if idempotent is None else idempotent

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, ProxmoxConnectionError) and not isinstance(exc, ProxmoxTlsError):
                return replay_lost
            return isinstance(exc, ProxmoxTransientError | ProxmoxLockedError)

        started = time.monotonic()

        def stop(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, ProxmoxLockedError):
                return time.monotonic() - started >= self.retry.lock_wait
            return state.attempt_number >= self.retry.attempts

        retrying = Retrying(
            stop=stop,
            wait=wait_exponential_jitter(
                multiplier=self.retry.initial_delay, max=self.retry.max_delay, jitter=self.retry.initial_delay
            ),
            retry=retry_if_exception(retryable),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda st: log.info(
                "retrying %s %s after: %s", method, path, st.outcome.exception() if st.outcome else "?"
            ),
        )
        return retrying(self._send_with_relogin, method, path, dict(params or {}))

    def _send_with_relogin(self, method: str, path: str, params: dict[str, Any]) -> Any:
        had_ticket = getattr(self._local, "session", None) is not None
        try:
            return self._send(method, path, params)
        except ProxmoxAuthError:
            # A login that just failed (wrong password) is not an expired ticket: never try it twice.
            if self.settings.token_id or not had_ticket:
                raise
            # An expired or revoked ticket: log in again once and replay (PVE rejected the call unexecuted).
            log.info("Proxmox ticket rejected; logging in again as %s", self.settings.principal)
            self._drop_session()
            return self._send(method, path, params)

    def _send(self, method: str, path: str, params: dict[str, Any]) -> Any:
        session, base_url = self._session()
        url = base_url + "/" + path.lstrip("/")
        clean = {k: _wire(v) for k, v in params.items() if v is not None}
        self._count()
        try:
            if method in ("GET", "DELETE"):
                resp = session.request(method, url, params=clean)
            else:
                resp = session.request(method, url, data=clean)
        except requests.exceptions.SSLError as exc:
            raise ProxmoxTlsError(
                f"TLS verification of {self.settings.base_url} failed: {exc}", method=method, path=path
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            self._drop_session()
            raise ProxmoxConnectionError(f"connection failed: {exc}", method=method, path=path) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            self._drop_session()
            raise ProxmoxConnectionError(f"connection dropped: {exc}", method=method, path=path) from None
        if resp.status_code >= 400:
            message, errors = _error_body(resp)
            raise api_error(resp.status_code, message, errors=errors, method=method, path=path)
        try:
            return resp.json().get("data")
        except ValueError:
            raise ProxmoxTransientError(
                f"unreadable answer ({resp.status_code}): {resp.text[:200]}", method=method, path=path
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        """GET with retries."""
        return self.request("GET", path, params)

    def post(self, path: str, **params: Any) -> Any:
        """POST; a lost answer is not replayed."""
        return self.request("POST", path, params)

    def put(self, path: str, **params: Any) -> Any:
        """PUT (idempotent writes such as config and resize)."""
        return self.request("PUT", path, params)

    def delete(self, path: str, **params: Any) -> Any:
        """DELETE; a lost answer is not replayed."""
        return self.request("DELETE", path, params)

    # ------------------------------------------------------------------ tasks

    def wait_task(self, upid: str, *, timeout: float) -> TaskResult:
        """Poll a task until it stops; raise ProxmoxTaskError (with the log tail) unless it succeeded.

        The node comes from the UPID. Right after dispatch a task may not be visible yet, which PVE
        answers with 400 or "does not exist": both are polled through, as are lost answers until the
        deadline. ``WARNINGS: n`` is a success whose WARN lines are returned, and so is a refusal that
        means the goal already holds (``errors.task_outcome``). Any other failure raises a temporary or
        a permanent ProxmoxTaskError. A timeout raises ProxmoxTimeoutError (with the task's ``upid``)
        and leaves the task running.
        """
        parsed = Upid.parse(upid)
        node = parsed.node
        status_path = f"/nodes/{node}/tasks/{quote(upid, safe='')}/status"
        deadline = time.monotonic() + timeout
        delay = min(0.05, self._task_poll_interval)
        while True:
            try:
                status = self.get(status_path)
            except (ProxmoxValidationError, ProxmoxNotFoundError):
                status = None
            except ProxmoxConnectionError as exc:
                # Polling is safe to repeat: a network blip longer than one request's retries is polled
                # through until the task's own deadline (TLS failures are not blips).
                if isinstance(exc, ProxmoxTlsError) or time.monotonic() >= deadline:
                    raise
                status = None
            if status and status.get("status") == "stopped":
                exitstatus = str(status.get("exitstatus", ""))
                outcome = task_outcome(parsed.type, exitstatus)
                if exitstatus == "OK":
                    return TaskResult(upid, exitstatus)
                if outcome is Outcome.OK:
                    lines = self.task_log(upid, limit=500)
                    return TaskResult(upid, exitstatus, [ln for ln in lines if "WARN" in ln])
                if outcome is Outcome.ALREADY_DONE:
                    log.info("task %s: %s; nothing to do", upid, exitstatus)
                    return TaskResult(upid, exitstatus, already_done=True)
                raise task_error(upid, exitstatus, self.task_log(upid))
            if time.monotonic() >= deadline:
                raise ProxmoxTimeoutError(
                    f"task {upid} did not finish within {timeout:g}s", task_log=self.task_log(upid), upid=upid
                )
            self._sleep(delay)
            delay = min(delay * 2, self._task_poll_interval)

    def task_log(self, upid: str, *, limit: int = 20) -> list[str]:
        """The last ``limit`` lines of a task's log (empty if it cannot be read)."""
        node = Upid.parse(upid).node
        try:
            rows = self.get(f"/nodes/{node}/tasks/{quote(upid, safe='')}/log", start=0, limit=5000)
        except ProxmoxError:
            return []
        lines = [str(row.get("t", "")) for row in rows or []]
        return lines[-limit:]

    def call_task(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float,
        idempotent: bool | None = None,
    ) -> TaskResult | None:
        """Dispatch a call that may answer with a UPID, and wait for that task if it does."""
        result = self.request(method, path, params, idempotent=idempotent)
        if is_upid(result):
            return self.wait_task(result, timeout=timeout)
        return None


def _wire(value: Any) -> Any:
    """PVE wants booleans as 0/1 and lists as comma-separated strings."""
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return value


def _error_body(resp: requests.Response) -> tuple[str, dict[str, str]]:
    message = resp.reason or ""
    errors: dict[str, str] = {}
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or message).strip()
        raw = body.get("errors")
        if isinstance(raw, dict):
            errors = {str(k): str(v) for k, v in raw.items()}
    elif resp.text and not message:
        message = resp.text.strip()[:500]
    return message or f"HTTP {resp.status_code}", errors
