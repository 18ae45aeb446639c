"""The Pulumi policy pack of this project (guardrails in ``policy/guardrails.py``; the pack in ``__main__.py``)."""
