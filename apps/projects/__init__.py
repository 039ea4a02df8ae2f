"""apps/projects."""
