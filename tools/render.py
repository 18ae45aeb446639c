"""Render the Kubernetes side of any stack to YAML, through the real engine, touching nothing real.

    python -m tools.render --stack dev                 # writes rendered/dev/
    python -m tools.render --stack prod --out /tmp/prod

The whole program runs through the real ``pulumi`` CLI in a scratch workspace (``tools.scratch``: its
own file backend and PULUMI_HOME, a copy of the program): its Proxmox side against a ``fakepve``
simulator seeded with the stack's nodes, storages, templates and token (``tools.simulator.seed_stack``),
its Kubernetes side with the kubernetes provider's render mode (``localRender``), so every chart is
templated by the provider's own Helm with the program's values. The stack's real Proxmox, cluster and
state are never contacted, and a render never depends on a bootstrap command having run (render mode
runs none). Helm's ``lookup`` (Kube-OVN uses it) and the provider's discovery of custom-resource scopes
need an API server even in render mode: an empty local one (``tools.kube_api``, with the reference CRDs
when they are beside the checkout) answers them, so lookups find nothing, as for a new cluster.

Charts come from the unpacked pinned copies beside the checkout (``../shared/charts``, or
``--charts DIR``) when present; otherwise from the stack's own ``charts`` setting (the repositories
need network access).

Secrets: the stack's ``secure:`` values are never read (their passphrase is not needed); the scratch
stack gets placeholders, and the simulator mints the controller tokens. The provider writes secret
values in plaintext, so every Secret's values are replaced by ``<redacted: secret>`` and every known
placeholder or token value is removed from every file; the run fails if one is left.
"""

from __future__ import annotations

import argparse
import base64
import secrets as pysecrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from config import load_stack_config, required_secret_keys
from tools.kube_api import LocalKubeApi, crds_dir, preload_crds
from tools.scratch import REPO, Cli, CliError, cli_env, copy_project, reap, toolchain_bin
from tools.simulator import ServedSimulator, seed_stack
from tools.stack_file import read_stack_file

REDACTED = "<redacted: secret>"
SHARED_CHARTS = REPO.parent / "shared" / "charts"
"""The pinned upstream charts, unpacked, kept beside the checkout (absent on a plain clone)."""


