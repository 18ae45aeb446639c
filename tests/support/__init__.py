"""Test helpers shared by the test tiers (simulator seeding, spec builders)."""
