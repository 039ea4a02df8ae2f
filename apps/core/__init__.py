"""apps/core."""
