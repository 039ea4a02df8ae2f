"""apps/builds."""
