"""Stand-in for the instructor-only mutant harness (must not reach the starter)."""
