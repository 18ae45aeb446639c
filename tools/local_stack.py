"""The local stack: the whole program against a Proxmox simulator and a local Kubernetes API server.

    python -m tools.local_stack up      # what `make up` runs (after scripts/pulumi-env.sh set the CLI up)
    python -m tools.local_stack down    # what `make down` runs
    python -m tools.local_stack preview # a no-op preview of the deployed stack (fails on any change)

``up``, in phases, each timed:

1. the ``fakepve`` simulator on ``https://127.0.0.2:8006`` (``tools.simulator``), seeded with two nodes;
2. a local kube-apiserver with etcd and the namespace/garbage-collector controllers on 127.0.0.3
   (``tools.kube_api``; reused when it already serves), and the Cluster API providers' CRDs, which
   the CAPI operator would download at run time, preloaded as local scaffolding;
3. the stack's runtime config: ``Pulumi.local.yaml`` plus the API server's admin kubeconfig as the
   secret ``managementKubeconfig`` (the stack uses ``managementCluster.bootstrap: external``: the
   program creates the VMs, something else brings Kubernetes up, here the local API server), written
   to ``.local/stack/`` so the committed file never changes;
4. ``pulumi up --refresh`` (the simulator and the API server keep their state in memory or in
   ``.local``: after a restart, state must learn what is gone);
5. a summary read back from the simulator and the API server.

No kubelet or scheduler runs: Pods are stored, never started, so the stack sets
``managementCluster.awaitReadiness: false``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import yaml

from tools import kube_api, simulator
from tools.kube_inventory import by_kind, declared_objects, missing_objects

STACK: Final = "local"
REPO: Final = Path(__file__).resolve().parents[1]
RUNTIME_DIR: Final = Path(".local/stack")
KUBE_DIR: Final = Path(".local/kube")
SHARED_CHARTS: Final = REPO.parent / "shared" / "charts"
PROJECT: Final = "proxmox-k8s-platform"


class LocalStackError(RuntimeError):
    """A phase of the local stack failed; the message says which and why."""


class Phases:
    """Prints each phase as it starts and how long it took; keeps the timings for the summary."""

    def __init__(self) -> None:
        self.timings: list[tuple[str, float]] = []
        self.started = time.monotonic()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time one phase."""
        print(f"==> {name}", file=sys.stderr, flush=True)
        start = time.monotonic()
        yield
        took = time.monotonic() - start
        self.timings.append((name, took))
        print(f"    {name}: done in {took:.1f}s", file=sys.stderr, flush=True)

    def total(self) -> float:
        """Seconds since the first phase started."""
        return time.monotonic() - self.started


