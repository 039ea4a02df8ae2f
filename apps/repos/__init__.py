"""apps/repos."""
