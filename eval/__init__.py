"""Evaluation: run question sets through the Python API and report metrics."""
