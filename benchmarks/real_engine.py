"""Benchmark: the real engine on the local stack, in one run on this machine.

Run: .venv/bin/python -m benchmarks.real_engine          (needs ../shared beside the checkout)

Prints, each measured in this run unless marked "recorded":

* toolchains: the cold build time each cache recorded when it was built (a cold build takes
  13-35 min on two cores, so it is read from the caches' VERSIONS files, "recorded"), and a warm call
  of each script now (cache hit), with the ratio;
* the local API server: start to ``/readyz`` (fresh PKI, empty etcd), the CRD preload, and the
  kube-apiserver's RSS with the preloaded CRDs;
* ``make up`` wall time on this warm machine, from a stopped local stack (``make down`` first), and
  a second ``make up`` on the deployed stack;
* a no-op ``pulumi preview`` of the deployed local stack, and its ratio to ``make up``.

The local stack is left deployed (``make down`` removes it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import kube_api
from tools.kube_api import LocalKubeApi, rss_bytes

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "proxmox-k8s-platform"


def timed(argv: list[str]) -> tuple[float, str]:
    """Run ``argv`` in the checkout; return its wall time and stdout; fail loudly if it fails."""
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    took = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took, proc.stdout


def recorded_seconds(pattern: str, files: list[Path]) -> float | None:
    """The first number matched by ``pattern`` in the caches' VERSIONS files."""
    for file in files:
        match = re.search(pattern, file.read_text())
        if match:
            return float(match.group(1))
    return None


def toolchains() -> list[str]:
    """Cold (recorded) and warm (now) toolchain times."""
    pulumi_versions = sorted(CACHE.glob("toolchain/pulumi-*/VERSIONS"))
    kube_versions = sorted(CACHE.glob("kube-toolchain/*/VERSIONS"))
    cold_cli = recorded_seconds(r"cli_build_seconds: (\d+)", pulumi_versions)
    cold_plugin = recorded_seconds(r"plugin kubernetes: .* built in (\d+)s", pulumi_versions)
    cold_kube = recorded_seconds(r"(?:total|build)_seconds: (\d+)", kube_versions)
    warm_pulumi, _ = timed(["scripts/pulumi-toolchain.sh"])
    warm_kube, _ = timed(["scripts/kube-toolchain.sh"])
    cold_pulumi = (cold_cli or 0) + (cold_plugin or 0)
    lines = [
        f"  pulumi CLI + kubernetes plugin: cold {cold_pulumi:.0f} s (recorded: CLI {cold_cli}, plugin {cold_plugin}),"
        f" warm {warm_pulumi:.2f} s, cold/warm {cold_pulumi / warm_pulumi:.0f}x",
        f"  etcd + kube-apiserver + kcm:     cold {cold_kube} s (recorded), warm {warm_kube:.2f} s"
        + (f", cold/warm {cold_kube / warm_kube:.0f}x" if cold_kube else ""),
    ]
    return lines


def api_server() -> list[str]:
    """Start to ready, CRD preload and RSS of a fresh local API server."""
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
        start = time.monotonic()
        api = LocalKubeApi(Path(tmp), progress=lambda _m: None).start()
        try:
            ready = time.monotonic() - start
            assert api.kubeconfig is not None
            started = time.monotonic()
            count = len(kube_api.preload_crds(api.kubeconfig, progress=lambda _m: None))
            preload = time.monotonic() - started
            apiserver = next(p for p in api.processes() if p.name == "kube-apiserver")
            rss = (rss_bytes(apiserver.pid) or 0) / 2**20
        finally:
            api.stop()
    return [
        f"  start to /readyz {ready:.1f} s; preload of {count} CRDs {preload:.1f} s; kube-apiserver RSS {rss:.0f} MiB",
    ]


def local_stack() -> list[str]:
    """``make up`` from a stopped stack, again on the deployed one, and a no-op preview."""
    timed(["make", "down"])
    first, out = timed(["make", "up"])
    applied = re.search(r"applied and read back: (\d+) of (\d+)", out)
    second, _ = timed(["make", "up"])
    preview, _ = timed(["scripts/local-stack.sh", "preview"])
    objects = f"{applied.group(1)} of {applied.group(2)} objects" if applied else "objects: see make up"
    return [
        f"  make up from a stopped stack {first:.0f} s ({objects} read back)",
        f"  make up on the deployed stack {second:.0f} s ({second / first:.2f}x the first)",
        f"  no-op pulumi preview {preview:.0f} s ({preview / first:.2f}x make up)",
    ]


def main() -> int:
    """Print every figure of one run."""
    print("toolchains:")
    print("\n".join(toolchains()), flush=True)
    print("local API server:")
    print("\n".join(api_server()), flush=True)
    print("local stack (warm machine):")
    print("\n".join(local_stack()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
