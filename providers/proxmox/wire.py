"""Normalisation of values as the Pulumi engine delivers them to a dynamic provider.

Inputs cross the engine as protobuf Structs, where every number is a double: ``0`` arrives as ``0.0``
and ``4096`` as ``4096.0``. Specs expect integers, so integral floats are turned back into ints (at any
depth) before validation; a real fraction stays a float and fails validation where an int is required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain_numbers(value: Any) -> Any:
    """A copy of ``value`` with every integral float (``4.0``) turned into an int (``4``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_numbers(v) for v in value]
    return value
