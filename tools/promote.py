"""Promote the tested version set of one stack to the next: dev -> staging -> prod.

Usage::

    python -m tools.promote --from dev --to staging            # dry run: print what would change
    python -m tools.promote --from dev --to staging --diff     # ... and the unified diff of the file
    python -m tools.promote --from dev --to staging --write    # rewrite Pulumi.staging.yaml
    python -m tools.promote --list                             # the environments, in promotion order

What moves
    Only the promotable set: the ``versions`` key (``config.VersionsConfig``; defaults in code,
    ``DEFAULT_VERSION_SET``). The source's *effective* versions (its ``versions`` key over the code defaults)
    become the target's ``versions`` key with EVERY key pinned, so a later change of a default in code
    reaches the target only through the next promotion. Endpoints, sizes, networks, storages, tenants
    and secrets of the target are left exactly as they are.

Rules
    * both stacks must be environments of ``ENVIRONMENTS`` (the one place the order lives; the workflows
      and ``scripts/stack.sh`` read it from here) and the target must be the NEXT one: no skipping
      staging, no promoting backwards, nothing into or out of ``local``;
    * the source must be a valid stack file, and the rewritten target is validated with
      ``config.load_stack_config`` (plus the stack-file rules of ``tools.stack_file``) BEFORE it
      is written: a version set the target cannot run (a template it does not declare, a combination
      outside the compatibility matrix) is refused with the problems, and nothing is written;
    * without ``--write`` nothing is written (dry run).

Formatting
    PyYAML would drop every comment of the target on a round trip (ruamel is not installed), so the
    ``versions`` block is edited as text: its lines are replaced in place, keeping the comments inside the
    block (a comment line stays above the key it precedes, a trailing ``# comment`` stays on its key's
    line), the indentation and the order of existing keys; missing keys are appended in the order of
    ``DEFAULT_VERSION_SET``. Every other line of the file is kept byte for byte. A target without a
    ``versions`` key gets a new block at the end of ``config:``. A ``versions`` value this editor cannot
    rewrite safely (flow style ``{...}``, anchors, nested values, multi-line scalars) is refused with a
    message; rewrite that block as plain ``key: value`` lines and run again.

Exit status: 0 dry run or written (also when there is nothing to promote), 1 refused (route, validation,
unsupported formatting), 2 usage error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import yaml

from config import DEFAULT_VERSION_SET, StackConfigError
from tools.stack_file import (
    ROOT,
    StackFile,
    StackFileError,
    check_stack_file,
    parse_stack_text,
    read_stack_file,
)

ENVIRONMENTS: Final[tuple[str, ...]] = ("dev", "staging", "prod")
"""The promotion order. The only definition: workflows, ``scripts/stack.sh`` and tests read it from here."""

VERSIONS_KEY: Final = "versions"


class PromotionError(Exception):
    """A promotion that is refused; the message says why and what to do."""


# --------------------------------------------------------------------------------------------------
# Route
# --------------------------------------------------------------------------------------------------


def next_environment(stack: str) -> str | None:
    """The environment after ``stack`` in the promotion order (None for the last one)."""
    index = ENVIRONMENTS.index(stack)
    return ENVIRONMENTS[index + 1] if index + 1 < len(ENVIRONMENTS) else None


def check_route(source: str, target: str) -> None:
    """Refuse unknown stacks and any target that is not the next environment of ``source``."""
    order = " -> ".join(ENVIRONMENTS)
    for role, stack in (("source", source), ("target", target)):
        if stack not in ENVIRONMENTS:
            raise PromotionError(f"unknown {role} stack {stack!r}: promotion runs {order}")
    expected = next_environment(source)
    if expected is None:
        raise PromotionError(f"{source} is the last environment ({order}); there is nothing to promote it to")
    if target != expected:
        raise PromotionError(
            f"{source} -> {target} is not allowed: promotion runs {order}, so {source} promotes to {expected} only"
        )


# --------------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------------


def explicit_versions(sf: StackFile) -> dict[str, str]:
    """The ``versions`` key of a stack file as written (empty when absent)."""
    block = sf.plain.get(VERSIONS_KEY)
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise PromotionError(f"{sf.path.name}: {VERSIONS_KEY} must be a mapping of version keys")
    return {str(k): str(v) for k, v in block.items()}


def effective_versions(sf: StackFile) -> dict[str, str]:
    """The versions the stack runs: its ``versions`` key over the code defaults, in canonical order."""
    explicit = explicit_versions(sf)
    unknown = sorted(set(explicit) - set(DEFAULT_VERSION_SET))
    if unknown:
        raise PromotionError(f"{sf.path.name}: unknown {VERSIONS_KEY} keys {unknown}")
    return {key: explicit.get(key, default) for key, default in DEFAULT_VERSION_SET.items()}


@dataclass(frozen=True)
class VersionChange:
    """One promotable value that differs between the stacks."""

    key: str
    old: str
    new: str


@dataclass(frozen=True)
class Promotion:
    """What a promotion would do to the target stack file."""

    source: str
    target: str
    path: Path
    changes: tuple[VersionChange, ...]
    """Effective versions that change in the target."""
    newly_pinned: tuple[str, ...]
    """Keys the target followed from the code defaults and now pins (same value, no runtime change)."""
    old_text: str
    new_text: str

    @property
    def rewrites_file(self) -> bool:
        """Whether writing would change the target file at all."""
        return self.old_text != self.new_text

    def unified_diff(self) -> str:
        """The change of the target file as a unified diff."""
        name = self.path.name
        lines = difflib.unified_diff(
            self.old_text.splitlines(keepends=True),
            self.new_text.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
        return "".join(lines)


# --------------------------------------------------------------------------------------------------
# Text editing of the versions block
# --------------------------------------------------------------------------------------------------

_ENTRY = re.compile(r"^(?P<indent>[ ]+)(?P<key>[A-Za-z][A-Za-z0-9]*):(?P<rest>.*)$")
_TOP_LEVEL_KEY = re.compile(r"^[^\s#][^:]*:")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_blank_or_comment(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _split_comment(rest: str) -> tuple[str, str]:
    """Split ``value  # comment`` into (value, '  # comment'); a '#' only starts a comment after a space."""
    match = re.search(r"\s+#", rest)
    if match is None:
        return rest.strip(), ""
    return rest[: match.start()].strip(), rest[match.start() :].rstrip("\n")


