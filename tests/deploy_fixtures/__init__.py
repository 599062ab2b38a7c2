"""Helpers for the deploy tests: the documented CLI flags and dry-run runners."""
