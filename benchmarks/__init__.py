"""Benchmarks of the rollback toolkit (issue 10): measures side by side, ratios printed; not tests."""
