"""Tests of the APIs."""
