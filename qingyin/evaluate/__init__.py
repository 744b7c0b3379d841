"""Measuring instruments: quality metrics, evaluation runs and speed benchmarks."""
