"""Reading the stack configuration from the Pulumi engine: the only module of this package that needs pulumi.

Every problem (unreadable keys, unknown keys, shape, preflight, missing secrets) is reported in one
``pulumi.RunError`` before any resource is registered.
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any

from config.base import ConfigProblem, format_problems
from config.errors import StackConfigError
from config.secrets import SECRET_KEYS, required_secret_keys
from config.stack import DOMAIN_KEYS, StackConfig, load_stack_config

if TYPE_CHECKING:
    import pulumi

PLAIN_KEYS = ("localRender", "proxmoxPassword")
"""Known keys that are not domain mappings or secrets."""


def read_stack_config(config: pulumi.Config) -> StackConfig:
    """Read every domain key of a Pulumi config, validate, and fail the program cleanly on problems."""
    import pulumi

    raw: dict[str, Any] = {}
    problems: list[ConfigProblem] = []
    for key in DOMAIN_KEYS:
        try:
            value = config.get_object(key)
        except pulumi.ConfigTypeError:
            problems.append(ConfigProblem(key, "must be a YAML mapping or list, not a plain string"))
            continue
        if value is not None:
            raw[key] = value
    local_render = config.get("localRender")
    problems.extend(_unknown_keys(config))
    if local_render is not None:
        raw["localRender"] = local_render
    unreadable = {problem.path for problem in problems}
    cfg: StackConfig | None = None
    try:
        cfg = load_stack_config(raw)
    except StackConfigError as exc:
        # problems at or under an unreadable key are echoes of it (a missing key, a default used)
        problems.extend(p for p in exc.problems if re.split(r"[.\[]", p.path, maxsplit=1)[0] not in unreadable)
    if cfg is not None:
        for key in required_secret_keys(cfg):
            if config.get(key) is None:
                problems.append(
                    ConfigProblem(
                        key,
                        f"secret config key is missing ({SECRET_KEYS[key]}); "
                        f"set it with: pulumi config set --secret {key} <value>",
                    )
                )
    if problems or cfg is None:
        raise pulumi.RunError(format_problems(problems))
    return cfg


def _unknown_keys(config: pulumi.Config) -> list[ConfigProblem]:
    """Keys in the project's namespace that the program does not read (usually a typo)."""
    from pulumi.runtime import config as runtime_config

    known = {*DOMAIN_KEYS, *SECRET_KEYS, *PLAIN_KEYS}
    prefix = f"{config.name}:"
    present = {*runtime_config.CONFIG.get(), *runtime_config.get_config_env()}
    problems = []
    for full in sorted(present):
        key = full[len(prefix) :] if full.startswith(prefix) else None
        if key is None or key in known:
            continue
        hint = difflib.get_close_matches(key, sorted(known), n=1)
        message = "unknown stack config key" + (f"; did you mean '{hint[0]}'?" if hint else "")
        problems.append(ConfigProblem(key, f"{message} (known keys: {', '.join(sorted(known))})"))
    return problems
