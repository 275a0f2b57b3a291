"""Stand-in for the instructor-only release tool (must not reach the starter)."""
