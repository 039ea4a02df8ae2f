"""Forge webhooks (Copr's /webhooks/…): read a push, rebuild the packages it concerns."""
