"""ProxmoxPool: a Pulumi dynamic resource for a Proxmox VE resource pool.

Written like ``providers/dynamic/vm.py``: the provider class is importable and holds no state, so dill
pickles it *by reference* and never captures a credential; the connection comes from the stack config
in ``configure()`` (``providers/dynamic/runtime.py``). All Proxmox work is in ``providers/proxmox/pools.py``.

check() validates locally (no Proxmox call); diff() is explicit: a new ``poolid`` replaces the pool, a
new ``comment`` updates it in place. Delete refuses a pool that still has members, naming them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import pulumi
from pulumi import dynamic

from providers.dynamic import runtime
from providers.dynamic.base import ProxmoxProvider
from providers.dynamic.inputs import has_unknown as _has_unknown
from providers.proxmox.pools import PoolApi, PoolSpec, PoolSpecError

log = logging.getLogger(__name__)

REPLACE_FIELDS = ("poolid",)
INPUT_FIELDS = ("poolid", "comment")


def _api() -> PoolApi:
    client, _ = runtime.client()
    return PoolApi(client)


def _inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    return {k: props.get(k) for k in INPUT_FIELDS}


class ProxmoxPoolProvider(ProxmoxProvider):
    """CRUD of resource pools for the Pulumi engine."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dynamic.CheckResult:
        """Validate the pool id and comment without calling Proxmox."""
        inputs = _inputs(news)
        if _has_unknown(inputs):
            return dynamic.CheckResult(inputs, [])
        try:
            spec = PoolSpec.from_inputs(inputs)
        except PoolSpecError as exc:
            return dynamic.CheckResult(inputs, [dynamic.CheckFailure(n, r) for n, r in exc.problems])
        return dynamic.CheckResult(spec.to_inputs(), [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        """A new poolid replaces the pool (delete first: the id is the identity); the comment changes in place."""
        new = _inputs(news)
        old = _inputs(olds)
        old["comment"] = old["comment"] or ""
        if not _has_unknown(new):
            new = PoolSpec.from_inputs(new).to_inputs()
        changed = [k for k in INPUT_FIELDS if _has_unknown(new[k]) or new[k] != old[k]]
        replaces = [k for k in changed if k in REPLACE_FIELDS]
        return dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        """Create the pool (adopting an identical existing one)."""
        spec = PoolSpec.from_inputs(props)
        adopted = _api().create(spec)
        log.info("ProxmoxPool %s %s", spec.poolid, "adopted (identical)" if adopted else "created")
        return dynamic.CreateResult(spec.poolid, {**spec.to_inputs(), "adopted": adopted})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        """Refresh or import (``import_="<poolid>"``): the comment Proxmox reports becomes the input."""
        pool = _api().get(id_)
        if pool is None:
            return dynamic.ReadResult(None, {})
        inputs = {"poolid": pool.poolid, "comment": pool.comment}
        adopted = bool(props.get("adopted")) or "adopted" not in props
        return dynamic.ReadResult(id_, {**inputs, "adopted": adopted}, inputs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.UpdateResult:
        """Set the comment."""
        spec = PoolSpec.from_inputs(news)
        _api().update(spec)
        return dynamic.UpdateResult({**spec.to_inputs(), "adopted": bool(olds.get("adopted"))})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Delete the pool if it is empty; a pool that is already gone is fine."""
        _api().delete(id_)


@dataclass
class ProxmoxPoolArgs:
    """Inputs of a ProxmoxPool.

    ``poolid``: letters, digits, ``.-_``, starting with a letter; ``parent/child`` for nested pools
    (the parent must exist: make the child depend on it). ``comment``: free text shown in the UI.
    """

    poolid: pulumi.Input[str]
    comment: pulumi.Input[str] = ""


class ProxmoxPool(dynamic.Resource):
    """A Proxmox VE resource pool. Outputs ``adopted`` when an identical pool existed before."""

    poolid: pulumi.Output[str]
    comment: pulumi.Output[str]
    adopted: pulumi.Output[bool]

    def __init__(self, name: str, args: ProxmoxPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {f.name: getattr(args, f.name) for f in fields(args)}
        props["adopted"] = None
        super().__init__(ProxmoxPoolProvider(), name, props, opts)


__all__ = ["ProxmoxPool", "ProxmoxPoolArgs", "ProxmoxPoolProvider"]
