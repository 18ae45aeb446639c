"""Re-export of the simulator tooling for tests (one definition of the simulated cluster's shape)."""

from tools.simulator import TEMPLATE_TAGS, TOKEN_ID, TOKEN_SECRET, ServedSimulator, seed

__all__ = ["TEMPLATE_TAGS", "TOKEN_ID", "TOKEN_SECRET", "ServedSimulator", "seed"]
