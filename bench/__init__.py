"""Benchmarks: each prints ratios measured in one run and writes JSON to bench/results/."""
