"""Servers a user might pick instead of this function, serving the same model (benchmarks)."""
