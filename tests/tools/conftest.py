"""The fixture tree is a miniature course repository, not tests of this one."""

collect_ignore = ["fixture_tree"]
