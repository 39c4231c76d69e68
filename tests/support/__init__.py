"""What the test tiers share: harnesses, sample inputs and constants (fixtures stay in the conftests)."""
