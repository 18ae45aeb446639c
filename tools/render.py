"""Render the Kubernetes side of a stack to YAML files, without a cluster and without the kubernetes plugin.

    python -m tools.render --stack local            # writes to the stack's localRender directory

The program's own components run under Pulumi mocks with the stack's configuration; every Kubernetes
object they register is written as a manifest, and every Helm chart as a descriptor (chart, version,
repository, namespace and values). This is the local stack's render path: the Pulumi kubernetes plugin
cannot be built offline here, so ``pulumi up`` on that stack creates the Proxmox side and this command
writes what would be applied to the management cluster.

Secrets are never written: a value that is a Pulumi secret appears as ``<redacted: secret>``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockResourceArgs

from providers.proxmox.wire import plain_numbers
from tools.recording import CHART, RELEASE, Recording, RecordingMocks, RecordingMonitor

PROJECT = "proxmox-k8s-platform"
REDACTED = "<redacted: secret>"
DYNAMIC = "pulumi-python:dynamic:Resource"


def redact(value: Any) -> Any:
    """The value with every Pulumi secret replaced by a marker."""
    if rpc.is_rpc_secret(value):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return plain_numbers(value)


class RenderMocks(RecordingMocks):
    """Echo inputs; give dynamic Proxmox resources the outputs later components read."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        """Echo inputs, adding placeholder token outputs (the real ones exist only after ``pulumi up``)."""
        rid, state = super().new_resource(args)
        if args.typ == DYNAMIC and "tokenid" in state and "userid" in state:
            state.setdefault("full_tokenid", f"{state['userid']}!{state['tokenid']}")
            state.setdefault("value", REDACTED)
        return rid, state


def stack_config(stack: str, root: Path) -> tuple[dict[str, str], list[str]]:
    """The stack's config as the engine passes it to a program (secrets as placeholders), and the secret keys."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise SystemExit(
            f"no stack file {path.name}: known stacks are {sorted(p.stem[7:] for p in root.glob('Pulumi.*.yaml'))}"
        )
    data = yaml.safe_load(path.read_text()) or {}
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = REDACTED
            secret_keys.append(full)
        else:
            config[full] = value if isinstance(value, str) else json.dumps(value)
    return config, secret_keys


def record_stack(stack: str, root: Path) -> Recording:
    """Run the program's Platform under mocks with the stack's config and record what it registers."""
    import asyncio

    from components.platform import Platform, PlatformArgs
    from config import read_stack_config, read_stack_secrets

    config, secret_keys = stack_config(stack, root)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = RenderMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(config, secret_keys)
    try:

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def program() -> None:
            cfg = read_stack_config(pulumi.Config())
            Platform("platform", PlatformArgs(config=cfg, secrets=read_stack_secrets(pulumi.Config(), cfg)))

        program()
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return monitor.recording


def _file_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-").lower() + ".yaml"


def write_manifests(recording: Recording, out: Path) -> Counter[str]:
    """Write every Kubernetes object and chart descriptor; return counts by kind."""
    if out.exists():
        shutil.rmtree(out)
    counts: Counter[str] = Counter()
    for reg in recording.registrations:
        if not reg.type.startswith("kubernetes:") or reg.type.startswith("pulumi:providers"):
            continue
        body = redact(reg.raw_inputs)
        if reg.type in (CHART, RELEASE):
            values = body.get("values") or {}
            descriptor = {
                "chart": body.get("chart") or body.get("name"),
                "version": body.get("version"),
                "repository": (body.get("repositoryOpts") or {}).get("repo"),
                "namespace": body.get("namespace"),
                "values": values,
            }
            target = out / "charts" / _file_name(reg.name)
            document: dict[str, Any] = descriptor
            counts["HelmChart"] += 1
        else:
            if not reg.custom:
                continue
            metadata = dict(body.get("metadata") or {})
            metadata.setdefault("name", reg.object_name)
            document = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "metadata": metadata}
            document.update({k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")})
            namespace = str(metadata.get("namespace") or "_cluster")
            target = out / namespace / _file_name(str(document["kind"]), str(metadata["name"]))
            counts[str(document["kind"])] += 1
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(document, sort_keys=False))
    return counts


def main() -> None:
    """Command line: render one stack."""
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="local")
    parser.add_argument("--out", help="directory (default: the stack's localRender key)")
    args = parser.parse_args()
    root = Path.cwd()
    config, _ = stack_config(args.stack, root)
    out = args.out or config.get(f"{PROJECT}:localRender")
    if not out:
        raise SystemExit(f"stack {args.stack} sets no localRender directory; pass --out")
    counts = write_manifests(record_stack(args.stack, root), root / out)
    total = sum(counts.values())
    print(f"rendered {total} objects to {out}/: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
