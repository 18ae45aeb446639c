"""Helpers for fault tests against fakepve: the no-orphan invariant, request counting, the simulator's loop."""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from providers.proxmox.client import ProxmoxClient
from providers.proxmox.errors import ProxmoxConnectionError
from providers.proxmox.vm_ops import VmState


def sim_vms(pve: Any) -> dict[int, Any]:
    """Non-template VMs in the simulator, by VMID."""
    return {vm.vmid: vm for vm in pve.vms if not vm.template}


def assert_accounted(pve: Any, *states: VmState, others: Iterable[int] = ()) -> None:
    """The no-orphan invariant: every non-template VM in the simulator is one the returned states name.

    ``states`` are what the operations under test returned (none after an error); ``others`` are VMIDs
    the test put there itself (foreign VMs), which must still exist untouched.
    """
    present = sim_vms(pve)
    expected = {state.vmid: state for state in states}
    assert len(expected) == len(states), f"two returned states share a VMID: {[s.vmid for s in states]}"
    foreign = set(others)
    unaccounted = sorted(set(present) - set(expected) - foreign)
    assert not unaccounted, (
        f"the simulator holds VMs no returned state accounts for: "
        f"{[(v, present[v].node, present[v].name, present[v].config.get('tags')) for v in unaccounted]}"
    )
    missing = sorted(set(expected) - set(present))
    assert not missing, f"returned states name VMs that do not exist: {missing}"
    for vmid, state in expected.items():
        assert present[vmid].node == state.node, f"VM {vmid} is on {present[vmid].node}, state says {state.node}"
    gone = sorted(foreign - set(present))
    assert not gone, f"foreign VMs were removed: {gone}"


def requests_matching(pve: Any, method: str, pattern: str, *, since: int = 0) -> list[tuple[str, str, bytes]]:
    """Requests the simulator saw (from index ``since``) with this method and a path matching ``pattern``."""
    rx = re.compile(pattern)
    return [r for r in pve.requests[since:] if r[0] == method and rx.search(r[1])]


def body_field(body: bytes, name: str) -> str | None:
    """One form field of a recorded request body."""
    from urllib.parse import parse_qs

    values = parse_qs(body.decode(), keep_blank_values=True).get(name)
    return values[0] if values else None


def sim_loop(pve: Any) -> asyncio.AbstractEventLoop:
    """The event loop the fakepve fixture serves ``pve`` on (its scenario coroutines must run there)."""
    for ref in gc.get_referrers(pve):
        loop = getattr(ref, "loop", None)
        if type(ref).__name__ == "_Serving" and isinstance(loop, asyncio.AbstractEventLoop):
            return loop
    server = getattr(pve.runner, "server", None)
    loop = getattr(server, "_loop", None)
    if isinstance(loop, asyncio.AbstractEventLoop):
        return loop
    raise RuntimeError("cannot find the event loop of the fakepve fixture")


def on_sim(pve: Any, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
    """Run a scenario coroutine (``pve.backup(...)``, ``pve.hold_config_lock(...)``) on the simulator's loop."""
    return asyncio.run_coroutine_threadsafe(coro, sim_loop(pve)).result(timeout)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.005)


def finished_tasks(pve: Any, ttype: str) -> list[dict[str, Any]]:
    """The simulator's finished tasks of one type (qmclone, qmconfig, qmshutdown, ...), oldest first."""
    return [t for t in pve.tasklog if t["type"] == ttype and t["status"] == "stopped"]


@dataclass
class Lose:
    """A rule for ``lose_answers``: requests whose answer never arrives.

    ``executed`` says whether the server ran the request before the answer was lost (a dropped response)
    or never saw it (a dropped request). ``when`` delays the rule until it returns True.
    """

    method: str
    pattern: str
    times: int = 1
    executed: bool = True
    when: Callable[[], bool] = lambda: True
    lost: int = 0


def lose_answers(monkeypatch: Any, client: ProxmoxClient, *rules: Lose) -> None:
    """Make ``client`` lose the answers of requests matching ``rules`` (path as the caller gave it)."""
    send = client._send

    def lossy(method: str, path: str, params: dict[str, Any]) -> Any:
        for rule in rules:
            if rule.lost < rule.times and method == rule.method and re.search(rule.pattern, path) and rule.when():
                rule.lost += 1
                if rule.executed:
                    send(method, path, params)
                raise ProxmoxConnectionError("connection dropped (test)", method=method, path=path)
        return send(method, path, params)

    monkeypatch.setattr(client, "_send", lossy)