_YAML12_NON_STRING = re.compile(
    r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(inf|Inf|INF)"
    r"|\.(nan|NaN|NAN)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~)$"
)
"""Plain scalars that YAML 1.2 (the Pulumi CLI's Go parser) reads as something other than a string."""


def render_scalar(value: str) -> str:
    """A version as a YAML scalar: plain when both YAML 1.1 (PyYAML) and 1.2 read it as the same string."""
    try:
        loaded = yaml.safe_load(value)
    except yaml.YAMLError:
        loaded = None
    plain_ok = (
        isinstance(loaded, str)
        and loaded == value
        and not _YAML12_NON_STRING.match(value)
        and not re.search(r"[#:{}\[\],&*!|>'\"%@`]", value)
    )
    return value if plain_ok else json.dumps(value)


@dataclass
class _Entry:
    key: str
    comments_before: list[str] = field(default_factory=list)
    trailing: str = ""


def _config_section(lines: list[str]) -> tuple[int, int, int]:
    """(index of ``config:``, end index of its body, indent of its keys)."""
    start = next((i for i, line in enumerate(lines) if re.match(r"^config:\s*(#.*)?$", line.rstrip("\n"))), None)
    if start is None:
        raise PromotionError("the target has no block-style 'config:' mapping at the top level")
    end = start + 1
    while end < len(lines) and (_is_blank_or_comment(lines[end]) or _indent(lines[end]) > 0):
        end += 1
    # comments and blank lines just before the next top-level key belong to that key
    while end > start + 1 and _is_blank_or_comment(lines[end - 1]) and _indent(lines[end - 1]) == 0:
        end -= 1
    key_indent = next((_indent(line) for line in lines[start + 1 : end] if not _is_blank_or_comment(line)), 2)
    return start, end, key_indent


