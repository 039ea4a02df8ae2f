"""apps/accounts."""
