"""Gradient benchmarks for tracejit: `python -m benchmarks --help` (see README.md here)."""
