"""Preview unknowns as the dynamic-provider host delivers them (the one place that knows their shapes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc


def has_unknown(value: Any) -> bool:
    """True if a preview left any part of the value unknown.

    The dynamic-provider host hands unknowns over as ``pulumi.output.Unknown`` instances (the
    deserializer keeps them during previews) or, in older paths, as the ``rpc.UNKNOWN`` sentinel string.
    """
    if isinstance(value, Unknown):
        return True
    if isinstance(value, str):
        return value == rpc.UNKNOWN
    if isinstance(value, Mapping):
        return any(has_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_unknown(v) for v in value)
    return False
