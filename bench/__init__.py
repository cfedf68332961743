"""Benchmarks: run each as ``python -m bench.NAME``; they are not tests."""
