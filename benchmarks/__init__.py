"""Benchmarks of `matching` (run from the repository root, e.g. ``python -m benchmarks.pairs``)."""
