"""The local control plane's binaries for tests: built on demand by scripts/kube-toolchain.sh, cached."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tools.kube_api import BIN_ENV, BINARIES

REPO = Path(__file__).resolve().parents[2]

LOCAL_KUBECONFIG = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": "https://127.0.0.3:6443"}}],
        "users": [{"name": "admin", "user": {"token": "placeholder"}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
        "current-context": "local",
    }
)
"""A kubeconfig for a cluster on 127.0.0.3 (what the local stack is given), for runs under mocks."""


def kube_binaries() -> Path:
    """The bin dir of scripts/kube-toolchain.sh (a cold build takes ~10 min); skip with the reason if it fails."""
    given = os.environ.get(BIN_ENV)
    if given and all(Path(given, name).exists() for name in BINARIES):
        return Path(given)
    proc = subprocess.run(
        [str(REPO / "scripts" / "kube-toolchain.sh")], capture_output=True, text=True, check=False, timeout=3000
    )
    if proc.returncode != 0:
        pytest.skip(f"the local control plane could not be built: {proc.stderr.strip()[-800:]}")
    return Path(proc.stdout.strip())
