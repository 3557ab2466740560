"""Orca's benchmark suite (run by bench/run.py and `make bench`); benchmarks, not tests."""
