"""Copr's read-only /backend/ endpoints, for operators' and Copr's own tools."""
