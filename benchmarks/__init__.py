"""ahpsim benchmark suite (``python -m benchmarks``); see benchmarks/suite.py and docs/benchmarks.md."""
