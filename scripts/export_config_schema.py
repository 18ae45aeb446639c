"""Write the JSON schema of the stack configuration for editor completion and CI.

The schema (JSON Schema draft 2020-12, camelCase keys as in ``Pulumi.<stack>.yaml``) is generated from
``config.StackConfig`` and stored in ``schema/stack-config.schema.json``; a unit test fails
when the stored file is stale.

Usage::

    .venv/bin/python scripts/export_config_schema.py            # (re)write the schema
    .venv/bin/python scripts/export_config_schema.py --check    # exit 1 if the stored file is stale
    .venv/bin/python scripts/export_config_schema.py -o out.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "schema" / "stack-config.schema.json"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, verify) the stack-config JSON schema; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="schema file to write")
    parser.add_argument("--check", action="store_true", help="only verify that the file is up to date")
    args = parser.parse_args(argv)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from config import render_stack_config_schema

    text = render_stack_config_schema()
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current != text:
            print(f"{output} is out of date; run: python scripts/export_config_schema.py", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
