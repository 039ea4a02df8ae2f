"""apps/packages."""
