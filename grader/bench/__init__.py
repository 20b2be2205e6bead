"""Benchmarks: each prints measured figures next to a baseline from the same run (`grader bench ...`)."""
