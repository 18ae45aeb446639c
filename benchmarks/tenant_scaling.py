"""Benchmark: how building the program scales with the number of tenants.

Run: .venv/bin/python -m benchmarks.tenant_scaling [--repeat 3] [--mode render|brought-in]

For N = 1, 10, 50 and 100 tenants generated from one base stack (``tests/components/tenants/test_tenant.py``:
each tenant with its own VLAN, worker network, pod and service CIDRs and one 2-VM pool), the whole
``Platform`` is constructed under pulumi mocks with the ``tools.recording`` monitor: config validation
(preflight included), every component, every resource registration. ``--mode render`` (default) is the
local stack's shape (management cluster on VMs, manifests rendered, every tenant object including the
Kube-OVN Subnet); ``--mode brought-in`` is a live program on a management cluster you bring (each tenant's
admin kubeconfig is read back, no Kube-OVN). The kubeadm-over-SSH path is not built: its command outputs
cannot be mocked generically. Printed per N, all measured in this
one run: wall time (best of ``--repeat``), time per tenant, resources registered, resources per tenant,
and both ratios against N=1. Preflight's checks are pairwise over CIDRs and VLANs, so its share grows
quadratically; the "config" column isolates it.

This is what a ``pulumi preview`` spends in the program itself, not in the engine or the providers: no
network, no diffing. The time per tenant staying flat means the program adds a constant cost per
tenant; the resource count per tenant staying flat means no tenant adds objects to another one.
"""

from __future__ import annotations

import argparse
import gc
import time
from dataclasses import dataclass

from config import load_stack_config
from tests.components.tenants.test_tenant import build_platform, external, render, stack_raw

SIZES = (1, 10, 50, 100)


@dataclass(frozen=True)
class Sample:
    """One measurement."""

    tenants: int
    seconds: float
    config_seconds: float
    resources: int

    @property
    def per_tenant(self) -> float:
        """Seconds per tenant."""
        return self.seconds / self.tenants

    @property
    def resources_per_tenant(self) -> float:
        """Registered resources per tenant (platform resources included)."""
        return self.resources / self.tenants


def measure(tenants: int, repeat: int, mode: str) -> Sample:
    """Build the platform with ``tenants`` tenants ``repeat`` times; keep the fastest run."""
    raw = stack_raw(count=tenants)
    raw = render(raw) if mode == "render" else external(raw)
    best, best_config, resources = float("inf"), float("inf"), 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        load_stack_config(raw)
        best_config = min(best_config, time.perf_counter() - start)
        start = time.perf_counter()
        run = build_platform(raw)
        best = min(best, time.perf_counter() - start)
        resources = len(run.rec.registrations)
        built = sum(1 for r in run.rec.registrations if r.type == "platform:tenant:Tenant")
        assert built == tenants, f"expected {tenants} tenants, built {built}"
    return Sample(tenants=tenants, seconds=best, config_seconds=best_config, resources=resources)


def main() -> None:
    """Measure every size and print the table with ratios against N=1."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tenant_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts (default 3)")
    parser.add_argument("--mode", choices=("render", "brought-in"), default="render")
    args = parser.parse_args()
    measure(1, 1, args.mode)  # warm-up: imports, schema caches
    samples = [measure(n, args.repeat, args.mode) for n in SIZES]
    print(f"Platform construction under mocks, mode {args.mode}, best of {args.repeat}\n")
    base = samples[0]
    header = (
        f"{'tenants':>7} {'build s':>9} {'config s':>9} {'ms/tenant':>10} {'x N=1':>7} {'marginal ms':>11} "
        f"{'resources':>9} {'res/tenant':>10} {'x N=1':>7} {'marginal res':>12}"
    )
    print(header)
    print("-" * len(header))
    for s in samples:
        more = s.tenants - 1
        extra = (s.resources - base.resources) / more if more else float("nan")
        extra_ms = 1000 * (s.seconds - base.seconds) / more if more else float("nan")
        print(
            f"{s.tenants:>7} {s.seconds:>9.3f} {s.config_seconds:>9.3f} {1000 * s.per_tenant:>10.1f} "
            f"{s.per_tenant / base.per_tenant:>7.2f} {extra_ms:>11.1f} {s.resources:>9} "
            f"{s.resources_per_tenant:>10.1f} {s.resources_per_tenant / base.resources_per_tenant:>7.2f} {extra:>12.1f}"
        )
    print(
        "\nms/tenant and res/tenant include the platform's fixed part (management cluster, charts, providers), so "
        "their ratios fall as N grows;\nmarginal = (value(N) - value(1)) / (N - 1): what one more tenant costs."
    )


if __name__ == "__main__":
    main()
