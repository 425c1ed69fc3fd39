"""Benchmarks: run by hand (see RESULTS.md); tests/test_benchmarks_smoke.py runs tiny versions."""
