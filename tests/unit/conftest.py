"""Unit-test fixtures: the fakepve simulator (``pve``) and a client for it (``client``).

They are the integration fixtures, re-exported so that unit tests of request shapes and error handling
(``test_access_api.py``) can run the real client against the simulator's schema validation.
"""

from __future__ import annotations

from tests.integration.conftest import client, pve, settings

__all__ = ["client", "pve", "settings"]