def replace_versions_block(text: str, project: str, versions: Mapping[str, str]) -> str:
    """Return ``text`` with the project's ``versions`` block set to ``versions`` (see module docstring)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    newline = "\r\n" if text.count("\r\n") and text.count("\r\n") == text.count("\n") else "\n"
    start, end, key_indent = _config_section(lines)
    header = re.compile(rf"^[ ]{{{key_indent}}}{re.escape(project)}:{VERSIONS_KEY}:(?P<rest>.*)$")
    at = next((i for i in range(start + 1, end) if header.match(lines[i].rstrip("\r\n"))), None)
    pad = " " * key_indent

    if at is None:
        block = [f"{pad}{project}:{VERSIONS_KEY}:{newline}"]
        block += [f"{pad}  {key}: {render_scalar(value)}{newline}" for key, value in versions.items()]
        return "".join(lines[:end] + block + lines[end:])

    match = header.match(lines[at].rstrip("\r\n"))
    assert match is not None
    value_part, _ = _split_comment(match.group("rest"))
    if value_part:
        raise PromotionError(
            f"line {at + 1}: the {VERSIONS_KEY} value is written inline ({value_part[:40]!r}); rewrite it as one "
            "'key: value' line per version under the key and run again"
        )
    body_end = at + 1
    while body_end < end and (_is_blank_or_comment(lines[body_end]) or _indent(lines[body_end]) > key_indent):
        body_end += 1
    while (
        body_end > at + 1 and _is_blank_or_comment(lines[body_end - 1]) and _indent(lines[body_end - 1]) <= key_indent
    ):
        body_end -= 1

    leading: list[str] = []  # comments before the first entry, kept at the top of the block
    entries: list[_Entry] = []
    pending: list[str] = []
    entry_indent: int | None = None
    for number in range(at + 1, body_end):
        line = lines[number]
        if _is_blank_or_comment(line):
            pending.append(line)
            continue
        m = _ENTRY.match(line.rstrip("\r\n"))
        if m is None or (entry_indent is not None and len(m.group("indent")) != entry_indent):
            raise PromotionError(
                f"line {number + 1}: cannot edit this {VERSIONS_KEY} line safely ({line.strip()[:60]!r}); "
                "use one plain 'key: value' line per version"
            )
        entry_indent = len(m.group("indent"))
        value, trailing = _split_comment(m.group("rest"))
        if not value or value[0] in "{[&*!|>":
            raise PromotionError(
                f"line {number + 1}: {m.group('key')} has a value this editor does not rewrite ({value[:40]!r}); "
                "use a plain scalar such as 1.19.5"
            )
        if not entries and not leading and pending:
            leading, pending = pending, []
        entries.append(_Entry(m.group("key"), pending, trailing))
        pending = []
    indent = " " * (entry_indent if entry_indent is not None else key_indent + 2)

    known = {entry.key for entry in entries}
    entries = [entry for entry in entries if entry.key in versions]
    entries += [_Entry(key) for key in versions if key not in known]
    body: list[str] = list(leading)
    for entry in entries:
        body += entry.comments_before
        body.append(f"{indent}{entry.key}: {render_scalar(versions[entry.key])}{entry.trailing}{newline}")
    body += pending
    return "".join(lines[: at + 1] + body + lines[body_end:])


# --------------------------------------------------------------------------------------------------
# Planning and writing
# --------------------------------------------------------------------------------------------------


def _validated(sf: StackFile, role: str) -> None:
    try:
        check_stack_file(sf)
    except StackConfigError as exc:
        raise PromotionError(f"{role} {sf.path.name} is invalid, nothing written:\n{exc}") from None


def plan_promotion(source: StackFile, target: StackFile) -> Promotion:
    """Compute and validate the promotion of ``source``'s versions into ``target``; raise PromotionError."""
    check_route(source.stack, target.stack)
    _validated(source, "source")
    wanted = effective_versions(source)
    current = effective_versions(target)
    explicit = explicit_versions(target)
    changes = tuple(VersionChange(k, current[k], v) for k, v in wanted.items() if current[k] != v)
    newly_pinned = tuple(k for k, v in wanted.items() if k not in explicit and current[k] == v)

    new_text = replace_versions_block(target.text, target.project, wanted)
    try:
        rewritten = parse_stack_text(new_text, stack=target.stack, project=target.project, path=target.path)
    except StackFileError as exc:  # pragma: no cover - the editor only writes plain scalars
        raise PromotionError(f"internal error: the rewritten {target.path.name} does not parse: {exc}") from None
    _check_only_versions_changed(target, rewritten, wanted)
    try:
        check_stack_file(rewritten)
    except StackConfigError as exc:
        try:
            check_stack_file(target)
            before = ""
        except StackConfigError:
            before = f" ({target.path.name} was already invalid before the promotion: fix it first)"
        raise PromotionError(
            f"{target.stack} cannot run the versions of {source.stack}{before}; nothing written:\n{exc}"
        ) from None
    return Promotion(source.stack, target.stack, target.path, changes, newly_pinned, target.text, new_text)


