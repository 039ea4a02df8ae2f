"""apps/fleet."""
