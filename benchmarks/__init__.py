"""Benchmarks: quality and speed measured on real or generated data, never timed in tests."""
