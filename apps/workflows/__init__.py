"""apps/workflows."""
