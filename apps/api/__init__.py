"""apps/api."""
