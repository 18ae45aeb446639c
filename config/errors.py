"""Shape errors in plain words: pydantic's validation errors as ConfigProblems with YAML key paths."""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping, Sequence
from types import NoneType, UnionType
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from config.base import PATTERN_HELP, ConfigProblem, format_problems

_SIMPLE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SENSITIVE = re.compile(r"token|secret|password|passphrase|kubeconfig", re.IGNORECASE)


class StackConfigError(ValueError):
    """Every problem of a stack configuration, raised at once."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__(format_problems(self.problems))


def format_path(loc: Sequence[int | str]) -> str:
    """Render a location tuple as a YAML key path: ``tenants[1].network.ipRange``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out:
            out = part
        elif _SIMPLE_KEY.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out or "<root>"


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional from a type annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, UnionType):
            members = [a for a in typing.get_args(annotation) if a is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class found by walking ``loc`` from ``root``, or None."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if part in (n, f.alias)),
                None,
            )
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is tuple and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _got(value: Any, path: str) -> str:
    if _SENSITIVE.search(path):
        return ""
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if isinstance(value, int | float):
        return f" (got {value})"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f" (got {shown!r})"
    if value is None:
        return " (got null)"
    return f" (got a {type(value).__name__})"


_SIMPLE_MESSAGES = {
    "string_too_long": "must be at most {max_length} characters long",
    "string_too_short": "must be at least {min_length} characters long",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "multiple_of": "must be a multiple of {multiple_of}",
    "too_short": "needs at least {min_length} entries",
    "too_long": "allows at most {max_length} entries",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "dict_type": "must be a mapping of names to entries",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "ip_v4_address": "must be an IPv4 address like 10.0.0.1",
    "ip_v4_network": "must be an IPv4 network in CIDR notation like 10.0.0.0/24",
}


def _describe(root: type[BaseModel], error: Mapping[str, Any], path: str, loc: Sequence[int | str]) -> str:
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    got = _got(error.get("input"), path)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        if parent is None:
            return "unknown key"
        allowed = _allowed_keys(parent)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown key{suggestion}; allowed keys here: {', '.join(allowed)}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        return PATTERN_HELP.get(pattern, f"must match the pattern {pattern}") + got
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "too_short" and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind in ("too_short", "too_long"):
        return _SIMPLE_MESSAGES[kind].format(**ctx)
    if kind in _SIMPLE_MESSAGES:
        return _SIMPLE_MESSAGES[kind].format(**ctx) + got
    return str(error["msg"]) + got


def problems_from_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[ConfigProblem]:
    """Convert pydantic's errors for ``root`` to ConfigProblems with camelCase YAML key paths."""
    errors = exc.errors(include_url=False)
    item_locs = {tuple(e["loc"][:i]) for e in errors for i in range(len(e["loc"]))}
    problems: list[ConfigProblem] = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in item_locs:
            continue  # pydantic also counts a list whose item failed as too short
        is_key = bool(loc) and loc[-1] == "[key]"
        if is_key:
            loc = loc[:-1]
        path = format_path(loc)
        message = _describe(root, error, path, loc)
        if is_key:
            message = f"invalid name: {message}"
        problems.append(ConfigProblem(path, message))
    return problems
