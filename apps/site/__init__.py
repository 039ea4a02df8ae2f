"""apps/site."""
