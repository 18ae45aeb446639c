"""Proxmox VE resource pools over ProxmoxClient: create, read, update the comment, delete.

Plain functions and classes, no pulumi import. A pool groups VMs (and storages) so that one ACL entry
on ``/pool/<poolid>`` covers all of them: the platform's VMs, its templates, one pool per tenant.

Endpoints: ``POST /pools`` (``poolid``, ``comment``) creates. Reads, updates and deletes use the
query form ``GET|PUT|DELETE /pools?poolid=<id>`` that PVE 8.1 introduced (PVE 9 keeps it), because a
nested pool id (``parent/child``) cannot be written into the older ``/pools/{poolid}`` path. PVE 8.0
therefore is not supported here.

Rules kept by this module:

* a pool that **already exists** on create is adopted only if its comment is identical; otherwise
  :class:`PoolConflictError` says what differs (the same contract as ``providers/proxmox/access.py``);
* a pool is **deleted only when empty**: its members are read first and named in
  :class:`PoolNotEmptyError`, rather than sending a DELETE that PVE refuses with an HTTP 500 (which
  the client would classify as transient and retry for nothing);
* pool membership of VMs is not managed here: VMs join a pool when they are created or cloned with
  ``pool=`` (``ProxmoxVm``, ``ProxmoxTemplate``, CAPMOX), which is what the pool ACLs rely on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import ProxmoxAlreadyExistsError, ProxmoxError, ProxmoxNotFoundError
from providers.proxmox.wire import plain_numbers

# pve-poolid: up to three '/'-separated levels of letters, digits, '.', '-', '_'; a level starts with
# a letter (pve-access-control refuses "pool name must start with a letter" at creation).
_LEVEL = r"[A-Za-z][A-Za-z0-9._-]*"
POOL_ID = re.compile(rf"{_LEVEL}(?:/{_LEVEL}){{0,2}}")
MAX_POOL_ID = 64
MAX_COMMENT = 4096


class PoolSpecError(ValueError):
    """Inputs of a pool that Proxmox VE would refuse; ``problems`` are (field, reason) pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("invalid pool: " + "; ".join(f"{name}: {reason}" for name, reason in self.problems))


class PoolConflictError(ProxmoxAlreadyExistsError):
    """The pool already exists in Proxmox and differs from the one declared."""


class PoolNotEmptyError(ProxmoxError):
    """The pool still has members (or nested pools); Proxmox refuses to delete it."""


def check_poolid(poolid: Any) -> str:
    """A pool id as PVE accepts it; ValueError naming the value otherwise."""
    if not isinstance(poolid, str) or not POOL_ID.fullmatch(poolid):
        raise ValueError(
            f"{poolid!r} is not a pool id: letters, digits, '.', '-' and '_', starting with a letter; "
            "nested pools as 'parent/child' (at most 3 levels)"
        )
    if len(poolid) > MAX_POOL_ID:
        raise ValueError(f"pool id {poolid!r} is longer than {MAX_POOL_ID} characters")
    return poolid


@dataclass(frozen=True)
class PoolSpec:
    """A pool as declared: its id and comment."""

    poolid: str
    comment: str = ""

    @classmethod
    def from_inputs(cls, inputs: Mapping[str, Any]) -> PoolSpec:
        """Validate resource inputs; PoolSpecError lists every problem."""
        inputs = plain_numbers(inputs)
        problems: list[tuple[str, str]] = []
        poolid = inputs.get("poolid")
        try:
            check_poolid(poolid)
        except ValueError as exc:
            problems.append(("poolid", str(exc)))
        comment = inputs.get("comment")
        if comment is None:
            comment = ""
        if not isinstance(comment, str):
            problems.append(("comment", f"expected a string, got {comment!r}"))
        elif len(comment) > MAX_COMMENT:
            problems.append(("comment", f"at most {MAX_COMMENT} characters"))
        if problems:
            raise PoolSpecError(problems)
        return cls(str(poolid), str(comment))

    def to_inputs(self) -> dict[str, Any]:
        """Canonical inputs (what check() returns and diff() compares)."""
        return {"poolid": self.poolid, "comment": self.comment}


