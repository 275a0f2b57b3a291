"""Stand-in for the instructor-only tool tests (must not reach the starter)."""