def _check_only_versions_changed(before: StackFile, after: StackFile, wanted: Mapping[str, str]) -> None:
    """Guard the text editor: everything but ``versions`` parses identically, and versions are as wanted."""

    def others(sf: StackFile) -> dict[str, object]:
        return {k: v for k, v in sf.plain.items() if k != VERSIONS_KEY}

    same = (
        others(before) == others(after)
        and before.secure == after.secure
        and before.foreign == after.foreign
        and {k: v for k, v in before.document.items() if k != "config"}
        == {k: v for k, v in after.document.items() if k != "config"}
    )
    if not same or explicit_versions(after) != dict(wanted):
        raise PromotionError(f"internal error: rewriting {before.path.name} would change more than {VERSIONS_KEY}")


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (the file is never half-written)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def describe(promotion: Promotion) -> str:
    """Human-readable summary of a promotion."""
    out = [
        f"Promote {promotion.source} -> {promotion.target}: versions only "
        "(endpoints, sizes, networks, storages, tenants and secrets stay as they are)"
    ]
    if promotion.changes:
        width = max(len(c.key) for c in promotion.changes)
        old_width = max(len(c.old) for c in promotion.changes)
        out += [f"  {c.key:<{width}}  {c.old:<{old_width}} -> {c.new}" for c in promotion.changes]
        noun = "version differs" if len(promotion.changes) == 1 else "versions differ"
        out.append(f"{len(promotion.changes)} {noun}.")
    else:
        out.append(f"  nothing to promote: {promotion.target} already runs the versions of {promotion.source}.")
    if promotion.newly_pinned:
        out.append(
            f"Also pins {len(promotion.newly_pinned)} key(s) that {promotion.target} took from the code defaults "
            f"(same values): {', '.join(promotion.newly_pinned)}"
        )
    return "\n".join(out)


def main(argv: Sequence[str] | None = None, root: Path = ROOT) -> int:
    """Command line entry point; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.promote",
        description=f"Promote the versions key of one stack to the next environment ({' -> '.join(ENVIRONMENTS)}).",
    )
    parser.add_argument("--from", dest="source", metavar="STACK", help="the stack whose versions are promoted")
    parser.add_argument("--to", dest="target", metavar="STACK", help="the next environment, whose file is rewritten")
    parser.add_argument("--write", action="store_true", help="rewrite the target file (default: dry run)")
    parser.add_argument("--diff", action="store_true", help="also print the unified diff of the target file")
    parser.add_argument("--list", action="store_true", help="print the environments in promotion order and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(ENVIRONMENTS))
        return 0
    if not args.source or not args.target:
        parser.error("--from and --to are required (or --list)")

    try:
        check_route(args.source, args.target)
        promotion = plan_promotion(read_stack_file(args.source, root), read_stack_file(args.target, root))
    except (PromotionError, StackFileError) as exc:
        print(f"promote: refused: {exc}", file=sys.stderr)
        return 1

    print(describe(promotion))
    if args.diff and promotion.rewrites_file:
        print(promotion.unified_diff(), end="")
    name = promotion.path.name
    if not promotion.rewrites_file:
        print(f"{name} is already up to date.")
    elif args.write:
        write_atomically(promotion.path, promotion.new_text)
        print(f"Wrote {name} (validated). Review it, commit it and open a pull request: its preview shows the change.")
    else:
        print(
            f"Dry run: {name} not changed. Write it with --write "
            f"(make promote FROM={promotion.source} TO={promotion.target} WRITE=1)."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
