"""Speed benchmarks (never timed tests): run them all with ``python -m benchmarks``."""
