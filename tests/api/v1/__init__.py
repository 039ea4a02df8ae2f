"""Tests of the native API, /api/v1."""