@dataclass(frozen=True)
class PoolMember:
    """One member of a pool, as ``GET /pools?poolid=`` lists it."""

    id: str
    """``qemu/<vmid>``, ``lxc/<vmid>`` or ``storage/<node>/<storage>``."""
    type: str
    """``qemu``, ``lxc`` or ``storage``."""
    vmid: int | None = None
    """The guest's VMID (guests only)."""
    node: str | None = None
    """The node the guest runs on, or the node the storage was listed for."""


@dataclass(frozen=True)
class Pool:
    """A pool as Proxmox reports it."""

    poolid: str
    comment: str
    members: tuple[PoolMember, ...] = ()

    @property
    def vmids(self) -> tuple[int, ...]:
        """VMIDs of the guests in the pool, sorted."""
        return tuple(sorted(m.vmid for m in self.members if m.vmid is not None))


def parse_pool(data: Any) -> Pool:
    """A pool from the answer of ``GET /pools?poolid=`` (a one-item list) or ``GET /pools/{poolid}``."""
    if isinstance(data, list):
        if len(data) != 1:
            raise ProxmoxError(f"expected one pool in the answer, got {len(data)}")
        data = data[0]
    if not isinstance(data, Mapping) or not isinstance(data.get("poolid"), str):
        raise ProxmoxError(f"unexpected answer for a pool: {type(data).__name__}")
    members: list[PoolMember] = []
    for row in data.get("members") or []:
        if not isinstance(row, Mapping):
            continue
        vmid = row.get("vmid")
        members.append(
            PoolMember(
                id=str(row.get("id", "")),
                type=str(row.get("type", "")),
                vmid=int(vmid) if vmid is not None else None,
                node=str(row["node"]) if row.get("node") is not None else None,
            )
        )
    return Pool(poolid=data["poolid"], comment=str(data.get("comment") or ""), members=tuple(members))


class PoolApi:
    """Create, read, update and delete resource pools through one client."""

    def __init__(self, client: ProxmoxClient) -> None:
        self.client = client

    def list_pools(self) -> dict[str, str]:
        """Every pool the caller may see (Pool.Audit), as poolid -> comment."""
        rows = self.client.get("/pools") or []
        return {str(r["poolid"]): str(r.get("comment") or "") for r in rows if isinstance(r, Mapping)}

    def get(self, poolid: str) -> Pool | None:
        """The pool with its members, or None if it does not exist (``GET /pools?poolid=``)."""
        check_poolid(poolid)
        try:
            data = self.client.get("/pools", poolid=poolid)
        except ProxmoxNotFoundError:
            return None
        return parse_pool(data)

    def create(self, spec: PoolSpec) -> bool:
        """Create the pool; True if an identical pool already existed and was adopted."""
        try:
            self.client.post("/pools", poolid=spec.poolid, comment=spec.comment or None)
        except ProxmoxAlreadyExistsError:
            existing = self.get(spec.poolid)
            if existing is not None and existing.comment == spec.comment:
                return True
            found = f"comment {existing.comment!r}" if existing is not None else "not visible to this token"
            raise PoolConflictError(
                f"pool {spec.poolid} already exists and differs ({found}, declared {spec.comment!r}); "
                "import it, change its comment to match, or pick another poolid",
                method="POST",
                path="/pools",
            ) from None
        return False

    def update(self, spec: PoolSpec) -> None:
        """Set the comment (``PUT /pools poolid= comment=``); members are left alone."""
        self.client.put("/pools", poolid=spec.poolid, comment=spec.comment)

    def delete(self, poolid: str) -> bool:
        """Delete an empty pool; False if it was already gone, PoolNotEmptyError if it has members."""
        pool = self.get(poolid)
        if pool is None:
            return False
        nested = sorted(p for p in self.list_pools() if p.startswith(poolid + "/"))
        if pool.members or nested:
            what = [*(m.id for m in pool.members), *(f"pool {p}" for p in nested)]
            raise PoolNotEmptyError(
                f"pool {poolid} is not empty ({', '.join(what)}): remove or move its members first. "
                "Resources that join the pool should depend on it, so that Pulumi deletes them before it",
                method="DELETE",
                path="/pools",
            )
        try:
            self.client.delete("/pools", poolid=poolid)
        except ProxmoxNotFoundError:
            return False
        return True


__all__ = [
    "POOL_ID",
    "Pool",
    "PoolApi",
    "PoolConflictError",
    "PoolMember",
    "PoolNotEmptyError",
    "PoolSpec",
    "PoolSpecError",
    "check_poolid",
    "parse_pool",
]
