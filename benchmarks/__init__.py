"""Benchmarks (run with `nox -s bench`); not part of the test suite."""
