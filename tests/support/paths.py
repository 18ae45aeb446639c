"""Where the checkout is, for tests that read its files (stack files, workflows, scripts)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository root."""
