"""Read and check a ``Pulumi.<stack>.yaml`` file without the Pulumi CLI.

``read_stack_file("dev")`` parses the file into its plain values, its ``secure:`` (encrypted) values and the
keys of other namespaces. ``check_stack_file`` validates it the way the program will at ``pulumi up``:
``config.load_stack_config`` on the domain keys, then the file-only rules the program cannot
see once the CLI has decrypted everything:

* every key in the project namespace is a domain key, ``localRender`` or a secret key (a typo such as
  ``tenant:`` would otherwise be ignored silently);
* every secret key the configuration needs (``required_secret_keys``) is present, and is a ``secure:``
  value, never plain text;
* every ``secure:`` value looks like a passphrase-provider ciphertext (``v1:<nonce>:<data>``), and the file
  has an ``encryptionsalt`` when it holds any.

Command line (used by ``scripts/stack.sh`` before every preview and deploy)::

    python -m tools.stack_file check dev [staging prod ...]

Exit status 0 when every named stack file is valid, 1 otherwise (the problems are printed).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from config import (
    DOMAIN_KEYS,
    SECRET_KEYS,
    ConfigProblem,
    StackConfig,
    StackConfigError,
    load_stack_config,
    required_secret_keys,
)

ROOT: Final = Path(__file__).resolve().parent.parent
"""The project directory (holds ``Pulumi.yaml`` and the stack files)."""

LOCAL_RENDER_KEY: Final = "localRender"
CIPHERTEXT: Final = re.compile(r"^v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$")
"""A value encrypted by the passphrase secrets provider."""


class StackFileError(ValueError):
    """The stack file is missing or is not a Pulumi stack file at all."""


@dataclass(frozen=True)
class StackFile:
    """A parsed ``Pulumi.<stack>.yaml``."""

    stack: str
    """Stack name (the ``<stack>`` of the file name)."""
    path: Path
    """Where the file is."""
    text: str
    """The file's text, exactly as read."""
    project: str
    """Project name (the config namespace of the program's keys)."""
    document: Mapping[str, Any]
    """The whole YAML document."""
    plain: Mapping[str, Any]
    """Project-namespace keys (without the namespace) whose values are plain YAML."""
    secure: Mapping[str, str]
    """Project-namespace keys whose values are ``secure:`` ciphertexts."""
    foreign: Mapping[str, Any]
    """Keys of other namespaces (``kubernetes:context``, ``pulumi:...``), full key as written."""

    def raw_config(self) -> dict[str, Any]:
        """The domain keys (and ``localRender``) as ``load_stack_config`` takes them."""
        return {k: v for k, v in self.plain.items() if k in (*DOMAIN_KEYS, LOCAL_RENDER_KEY)}


def project_name(root: Path = ROOT) -> str:
    """The project name from ``Pulumi.yaml``."""
    document = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or not isinstance(document.get("name"), str):
        raise StackFileError(f"{root / 'Pulumi.yaml'} has no project name")
    return str(document["name"])


def stack_path(stack: str, root: Path = ROOT) -> Path:
    """Where the stack file of ``stack`` lives."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stack):
        raise StackFileError(f"{stack!r} is not a stack name")
    return root / f"Pulumi.{stack}.yaml"


def parse_stack_text(text: str, *, stack: str, project: str, path: Path | None = None) -> StackFile:
    """Parse the text of a stack file; raise StackFileError if it is not one."""
    where = path or Path(f"Pulumi.{stack}.yaml")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StackFileError(f"{where}: not valid YAML: {exc}") from None
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise StackFileError(f"{where}: must be a YAML mapping")
    config = document.get("config") or {}
    if not isinstance(config, Mapping):
        raise StackFileError(f"{where}: 'config' must be a mapping of keys")
    plain: dict[str, Any] = {}
    secure: dict[str, str] = {}
    foreign: dict[str, Any] = {}
    for full_key, value in config.items():
        namespace, sep, key = str(full_key).partition(":")
        if not sep:
            namespace, key = project, namespace
        if namespace != project:
            foreign[str(full_key)] = value
        elif isinstance(value, Mapping) and set(value) == {"secure"}:
            secure[key] = str(value["secure"])
        else:
            plain[key] = value
    return StackFile(stack, where, text, project, document, plain, secure, foreign)


def read_stack_file(stack: str, root: Path = ROOT) -> StackFile:
    """Read and parse ``Pulumi.<stack>.yaml`` from ``root``."""
    path = stack_path(stack, root)
    if not path.is_file():
        raise StackFileError(f"{path.name} does not exist in {root}")
    return parse_stack_text(path.read_text(encoding="utf-8"), stack=stack, project=project_name(root), path=path)


def file_problems(sf: StackFile, cfg: StackConfig | None) -> list[ConfigProblem]:
    """The file-only rules (see the module docstring); ``cfg`` is None when the shape was invalid."""
    problems: list[ConfigProblem] = []
    allowed = (*DOMAIN_KEYS, LOCAL_RENDER_KEY, *SECRET_KEYS)
    for key in sf.plain:
        if key in SECRET_KEYS:
            problems.append(
                ConfigProblem(
                    key,
                    f"is a secret ({SECRET_KEYS[key]}) but is stored as plain text; "
                    f"set it with: pulumi config set --secret {key} <value>",
                )
            )
        elif key not in allowed:
            problems.append(ConfigProblem(key, f"unknown config key; allowed keys: {', '.join(allowed)}"))
    for key, value in sf.secure.items():
        if key not in SECRET_KEYS:
            problems.append(ConfigProblem(key, f"unknown secret key; secret keys: {', '.join(SECRET_KEYS)}"))
        if not CIPHERTEXT.match(value):
            problems.append(ConfigProblem(key, "secure value is not a passphrase ciphertext (v1:<nonce>:<data>)"))
    if sf.secure and not sf.document.get("encryptionsalt"):
        problems.append(
            ConfigProblem("encryptionsalt", "missing: the secure values cannot be decrypted without the salt")
        )
    if cfg is not None:
        for key in required_secret_keys(cfg):
            if key not in sf.secure and key not in sf.plain:
                problems.append(
                    ConfigProblem(
                        key,
                        f"secret config key is missing ({SECRET_KEYS[key]}); "
                        f"set it with: pulumi config set --secret {key} <value>",
                    )
                )
    return problems


def check_stack_file(sf: StackFile) -> StackConfig:
    """Validate the stack file as the program will (plus the file-only rules); raise StackConfigError."""
    cfg: StackConfig | None = None
    problems: list[ConfigProblem] = []
    try:
        cfg = load_stack_config(sf.raw_config())
    except StackConfigError as exc:
        problems.extend(exc.problems)
    problems.extend(file_problems(sf, cfg))
    if problems or cfg is None:
        raise StackConfigError(problems)
    return cfg


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """``check STACK...``: validate the stack files in ``root``; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tools.stack_file", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate Pulumi.<stack>.yaml files")
    check.add_argument("stacks", nargs="+", metavar="STACK")
    args = parser.parse_args(argv)
    status = 0
    for stack in args.stacks:
        try:
            cfg = check_stack_file(read_stack_file(stack, root))
        except StackFileError as exc:
            print(f"{stack}: {exc}", file=sys.stderr)
            status = 1
        except StackConfigError as exc:
            print(f"Pulumi.{stack}.yaml: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"Pulumi.{stack}.yaml: valid ({len(cfg.nodes)} nodes, {len(cfg.tenants)} tenants)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
