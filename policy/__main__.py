"""The policy pack: ``pulumi preview --policy-pack policy`` (scripts/stack.sh passes it on every preview/up).

Run by the Pulumi engine as a script; the guardrails themselves live in ``policy/guardrails.py`` so that
tests and ``python -m policy.guardrails check-config`` import them without starting this gRPC server.
"""

import sys
from pathlib import Path

# The engine runs this file with the pack directory as sys.path[0]; the project root makes the
# `policy` package importable (guardrails imports nothing else from the project).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.guardrails import PACK_NAME, policies

PolicyPack(
    name=PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=policies(),
    description="Security and tenancy guardrails of the Proxmox VE -> Kubernetes platform",
)