@dataclass
class RenderReport:
    """What one render wrote."""

    out: Path
    kinds: Counter[str]
    files: int
    phases: list[tuple[str, float]]
    charts_from: str


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(f"render: {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(phases: list[tuple[str, float]], name: str) -> Iterator[None]:
    """Time one phase and say when it starts and how long it took."""
    log(f"{name} ...")
    start = time.monotonic()
    yield
    took = time.monotonic() - start
    phases.append((name, took))
    log(f"{name}: {took:.1f}s")


def _documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def redact_secret(document: dict[str, Any]) -> dict[str, Any]:
    """A Secret with every value replaced by the marker; its keys stay, so the shape is reviewable."""
    keys = sorted({*(document.get("data") or {}), *(document.get("stringData") or {})})
    redacted = {k: v for k, v in document.items() if k not in ("data", "stringData")}
    if keys:
        redacted["stringData"] = dict.fromkeys(keys, REDACTED)
    return redacted


def scrub(root: Path, known: Iterable[str]) -> list[str]:
    """Redact every rendered file under ``root`` in place; return the files that still hold a known value."""
    values = sorted({v for v in known if len(v) >= 6}, key=len, reverse=True)
    encoded = [base64.b64encode(v.encode()).decode() for v in values]
    leaks = []
    for path in sorted(root.rglob("*.yaml")):
        documents = _documents(path)
        out = [redact_secret(d) if isinstance(d, dict) and d.get("kind") == "Secret" else d for d in documents]
        text = yaml.safe_dump_all(out, sort_keys=False)
        for value in values:
            text = text.replace(value, REDACTED)
        path.write_text(text)
        if any(v in text for v in (*values, *encoded)):
            leaks.append(str(path.relative_to(root)))
    return leaks


def kinds(root: Path) -> Counter[str]:
    """Objects per kind under ``root``."""
    found: Counter[str] = Counter()
    for path in root.rglob("*.yaml"):
        for document in _documents(path):
            if isinstance(document, dict) and "kind" in document:
                found[str(document["kind"])] += 1
    return found


def render_stack(stack: str, out: Path, charts_dir: Path | None, scratch: Path) -> RenderReport:
    """Run ``stack``'s program in render mode in ``scratch`` and write the scrubbed manifests to ``out``."""
    phases: list[tuple[str, float]] = []
    sf = read_stack_file(stack)
    raw = sf.raw_config()
    raw.pop("localRender", None)
    charts_from = "the stack's charts setting"
    if charts_dir is not None:
        raw["charts"] = {"source": "directory", "directory": str(charts_dir.resolve()), "installer": "chart"}
        charts_from = str(charts_dir)
    rendered = scratch / "rendered"
    raw["localRender"] = str(rendered)
    cfg = load_stack_config(raw)  # the stack's own preflight, before anything runs

    with phase(phases, "toolchain (pulumi CLI and kubernetes plugin)"):
        bin_dir = toolchain_bin(scratch / "home")
    token_secret = str(pysecrets.token_hex(16))
    placeholders = {key: f"render-placeholder-{key}-{pysecrets.token_hex(8)}" for key in sf.secure}
    placeholders |= {
        key: f"render-placeholder-{key}-{pysecrets.token_hex(8)}"
        for key in required_secret_keys(cfg)
        if key not in placeholders
    }
    placeholders["proxmoxTokenSecret"] = token_secret
    with phase(phases, f"simulator seeded with {stack}'s nodes, storages and templates"):
        sim = ServedSimulator(str(scratch))
        seed_stack(sim.pve, cfg, cfg.proxmox.token_id, token_secret)
    kube = LocalKubeApi(scratch / "kube", progress=log)
    try:
        with phase(phases, "an empty local API server for Helm's lookups and the provider's discovery"):
            kube.start()
            if crds_dir().is_dir():
                preload_crds(kube.kubeconfig or "", patterns=("*.yaml",), progress=log)
        raw["proxmox"] = {**raw["proxmox"], "endpoint": sim.pve.url, "caBundle": sim.cafile, "verifyTls": True}
        project = scratch / "project"
        copy_project(REPO, project)
        config = {f"{sf.project}:{key}": value for key, value in raw.items()}
        (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        env = cli_env(bin_dir, scratch, pysecrets.token_hex(16))
        # Render mode takes no kubeconfig; the provider's Helm then reads $KUBECONFIG for `lookup` and
        # discovery. Point it at the empty local server, never at whatever cluster the user has.
        env["KUBECONFIG"] = str(kube.kubeconfig)
        cli = Cli(project, env, stack)
        cli.run("stack", "init")
        for key, value in sorted(placeholders.items()):
            cli.run("config", "set", "--secret", key, value)
        with phase(phases, "pulumi up in render mode (scratch state)"):
            cli.run("up", "--yes", "--skip-preview", timeout=1800)
        minted = [v for k, v in sim.pve.apitokens.items() if k != cfg.proxmox.token_id]
    finally:
        kube.stop()
        sim.stop()
        reap(scratch)
    with phase(phases, "redacting secrets"):
        leaks = scrub(rendered, [*placeholders.values(), *minted])
    if leaks:
        raise SystemExit(f"render: secret values remain in {leaks}; nothing was written to {out}")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(rendered), out)
    files = sum(1 for _ in out.rglob("*.yaml"))
    return RenderReport(out=out, kinds=kinds(out), files=files, phases=phases, charts_from=charts_from)


def main(argv: list[str] | None = None) -> int:
    """Command line: render one stack."""
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="local", help="the stack file Pulumi.<stack>.yaml to render")
    parser.add_argument("--out", type=Path, help="output directory (default: rendered/<stack>)")
    parser.add_argument("--charts", type=Path, help="unpacked pinned charts (default: ../shared/charts if present)")
    args = parser.parse_args(argv)
    charts = args.charts or (SHARED_CHARTS if SHARED_CHARTS.is_dir() else None)
    if charts is None:
        log(f"{SHARED_CHARTS} not found: charts come from the stack's charts setting (needs their repositories)")
    out = args.out or REPO / "rendered" / args.stack
    with tempfile.TemporaryDirectory(prefix=f"render-{args.stack}-") as tmp:
        try:
            report = render_stack(args.stack, out.resolve(), charts, Path(tmp))
        except CliError as exc:
            print(exc, file=sys.stderr)
            return 1
    total = sum(report.kinds.values())
    print(f"rendered {total} objects of {args.stack} to {report.out} (charts from {report.charts_from}):")
    print("  " + ", ".join(f"{n} {k}" for k, n in sorted(report.kinds.items())))
    print("  " + "; ".join(f"{name} {took:.1f}s" for name, took in report.phases))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
