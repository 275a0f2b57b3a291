"""Stand-in for the instructor-only snippets tool (must not reach the starter)."""
