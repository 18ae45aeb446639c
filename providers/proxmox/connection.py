"""How to reach and authenticate to a Proxmox VE API: endpoint, credentials, TLS and timeouts.

API tokens are the default and the recommendation: they carry no ticket that expires mid-run and can
be scoped to least privilege. Password login exists for bootstrapping only and must be asked for
explicitly. TLS verification is on unless ``verify_tls`` is switched off on purpose, which is logged
loudly every time a client is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MIN_HTTP_TIMEOUT = 30.0
DEFAULT_HTTP_TIMEOUT = 60.0
TOKEN_ID = re.compile(r"^[A-Za-z0-9._@-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*$")

# Environment variables understood by ConnectionSettings.from_env (CI, tests, the local stack).
ENV_ENDPOINT = "PROXMOX_ENDPOINT"
ENV_TOKEN_ID = "PROXMOX_TOKEN_ID"
ENV_TOKEN_SECRET = "PROXMOX_TOKEN_SECRET"
ENV_CA_BUNDLE = "PROXMOX_CA_BUNDLE"
ENV_VERIFY_TLS = "PROXMOX_VERIFY_TLS"


class ConnectionConfigError(ValueError):
    """The connection settings are incomplete or contradictory; the message names the field."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything a client needs to talk to one Proxmox VE cluster.

    Secrets (``token_secret``, ``password``) are excluded from ``repr`` so they never reach a log line.
    """

    endpoint: str
    """Base URL, ``https://host:8006`` (a trailing ``/api2/json`` is accepted and stripped)."""
    token_id: str | None = None
    """API token id, ``user@realm!name``."""
    token_secret: str | None = field(default=None, repr=False)
    """API token secret (UUID shown once by Proxmox)."""
    username: str | None = None
    """Password login user (``root@pam``); only with ``allow_password_login``."""
    password: str | None = field(default=None, repr=False)
    """Password for ``username``."""
    allow_password_login: bool = False
    """Explicit opt-in for ticket (password) authentication."""
    verify_tls: bool = True
    """Verify the server certificate. Switching this off is logged as a warning on every connect."""
    ca_bundle: str | None = None
    """Path of a PEM CA bundle to verify the server against (self-signed PVE certificates)."""
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    """Seconds for one HTTP request; PVE's synchronous config writes can block 10 s on a lock."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConnectionConfigError("invalid Proxmox connection settings: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every problem with these settings, each naming its field."""
        out: list[str] = []
        parts = urlsplit(self.endpoint)
        if parts.scheme != "https" or not parts.hostname:
            out.append(f"endpoint: must be an https:// URL with a host, got {self.endpoint!r}")
        if self.token_id or self.token_secret:
            if not self.token_id or not TOKEN_ID.match(self.token_id):
                out.append("token_id: must look like 'user@realm!tokenname'")
            if not self.token_secret:
                out.append("token_secret: is required with token_id")
        elif self.allow_password_login:
            if not self.username or not self.password:
                out.append("username/password: both are required for password login")
        else:
            out.append(
                "token_id/token_secret: an API token is required (password login only with allow_password_login=true)"
            )
        if self.http_timeout < MIN_HTTP_TIMEOUT:
            out.append(f"http_timeout: must be at least {MIN_HTTP_TIMEOUT:g} seconds, got {self.http_timeout:g}")
        if self.ca_bundle and not os.path.isfile(self.ca_bundle):
            out.append(f"ca_bundle: file {self.ca_bundle!r} does not exist")
        return out

    @property
    def base_url(self) -> str:
        """``https://host:port`` without any API path."""
        parts = urlsplit(self.endpoint)
        return f"https://{parts.netloc}"

    @property
    def host_port(self) -> tuple[str, int]:
        """Host and port of the endpoint (8006 when not given)."""
        parts = urlsplit(self.endpoint)
        return parts.hostname or "", parts.port or 8006

    @property
    def verify(self) -> bool | str:
        """The ``requests`` verify argument: False, True, or the CA bundle path."""
        if not self.verify_tls:
            return False
        return self.ca_bundle or True

    @property
    def principal(self) -> str:
        """Who we authenticate as (token id or user), for logs and error messages."""
        return self.token_id or self.username or "?"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], secrets: Mapping[str, Any] | None = None) -> ConnectionSettings:
        """Build from a camelCase or snake_case mapping (stack config), secrets given separately."""
        secrets = secrets or {}

        def pick(*names: str) -> Any:
            for source in (secrets, raw):
                for name in names:
                    if source.get(name) not in (None, ""):
                        return source[name]
            return None

        timeout = pick("httpTimeoutSeconds", "http_timeout")
        verify = pick("verifyTls", "verify_tls")
        return cls(
            endpoint=str(pick("endpoint") or ""),
            token_id=pick("tokenId", "token_id"),
            token_secret=pick("tokenSecret", "token_secret"),
            username=pick("username"),
            password=pick("password"),
            allow_password_login=bool(pick("allowPasswordLogin", "allow_password_login") or False),
            verify_tls=True if verify is None else _truthy(verify),
            ca_bundle=pick("caBundle", "ca_bundle"),
            http_timeout=float(timeout) if timeout is not None else DEFAULT_HTTP_TIMEOUT,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConnectionSettings | None:
        """Build from PROXMOX_* environment variables, or None when no endpoint is set."""
        env = os.environ if env is None else env
        if not env.get(ENV_ENDPOINT):
            return None
        return cls.from_mapping(
            {
                "endpoint": env[ENV_ENDPOINT],
                "tokenId": env.get(ENV_TOKEN_ID),
                "caBundle": env.get(ENV_CA_BUNDLE),
                "verifyTls": env.get(ENV_VERIFY_TLS),
            },
            {"tokenSecret": env.get(ENV_TOKEN_SECRET)},
        )


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")