def pulumi(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the pulumi CLI for the local stack (the environment comes from scripts/pulumi-env.sh)."""
    proc = subprocess.run(
        ["pulumi", *args, "--stack", STACK, "--non-interactive"],
        text=True,
        capture_output=capture,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or "")[-2000:] if capture else ""
        raise LocalStackError(f"pulumi {' '.join(args)} failed ({proc.returncode}) {detail}".strip())
    return proc


def select_stack() -> None:
    """Select the local stack, creating it in the file backend the first time."""
    if pulumi("stack", "select", capture=True, check=False).returncode != 0:
        pulumi("stack", "init", capture=True)


def release_stale_lock() -> None:
    """Release a lock left by a killed pulumi whose process no longer runs on this host."""
    backend = Path(os.environ.get("PULUMI_BACKEND_URL", "").removeprefix("file://") or ".local/state")
    for lock in backend.glob(f".pulumi/locks/*/*/{STACK}/*.json"):
        data = json.loads(lock.read_text())
        pid, host = int(data.get("pid", 0)), str(data.get("hostname", ""))
        alive = True
        try:
            os.kill(pid, 0)
        except OSError:
            alive = False
        if host == socket.gethostname() and not alive:
            print(f"local-stack: releasing a stale lock left by pulumi pid {pid} (no longer running)", file=sys.stderr)
            pulumi("cancel", "--yes", capture=True)


def registered_nodes(stack_file: Path) -> list[kube_api.NodeRegistration]:
    """The management cluster's nodes as their kubelets would register them, from a stack file: the
    names and addresses the program gives the VMs (``plan_nodes``), control planes marked."""
    from components.management.cluster import CONTROL_PLANE, plan_nodes
    from config import load_stack_config
    from tools.stack_file import parse_stack_text

    sf = parse_stack_text(stack_file.read_text(), stack=STACK, project=PROJECT, path=stack_file)
    cfg = load_stack_config(sf.raw_config())
    allowed = set(cfg.management_nodes())
    planned = plan_nodes(
        cluster_name="mgmt",
        config=cfg.management_cluster,
        networks=cfg.networks,
        nodes=[n for n in cfg.nodes if n.name in allowed],
    )
    return [kube_api.NodeRegistration(n.name, n.address, n.role == CONTROL_PLANE) for n in planned]


def runtime_config(kubeconfig: Path) -> Path:
    """``.local/stack/Pulumi.local.yaml``: the committed stack file plus the secret kubeconfig."""
    RUNTIME_DIR.mkdir(parents=True, exist_ok=True)
    target = RUNTIME_DIR / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(Path(f"Pulumi.{STACK}.yaml").read_text())
    charts = document["config"].get(f"{PROJECT}:charts") or {}
    if charts.get("source") == "directory" and not (REPO / str(charts.get("directory", ""))).is_dir():
        raise LocalStackError(
            f"charts.directory {charts.get('directory')!r} not found: the local stack installs the pinned charts "
            "from the unpacked copies beside the checkout (../shared/charts); put them there, or set "
            "charts.source: repository in Pulumi.local.yaml on a machine that reaches the chart repositories"
        )
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    os.chmod(target, 0o600)
    subprocess.run(
        ["pulumi", "config", "set", "--secret", "--stack", STACK, "--config-file", str(target), "managementKubeconfig"],
        input=kubeconfig.read_text(),
        text=True,
        capture_output=True,
        check=True,
    )
    return target


def stack_outputs() -> dict[str, Any]:
    """The stack's outputs (secrets stay masked)."""
    text = pulumi("stack", "output", "--json", capture=True).stdout
    return dict(json.loads(text))


def exported_state() -> dict[str, Any]:
    """The stack's state as ``pulumi stack export`` prints it (secrets stay encrypted)."""
    return dict(json.loads(pulumi("stack", "export", capture=True).stdout))


def summary(outputs: dict[str, Any], state: dict[str, Any], kubeconfig: Path, phases: Phases) -> str:
    """What a platform engineer wants to see after ``make up``: VMs, the API, what landed, how long."""
    from kubernetes import config

    declared = declared_objects(state)
    client = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        missing = missing_objects(client, declared)
    finally:
        client.close()
    lines = ["", "Management cluster VMs (Proxmox simulator):", f"  {'name':<20}{'vmid':>8}  {'node':<8}{'ip':<16}"]
    for role in ("controlPlanes", "workers"):
        for vm in outputs.get(role) or []:
            name, vmid, node, ip = (str(vm.get(k, "?")) for k in ("name", "vmid", "node", "ip"))
            lines.append(f"  {name:<20}{vmid:>8}  {node:<8}{ip:<16}")
    pools = outputs.get("proxmoxPools") or {}
    if pools:
        lines.append("Proxmox pools: " + ", ".join(f"{k}={v}" for k, v in sorted(pools.items())))
    lines.append(f"Kubernetes API (local kube-apiserver): {outputs.get('managementApiEndpoint', '-')}")
    present = len(declared) - len(missing)
    lines.append(f"Kubernetes objects applied and read back: {present} of {len(declared)} declared")
    counts = by_kind(declared)
    top = ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    lines.append(f"  {top}")
    if missing:
        lines.append("  MISSING on the API server: " + "; ".join(str(m) for m in missing[:10]))
    lines.append(f"Kubeconfig: export KUBECONFIG={kubeconfig}")
    lines.append("Timings: " + "; ".join(f"{name} {took:.0f}s" for name, took in phases.timings))
    lines.append(f"Total: {phases.total():.0f}s")
    return "\n".join(lines)


def up() -> int:
    """Start the simulator and the API server, apply the stack, print the summary."""
    phases = Phases()
    with phases.phase("Proxmox simulator (fakepve) on 127.0.0.2:8006"):
        url = simulator.start(str(REPO), simulator.DEFAULT_HOST, simulator.DEFAULT_PORT)
        print(f"    {url}", file=sys.stderr)
    with phases.phase("Kubernetes API server (etcd + kube-apiserver + controllers) on 127.0.0.3"):
        kubeconfig, _ = kube_api.ensure(REPO / KUBE_DIR, kube_api.DEFAULT_HOST)
    with phases.phase("Cluster API provider CRDs (local scaffolding, ../shared/reference/crds)"):
        try:
            kube_api.preload_crds(kubeconfig)
        except kube_api.CrdsNotFoundError as exc:
            raise LocalStackError(f"{exc}: the CAPI objects of the stack cannot be applied without them") from None
    with phases.phase("stack config (.local/stack/Pulumi.local.yaml with the kubeconfig as a secret)"):
        select_stack()
        release_stale_lock()
        config_file = runtime_config(kubeconfig)
    with phases.phase("nodes registered as their kubelets would (local scaffolding)"):
        kube_api.register_nodes(kubeconfig, registered_nodes(config_file))
    with phases.phase("pulumi up --refresh"):
        pulumi("up", "--yes", "--skip-preview", "--refresh", "--config-file", str(config_file))
    with phases.phase("reading back from the API server"):
        text = summary(stack_outputs(), exported_state(), kubeconfig, phases)
    print(text)
    return 0


def down() -> int:
    """Destroy the stack, then stop the API server and the simulator."""
    phases = Phases()
    with phases.phase("Proxmox simulator"):
        simulator.start(str(REPO), simulator.DEFAULT_HOST, simulator.DEFAULT_PORT)
    with phases.phase("Kubernetes API server"):
        kubeconfig, _ = kube_api.ensure(REPO / KUBE_DIR, kube_api.DEFAULT_HOST)
    with phases.phase("pulumi destroy"):
        select_stack()
        release_stale_lock()
        config_file = runtime_config(kubeconfig)
        pulumi("destroy", "--yes", "--skip-preview", "--config-file", str(config_file))
    with phases.phase("stopping the API server and the simulator"):
        kube_api.stop(REPO / KUBE_DIR)
        simulator.stop(str(REPO))
        shutil.rmtree(RUNTIME_DIR, ignore_errors=True)
    print(f"local stack destroyed; simulator and API server stopped ({phases.total():.0f}s)")
    return 0


def preview() -> int:
    """``pulumi preview --expect-no-changes`` of the deployed local stack (exit 1 when something would change)."""
    phases = Phases()
    with phases.phase("Proxmox simulator and Kubernetes API server"):
        simulator.start(str(REPO), simulator.DEFAULT_HOST, simulator.DEFAULT_PORT)
        kubeconfig, _ = kube_api.ensure(REPO / KUBE_DIR, kube_api.DEFAULT_HOST)
    with phases.phase("pulumi preview --expect-no-changes"):
        select_stack()
        config_file = runtime_config(kubeconfig)
        pulumi("preview", "--expect-no-changes", "--diff", "--config-file", str(config_file))
    print(f"local stack: no changes ({phases.total():.0f}s)")
    return 0


def guarded(action: Callable[[], int]) -> int:
    """Run ``action``; turn a failed phase into one clear line and exit status 1."""
    try:
        return action()
    except (LocalStackError, kube_api.KubeApiError, subprocess.CalledProcessError) as exc:
        print(f"local-stack: error: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Command line: up | down | preview."""
    parser = argparse.ArgumentParser(prog="python -m tools.local_stack", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "preview"])
    args = parser.parse_args(argv)
    os.chdir(REPO)
    return guarded({"up": up, "down": down, "preview": preview}[args.command])


if __name__ == "__main__":
    raise SystemExit(main())
