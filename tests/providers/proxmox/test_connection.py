"""Connection settings and the provider's per-process configuration (no network)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from providers.dynamic import runtime
from providers.proxmox.connection import ConnectionConfigError, ConnectionSettings


def settings(**overrides: object) -> ConnectionSettings:
    base: dict[str, object] = {"endpoint": "https://pve.example:8006", "token_id": "p@pve!iac", "token_secret": "s"}
    base.update(overrides)
    return ConnectionSettings(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"endpoint": "http://pve.example:8006"}, "endpoint"),
        ({"endpoint": "pve.example"}, "endpoint"),
        ({"token_id": "no-realm"}, "token_id"),
        ({"token_secret": None}, "token_secret"),
        ({"token_id": None, "token_secret": None}, "token_id/token_secret"),
        ({"http_timeout": 5}, "http_timeout"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
        (
            {"token_id": None, "token_secret": None, "allow_password_login": True, "username": "root@pam"},
            "username/password",
        ),
    ],
)
def test_bad_settings_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConnectionConfigError, match=field.replace("/", "/")):
        settings(**overrides)


def test_password_login_needs_explicit_opt_in() -> None:
    with pytest.raises(ConnectionConfigError, match="allow_password_login"):
        settings(token_id=None, token_secret=None, username="root@pam", password="x")
    ok = settings(token_id=None, token_secret=None, username="root@pam", password="x", allow_password_login=True)
    assert ok.principal == "root@pam"


def test_secrets_never_appear_in_repr() -> None:
    text = repr(settings(token_secret="very-secret-value"))
    assert "very-secret-value" not in text and "p@pve!iac" in text


def test_tls_verification_is_on_by_default() -> None:
    assert settings().verify is True
    assert settings(verify_tls=False).verify is False


def test_config_reads_secrets_and_writes_pem_ca_privately(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    config = {
        "proxmox": json.dumps(
            {
                "endpoint": "https://pve.example:8006",
                "tokenId": "p@pve!iac",
                "caBundle": pem,
                "maxConcurrentClonesPerNode": 3,
            }
        ),
        "proxmoxTokenSecret": "tok",
    }
    parsed, limit = runtime.settings_from_config(config.get)
    assert parsed is not None and limit == 3
    assert parsed.token_secret == "tok"
    assert parsed.ca_bundle is not None and Path(parsed.ca_bundle).read_text() == pem
    assert os.stat(parsed.ca_bundle).st_mode & 0o077 == 0


def test_relative_ca_path_is_resolved_against_the_project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ca.pem").write_text("x")
    monkeypatch.chdir(tmp_path)
    assert runtime.ca_bundle_file("ca.pem") == str(tmp_path / "ca.pem")


def test_unconfigured_provider_says_which_keys_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("PROXMOX_")]:
        monkeypatch.delenv(key)
    runtime.configure(None)
    with pytest.raises(ConnectionConfigError, match="proxmoxTokenSecret"):
        runtime.client()
